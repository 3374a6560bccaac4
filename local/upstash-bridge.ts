// Serves the Upstash Redis REST protocol in front of a real Redis, so @upstash/redis (as used by the
// Worker) runs unchanged in local development and tests. No npm package provides this server.
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Redis } from "ioredis";
import { listen } from "./ports.ts";

export type BridgeOptions = {
  port?: number;
  host?: string;
  redisUrl: string;
  token: string;
  log?: (msg: string) => void;
};

export type Bridge = { port: number; url: string; close(): Promise<void>; stats(): { commands: number } };

type Command = [string, ...string[]];
type Reply = Buffer | string | number | null | Reply[];
type Json = string | number | null | Json[];
type Outcome = { result: Json } | { error: string };

const MAX_BODY = 10 * 1024 * 1024;
const READY_WAIT_MS = 250;
// Every request multiplexes over one Redis connection, so commands that change its state or block it
// would leak into, or stall, other requests.
const CONNECTION_STATE = "MULTI EXEC DISCARD WATCH UNWATCH SELECT QUIT RESET HELLO AUTH MONITOR";
const PUBSUB = "SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE";
const BLOCKING = "BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT WAITAOF";
const UNSUPPORTED = new Set(`${CONNECTION_STATE} ${PUBSUB} ${BLOCKING}`.split(" "));

/** Thrown for requests the bridge rejects before Redis sees them; becomes a 400. */
class BadRequest extends Error {}

/** Starts the bridge; resolves once it listens, even if Redis is not up yet (requests then get 503). */
export async function startUpstashBridge(opts: BridgeOptions): Promise<Bridge> {
  const log = opts.log ?? (() => {});
  const host = opts.host ?? "127.0.0.1";
  const token = Buffer.from(opts.token);
  let commands = 0;
  let lastError = "";
  const redis = new Redis(opts.redisUrl, {
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  redis.on("error", (err: Error) => {
    if (err.message !== lastError) log(`upstash-bridge: redis ${err.message}`);
    lastError = err.message;
  });
  redis.on("ready", () => {
    lastError = "";
  });
  // Not awaited: the bridge must come up even while Redis is down; requests wait briefly for it.
  redis.connect().catch(() => {});

  async function run(cmd: Command): Promise<Reply> {
    commands++;
    const [name, ...args] = cmd;
    return (await redis.callBuffer(name, ...args)) as Reply;
  }

  async function batch(cmds: Command[], atomic: boolean, base64: boolean): Promise<Outcome[]> {
    commands += cmds.length;
    const chain = atomic ? redis.multi() : redis.pipeline();
    for (const [name, ...args] of cmds) chain.callBuffer(name, ...args);
    const results = (await chain.exec()) ?? [];
    return results.map(([err, value]) => {
      if (err === null) return { result: toJson(value as Reply, base64) };
      if (isReplyError(err)) return { error: err.message };
      throw err;
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://bridge");
    if (req.method !== "POST" && req.method !== "GET") return send(res, 405, { error: "Method not allowed" });
    if (!authorized(req, url)) {
      req.resume();
      return send(res, 401, { error: "Unauthorized" });
    }
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { error: `ERR request body exceeds ${MAX_BODY} bytes` });
    if (!(await ready(redis, READY_WAIT_MS))) {
      return send(res, 503, { error: `ERR redis unavailable${lastError ? `: ${lastError}` : ""}` });
    }
    const encode = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    try {
      if (url.pathname === "/pipeline" || url.pathname === "/multi-exec") {
        if (req.method !== "POST") return send(res, 405, { error: "Method not allowed" });
        const cmds = parseBatch(body);
        return send(res, 200, await batch(cmds, url.pathname === "/multi-exec", encode));
      }
      const cmd = url.pathname === "/" ? parseCommand(parseJson(body)) : pathCommand(url.pathname, body);
      return send(res, 200, { result: toJson(await run(cmd), encode) });
    } catch (err) {
      if (err instanceof BadRequest) return send(res, 400, { error: err.message });
      if (isReplyError(err)) {
        const prev = (err as { previousErrors?: Error[] }).previousErrors?.[0];
        return send(res, 400, { error: prev?.message ?? err.message });
      }
      const message = err instanceof Error ? err.message : String(err);
      log(`upstash-bridge: ${message}`);
      return send(res, 503, { error: `ERR redis unavailable: ${message}` });
    }
  }

  function authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers.authorization ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : (url.searchParams.get("_token") ?? "");
    const candidate = Buffer.from(given);
    return candidate.length === token.length && timingSafeEqual(candidate, token);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`upstash-bridge: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) send(res, 500, { error: "ERR internal bridge error" });
    });
  });
  const port = await listen(server, opts.port ?? 0, host);
  log(`upstash-bridge: listening on http://${host}:${port} -> ${opts.redisUrl}`);

  return {
    port,
    url: `http://${host}:${port}`,
    stats: () => ({ commands }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}

/** True when Redis at url answers PING within timeoutMs; never throws. */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  const redis = new Redis(url, {
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const probe = (async () => {
    await redis.connect();
    return (await redis.call("PING")) === "PONG";
  })().catch(() => false);
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

function ready(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      resolve(false);
    }, ms);
    redis.once("ready", onReady);
  });
}

/** Reads the whole body; undefined when it exceeds MAX_BODY (the rest is drained, not kept). */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
      else if (size > MAX_BODY * 4) req.destroy();
    });
    req.on("end", () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new BadRequest(`ERR failed to parse command: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseCommand(value: unknown): Command {
  if (!Array.isArray(value) || value.length === 0)
    throw new BadRequest("ERR command must be a non-empty JSON array");
  const parts = value.map((v: unknown) => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw new BadRequest("ERR command arguments must be strings, numbers or booleans");
  });
  const [name = "", ...args] = parts;
  checkSupported(name, args);
  return [name.toUpperCase(), ...args];
}

function parseBatch(body: Buffer): Command[] {
  const value = parseJson(body);
  if (!Array.isArray(value) || value.length === 0)
    throw new BadRequest("ERR body must be a non-empty array of commands");
  return value.map(parseCommand);
}

/** Upstash's URL form: /set/key/value, or /set/key with the value as the request body. */
function pathCommand(pathname: string, body: Buffer): Command {
  let parts: string[];
  try {
    parts = pathname
      .split("/")
      .filter((p) => p !== "")
      .map(decodeURIComponent);
  } catch {
    throw new BadRequest("ERR malformed URL path");
  }
  if (body.length > 0) parts.push(body.toString("utf8"));
  return parseCommand(parts);
}

function checkSupported(name: string, args: string[]): void {
  const upper = name.toUpperCase();
  const blockingRead =
    (upper === "XREAD" || upper === "XREADGROUP") && args.some((a) => a.toUpperCase() === "BLOCK");
  if (UNSUPPORTED.has(upper) || blockingRead)
    throw new BadRequest(`ERR command '${name}' is not supported over REST`);
}

/** Upstash's base64 mode encodes every string in the reply (status replies too); numbers and nil stay. */
function toJson(value: Reply, base64: boolean): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (Array.isArray(value)) return value.map((v) => toJson(v, base64));
  const buf = typeof value === "string" ? Buffer.from(value) : value;
  return base64 ? buf.toString("base64") : buf.toString("utf8");
}

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === "ReplyError";
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
