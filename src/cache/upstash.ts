/**
 * A client of Upstash's REST API for the few commands the platform sends: a command is a JSON array
 * POSTed to the database's URL (`["SET","k","v","EX","60"]` -> `{"result":"OK"}` or
 * `{"error":"..."}`), a pipeline an array of them POSTed to `/pipeline` (one answer each).
 * @upstash/redis speaks the same protocol with every Redis command and its (de)serialisation:
 * 92 KiB of the worker bundle (17 KiB gzipped) for the few commands used here. The local bridge
 * (local/upstash-bridge.ts) is checked against the official client, and this one against the bridge.
 */

type Arg = string | number;
type Answer = { result?: unknown; error?: string };

export interface SetOptions {
  /** Seconds until the key expires. */
  ex?: number;
  /** Only when the key does not exist yet. */
  nx?: boolean;
}

/** Commands queued and sent in one request; `exec` answers their results in order. */
export class Pipeline {
  readonly #commands: Arg[][] = [];

  constructor(readonly client: UpstashRest) {}

  set(key: string, value: string, opts: SetOptions = {}): this {
    this.#commands.push(setCommand(key, value, opts));
    return this;
  }

  incr(key: string): this {
    this.#commands.push(["INCR", key]);
    return this;
  }

  /** `nx`: only when the key has no expiry yet. */
  expire(key: string, seconds: number, opts: { nx?: boolean } = {}): this {
    this.#commands.push(opts.nx ? ["EXPIRE", key, seconds, "NX"] : ["EXPIRE", key, seconds]);
    return this;
  }

  get(key: string): this {
    this.#commands.push(["GET", key]);
    return this;
  }

  ttl(key: string): this {
    this.#commands.push(["TTL", key]);
    return this;
  }

  /** Sends the queued commands; any command's error fails the whole call (as a Redis error would). */
  async exec<T extends unknown[] = unknown[]>(): Promise<T> {
    if (this.#commands.length === 0) return [] as unknown as T;
    const answers = await this.client.post<Answer[]>("/pipeline", this.#commands);
    if (!Array.isArray(answers) || answers.length !== this.#commands.length)
      throw new Error("upstash: the pipeline's answer does not match its commands");
    return answers.map(resultOf) as T;
  }
}

export class UpstashRest {
  readonly #url: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(opts: { url: string; token: string; timeoutMs: number }) {
    this.#url = opts.url.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs;
  }

  /** One POST with the token and the deadline; a non-JSON or failed answer throws. */
  async post<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(`${this.#url}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.#token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`upstash: HTTP ${res.status}, not JSON`);
    }
    // A single command's error comes as {"error": ...}, with a 4xx/5xx status or not.
    if (!Array.isArray(parsed) && (parsed as Answer)?.error !== undefined) resultOf(parsed as Answer);
    if (!res.ok) throw new Error(`upstash: HTTP ${res.status}`);
    return parsed as T;
  }

  async #command<T>(args: Arg[]): Promise<T> {
    return resultOf(await this.post<Answer>("", args)) as T;
  }

  get(key: string): Promise<string | null> {
    return this.#command(["GET", key]);
  }

  mget(...keys: string[]): Promise<(string | null)[]> {
    return this.#command(["MGET", ...keys]);
  }

  set(key: string, value: string, opts: SetOptions = {}): Promise<"OK" | null> {
    return this.#command(setCommand(key, value, opts));
  }

  del(...keys: string[]): Promise<number> {
    return this.#command(["DEL", ...keys]);
  }

  /** One SCAN step: the next cursor ("0" when done) and the keys of this step. */
  async scan(cursor: string, opts: { match: string; count: number }): Promise<[string, string[]]> {
    const [next, keys] = await this.#command<[string | number, string[]]>([
      "SCAN",
      cursor,
      "MATCH",
      opts.match,
      "COUNT",
      opts.count,
    ]);
    return [String(next), keys];
  }

  expire(key: string, seconds: number): Promise<number> {
    return this.#command(["EXPIRE", key, seconds]);
  }

  /** Seconds the key has left (-1: no expiry, -2: no key). */
  ttl(key: string): Promise<number> {
    return this.#command(["TTL", key]);
  }

  ping(): Promise<string> {
    return this.#command(["PING"]);
  }

  pipeline(): Pipeline {
    return new Pipeline(this);
  }
}

function setCommand(key: string, value: string, opts: SetOptions): Arg[] {
  const args: Arg[] = ["SET", key, value];
  if (opts.ex !== undefined) args.push("EX", opts.ex);
  if (opts.nx) args.push("NX");
  return args;
}

function resultOf(a: Answer): unknown {
  if (a?.error !== undefined) throw new Error(`upstash: ${a.error}`);
  return a?.result ?? null;
}
