/**
 * Abuse benchmark for the publishable key (issue #14): what one script from one address gets out of
 * a tenant's bot when it copies the `pk_...` key from the page, forges the allowed Origin and rotates
 * visitor identities (a fresh conversation without a token each time, its messages spread over every
 * visitor token it collected). The real worker runs under Miniflare with the fake LLM behind it; the
 * tenant-wide limits are set far above the per-address ones, so only the address can stop the script.
 * The script is bounded (BENCH_PUBLIC_KEY_SECONDS, 70 s; BENCH_PUBLIC_KEY_REQUESTS, 2,700 requests)
 * and paced evenly over the run so that it spans more than one minute window. Meanwhile a second
 * address behaves like a visitor and must get every answer, a third tries 200 made-up keys, and a
 * fourth holds one conversation and reads its transcript in a loop, then floods a live socket with
 * resume frames (each asks for the transcript again). A fifth rates its conversation again and again
 * (each rating was an analytics row) and replays its spent live ticket.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { insertKey, insertTenants } from "../local/seed-tenants.ts";
import { generateKey } from "../src/auth/keys.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import { chatFixtures, cpuMs, pct, round, workerdPids } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

// The limits as configured in src/chat/address-limits.ts and src/auth/throttle.ts (those modules do
// not load under Node: their imports have no extensions); the notes show the limits the worker
// itself reported in its refusals, which must be the same.
const ADDRESS_MESSAGES_PER_MINUTE = 30;
const ADDRESS_CONVERSATIONS_PER_HOUR = 20;
const ADDRESS_READS_PER_MINUTE = 2 * ADDRESS_MESSAGES_PER_MINUTE;
const AUTH_FAILURES_PER_MINUTE = 20;
// src/handoff/frame-credit.ts: a socket's credit, and what a resume costs of it.
const FRAME_CREDIT = 30;
const RESUME_COST = 10;
// src/chat/conversation-do.ts: the ratings a conversation records.
const RATINGS_PER_CONVERSATION = 5;
const RATINGS = 100;
const TICKET_REPLAYS = 100;

const DURATION_MS = Number(process.env.BENCH_PUBLIC_KEY_SECONDS ?? 70) * 1000;
const MAX_REQUESTS = Number(process.env.BENCH_PUBLIC_KEY_REQUESTS ?? 2_700);
const CONCURRENCY = 4;
/** One request in this many tries to start a conversation (a new visitor); the rest are messages. */
const START_EVERY = 5;
const MADE_UP_KEYS = 200;
const CONTROL_EVERY_MS = 3_000;
/** The reader's pace: a transcript read every this many ms. */
const READ_EVERY_MS = 50;
const RESUME_FRAMES = 1_000;
const ORIGIN = "https://shop.bench.example";
// Documentation addresses (RFC 5737, RFC 3849): the script, a real visitor, a key guesser. Failed
// key attempts are counted in Redis, which outlives the worker: the guesser is new every run.
const SCRIPT_IP = "203.0.113.7";
const CONTROL_IP = "198.51.100.20";
const GUESSER_IP = `2001:db8:${randomUUID().slice(0, 4)}:${randomUUID().slice(0, 4)}::1`;
const READER_IP = "192.0.2.33";
// Failed tickets count in Redis too (as failed keys do): a new address every run.
const RATER_IP = `2001:db8:${randomUUID().slice(0, 4)}:${randomUUID().slice(0, 4)}::2`;
const UPSTREAM_KEY = "sk-bench-upstream";
const MESSAGE = "hello there, where is my order, it was due on monday and has not come";

/** The tenant under attack; answers its publishable key. */
async function seedTenant(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await insertTenants(client, [
      {
        id: "shop",
        name: "Shop",
        systemPrompt: "You help shoppers.",
        model: "gpt-4o-mini",
        monthlyTokenBudget: 1_000_000_000_000,
        rateLimitPerMinute: 100_000,
        allowedOrigins: [ORIGIN],
      },
    ]);
    return (await insertKey(client, "shop", "publishable", "widget")).key;
  } finally {
    await client.end();
  }
}

interface Answer {
  status: number;
  /** The body's length, in characters. */
  length: number;
  body: {
    id?: string;
    visitor_token?: string;
    /** A live ticket's socket URL. */
    url?: string;
    usage?: { input_tokens: number; output_tokens: number };
    error?: { code: string; details?: { level?: string; limit?: number } };
  };
}

/** Counts per category, and when (ms into the run, at sending) each success was sent. */
class Tally {
  readonly statuses: Record<string, number> = {};
  readonly okAt: number[] = [];
  readonly tokensAt: { at: number; tokens: number }[] = [];
  /** How long each 429 took, ms. */
  readonly refusedMs: number[] = [];
  /** The limits the worker named in its refusals. */
  readonly reportedLimits = new Set<number>();
  refused = 0;
  sent = 0;
  failed = 0;

  add(what: string, a: Answer, at: number, ok: number, tookMs = 0): void {
    this.sent += 1;
    if (a.status === 429) this.refusedMs.push(tookMs);
    const level = a.body.error?.details?.level ?? a.body.error?.code ?? "";
    const k = `${what} ${a.status}${level ? ` ${level}` : ""}`;
    this.statuses[k] = (this.statuses[k] ?? 0) + 1;
    if (a.status === ok) this.okAt.push(at);
    else if (a.status === 429) this.refused += 1;
    else if (a.status >= 500) this.failed += 1;
    const limit = a.body.error?.details?.limit;
    if (a.status === 429 && limit !== undefined) this.reportedLimits.add(limit);
    const u = a.body.usage;
    if (a.status === ok && u) this.tokensAt.push({ at, tokens: u.input_tokens + u.output_tokens });
  }

  get ok(): number {
    return this.okAt.length;
  }
}

/** The most events (or their weight) sent within any `windowMs` (events sorted by time). */
function mostInWindow(events: { at: number; w: number }[], windowMs: number): number {
  let best = 0;
  let sum = 0;
  let from = 0;
  for (const e of events) {
    sum += e.w;
    while ((events[from] as { at: number }).at <= e.at - windowMs) sum -= (events[from++] as { w: number }).w;
    best = Math.max(best, sum);
  }
  return best;
}

/** The status a WebSocket upgrade to `url` gets from `ip` (101, or the refusal's). */
function upgradeStatus(url: URL, ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        origin: ORIGIN,
        "cf-connecting-ip": ip,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

export const publicKeyBench: Bench = {
  name: "public-key",
  async run(log) {
    const fixtures = await chatFixtures("chatedge_bench_public_key");
    const { databaseUrl, fake } = fixtures;
    const key = await seedTenant(databaseUrl);
    const before = new Set(workerdPids());
    const worker = await startBenchWorker(databaseUrl, {
      consumers: true,
      bindings: {
        OPENAI_API_KEY: UPSTREAM_KEY,
        OPENAI_BASE_URL: `${fake.url}/v1`,
        ...fixtures.redis,
      },
    });
    log(
      `chatedge ${worker.url}; script from ${SCRIPT_IP} for ${DURATION_MS / 1000} s, <= ${MAX_REQUESTS} requests`,
    );

    /** One widget request as a browser (or a script posing as one) on `ip` sends it. */
    const call = async (
      ip: string,
      method: "GET" | "POST",
      path: string,
      opts: { key?: string; token?: string; body?: unknown } = {},
    ): Promise<Answer> => {
      const headers: Record<string, string> = {
        authorization: `Bearer ${opts.key ?? key}`,
        origin: ORIGIN,
        "cf-connecting-ip": ip,
      };
      if (opts.token) headers["x-visitor-token"] = opts.token;
      if (opts.body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(`${worker.url}${path}`, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      const text = await res.text();
      let body: Answer["body"] = {};
      try {
        body = JSON.parse(text) as Answer["body"];
      } catch {
        // Not JSON (an unexpected failure): the status alone is counted.
      }
      return { status: res.status, length: text.length, body };
    };

    const starts = new Tally();
    const messages = new Tally();
    const control = new Tally();
    const controlStart = new Tally();
    const guesses = new Tally();
    const reads = new Tally();
    const ratings = new Tally();
    const replays = new Tally();
    const reader = { transcriptBytes: 0, entries: 0, frames: 0, closeCode: 0, socket: "" };
    const visitors: { id: string; token: string }[] = [];
    let sentByScript = 0;
    // The worker's process: its CPU over the run is what every address's requests cost together.
    const workerd = workerdPids().filter((p) => !before.has(p));
    const cpu = () => workerd.reduce((n, p) => n + cpuMs(p), 0);
    const cpu0 = cpu();
    const t0 = performance.now();
    const now = () => performance.now() - t0;

    // The script: paced evenly over the run, CONCURRENCY requests in flight at most.
    const gap = DURATION_MS / MAX_REQUESTS;
    let next = 0;
    const script = Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= MAX_REQUESTS) return;
          const wait = i * gap - now();
          if (wait > 0) await sleep(wait);
          const at = now();
          if (at >= DURATION_MS) return;
          sentByScript += 1;
          if (visitors.length === 0 || i % START_EVERY === 0) {
            const a = await call(SCRIPT_IP, "POST", "/v1/conversations", { body: {} });
            starts.add("start", a, at, 201);
            if (a.status === 201 && a.body.id && a.body.visitor_token)
              visitors.push({ id: a.body.id, token: a.body.visitor_token });
          } else {
            const v = visitors[i % visitors.length] as { id: string; token: string };
            const a = await call(SCRIPT_IP, "POST", `/v1/conversations/${v.id}/messages`, {
              token: v.token,
              body: { content: MESSAGE },
            });
            messages.add("message", a, at, 200, now() - at);
          }
        }
      }),
    );

    // A real visitor on another address: one conversation, a message every few seconds.
    const visitor = (async () => {
      await sleep(1_000);
      const s = await call(CONTROL_IP, "POST", "/v1/conversations", { body: {} });
      controlStart.add("start", s, now(), 201);
      if (s.status !== 201 || !s.body.id || !s.body.visitor_token) return;
      while (now() + CONTROL_EVERY_MS < DURATION_MS) {
        await sleep(CONTROL_EVERY_MS);
        const at = now();
        const a = await call(CONTROL_IP, "POST", `/v1/conversations/${s.body.id}/messages`, {
          token: s.body.visitor_token,
          body: { content: MESSAGE },
        });
        control.add("message", a, at, 200);
      }
    })();

    // A key guesser on a third address: well-formed keys (right checksum) that do not exist, so each
    // reaches the key lookup; then the tenant's real key from the same address.
    let first429 = -1;
    let realKeyAfter = 0;
    const guesser = (async () => {
      await sleep(5_000);
      for (let i = 0; i < MADE_UP_KEYS; i++) {
        const made = await generateKey("publishable");
        const a = await call(GUESSER_IP, "GET", "/v1/config", { key: made.key });
        guesses.add("made-up key", a, now(), 401);
        if (a.status === 429 && first429 < 0) first429 = i;
      }
      realKeyAfter = (await call(GUESSER_IP, "GET", "/v1/config")).status;
    })();

    // A fourth address: one conversation of its own, whose transcript it reads in a loop; then a
    // live socket, sent RESUME_FRAMES resume frames at once (each would replay the transcript).
    const readerRun = (async () => {
      const s = await call(READER_IP, "POST", "/v1/conversations", { body: {} });
      if (s.status !== 201 || !s.body.id || !s.body.visitor_token) return;
      const { id, visitor_token: token } = s.body;
      await call(READER_IP, "POST", `/v1/conversations/${id}/messages`, {
        token,
        body: { content: MESSAGE },
      });
      while (now() + READ_EVERY_MS < DURATION_MS) {
        const at = now();
        const a = await call(READER_IP, "GET", `/v1/conversations/${id}`, { token });
        if (a.status === 200) reader.transcriptBytes += a.length;
        reads.add("read", a, at, 200);
        await sleep(Math.max(0, at + READ_EVERY_MS - now()));
      }
      const ticket = await call(READER_IP, "POST", `/v1/conversations/${id}/live`, { token });
      if (ticket.status !== 200 || !ticket.body.url) {
        reader.socket = `ticket ${ticket.status}`;
        return;
      }
      const ws = new WebSocket(ticket.body.url);
      await new Promise<void>((resolve) => {
        const done = setTimeout(resolve, 10_000);
        ws.addEventListener("open", () => {
          for (let i = 0; i < RESUME_FRAMES; i++) ws.send(JSON.stringify({ type: "resume", after: 0 }));
        });
        ws.addEventListener("message", (e) => {
          reader.frames += 1;
          if (String(e.data).includes('"type":"entry"')) reader.entries += 1;
        });
        ws.addEventListener("close", (e) => {
          reader.closeCode = e.code;
          clearTimeout(done);
          resolve();
        });
      });
      reader.socket = reader.closeCode ? `closed ${reader.closeCode}` : "still open after 10 s";
    })();

    // A fifth address: one conversation, rated RATINGS times over (1, 2, ... 5, 1 ...: each a
    // change), then its live ticket used once and replayed TICKET_REPLAYS times.
    let rated = "";
    const raterRun = (async () => {
      await sleep(10_000);
      const s = await call(RATER_IP, "POST", "/v1/conversations", { body: {} });
      if (s.status !== 201 || !s.body.id || !s.body.visitor_token) return;
      const { id, visitor_token: token } = s.body;
      rated = id;
      await call(RATER_IP, "POST", `/v1/conversations/${id}/messages`, { token, body: { content: MESSAGE } });
      const ticket = await call(RATER_IP, "POST", `/v1/conversations/${id}/live`, { token });
      for (let i = 0; i < RATINGS; i++) {
        const body = { csat: (i % 5) + 1, comment: `rating ${i}: ${"x".repeat(1_900)}` };
        ratings.add(
          "rating",
          await call(RATER_IP, "POST", `/v1/conversations/${id}/feedback`, { token, body }),
          now(),
          200,
        );
      }
      if (!ticket.body.url) return;
      const ws = new WebSocket(ticket.body.url);
      await new Promise<void>((resolve) => {
        ws.addEventListener("open", () => ws.close());
        ws.addEventListener("close", () => resolve());
        ws.addEventListener("error", () => resolve());
      });
      const url = new URL(ticket.body.url.replace(/^ws/, "http"));
      for (let i = 0; i < TICKET_REPLAYS; i++) {
        const status = await upgradeStatus(url, RATER_IP);
        replays.add("replay", { status, length: 0, body: {} }, now(), 401);
      }
    })();

    await Promise.all([script, visitor, guesser, readerRun, raterRun]);
    // The feedback rows the ratings wrote, once the queue has delivered them (at most 10 s).
    let feedbackRows = -1;
    for (let waited = 0; waited < 10_000 && rated; waited += 500) {
      const client = new pg.Client({ connectionString: databaseUrl });
      client.on("error", () => {});
      await client.connect();
      const n = Number(
        (await client.query("select count(*)::int as n from feedback where conversation_id = $1", [rated]))
          .rows[0]?.n,
      );
      await client.end();
      if (n === feedbackRows && n > 0) break;
      feedbackRows = n;
      await sleep(500);
    }
    const seconds = now() / 1000;
    const workerCpuMs = cpu() - cpu0;
    await worker.stop();
    await fixtures.close();

    const inFirstMinute = (xs: number[]) => xs.filter((at) => at < 60_000).length;
    const tokens = messages.tokensAt.reduce((n, x) => n + x.tokens, 0);
    const tokensFirstMinute = messages.tokensAt
      .filter((x) => x.at < 60_000)
      .reduce((n, x) => n + x.tokens, 0);
    const perReply = messages.ok ? tokens / messages.ok : 0;
    // Replies grow with their conversation's history: the bound is the limit times the largest.
    const largest = Math.max(0, ...messages.tokensAt.map((x) => x.tokens));
    const byTime = (xs: number[]) => [...xs].sort((a, b) => a - b).map((at) => ({ at, w: 1 }));
    const messagesPerMinute = mostInWindow(byTime(messages.okAt), 60_000);
    const tokensPerMinute = mostInWindow(
      [...messages.tokensAt].sort((a, b) => a.at - b.at).map((x) => ({ at: x.at, w: x.tokens })),
      60_000,
    );
    const guessed401 = guesses.ok;
    log(
      `script: ${starts.ok} conversations, ${messages.ok} messages answered, ${starts.refused + messages.refused} refused of ${sentByScript}; control ${control.ok} answered; guesser ${guessed401} x 401`,
    );

    // Limits are ceilings: ratio = limit / value, so >= 1 means the limit held.
    const bound = (name: string, metric: string, value: number, limit: number | null): BenchRow => ({
      name,
      metric,
      value: round(value),
      baseline: limit === null ? null : round(limit),
      ratio: limit === null || value === 0 ? null : round(limit / value),
    });
    const one = "one address, rotating visitors";
    const rows: BenchRow[] = [
      bound(one, "requests sent", sentByScript, null),
      bound(
        one,
        "conversations started, first 60 s",
        inFirstMinute(starts.okAt),
        ADDRESS_CONVERSATIONS_PER_HOUR,
      ),
      bound(one, "conversations started per hour (whole run)", starts.ok, ADDRESS_CONVERSATIONS_PER_HOUR),
      bound(one, "conversation starts refused (429)", starts.refused, null),
      bound(one, "messages answered, first 60 s", inFirstMinute(messages.okAt), ADDRESS_MESSAGES_PER_MINUTE),
      bound(one, "messages per minute (most in any 60 s)", messagesPerMinute, ADDRESS_MESSAGES_PER_MINUTE),
      bound(one, "messages answered (whole run)", messages.ok, null),
      bound(one, "messages refused (429)", messages.refused, null),
      bound(
        one,
        "refused message p50 ms (what a refusal costs the worker)",
        pct(messages.refusedMs, 0.5),
        null,
      ),
      bound(one, "tokens, first 60 s", tokensFirstMinute, ADDRESS_MESSAGES_PER_MINUTE * largest),
      bound(
        one,
        "tokens per minute (most in any 60 s)",
        tokensPerMinute,
        ADDRESS_MESSAGES_PER_MINUTE * largest,
      ),
      bound(one, "tokens (whole run)", tokens, null),
      bound(
        "one visitor reading its transcript",
        "reads answered, first 60 s",
        inFirstMinute(reads.okAt),
        ADDRESS_READS_PER_MINUTE,
      ),
      bound(
        "one visitor reading its transcript",
        "reads per minute (most in any 60 s)",
        mostInWindow(byTime(reads.okAt), 60_000),
        ADDRESS_READS_PER_MINUTE,
      ),
      bound("one visitor reading its transcript", "reads refused (429)", reads.refused, null),
      bound(
        "one visitor's live socket",
        `entries sent for ${RESUME_FRAMES} resume frames`,
        reader.entries,
        // The transcript (its message and answer) replayed once per resume the credit pays for.
        2 * (FRAME_CREDIT / RESUME_COST),
      ),
      bound(
        `one visitor rating ${RATINGS} times`,
        "ratings recorded (200)",
        ratings.ok,
        RATINGS_PER_CONVERSATION,
      ),
      bound(
        `one visitor rating ${RATINGS} times`,
        "feedback rows written (Postgres)",
        feedbackRows,
        RATINGS_PER_CONVERSATION,
      ),
      bound(
        `one visitor rating ${RATINGS} times`,
        "refused (429: the address's messages)",
        ratings.refused,
        null,
      ),
      bound(
        `one spent live ticket replayed ${TICKET_REPLAYS} times`,
        "401 before the 429 throttle",
        replays.ok,
        AUTH_FAILURES_PER_MINUTE,
      ),
      {
        name: "another address, same run",
        metric: "messages answered (of sent)",
        value: control.ok,
        baseline: control.sent,
        ratio: round(control.ok / Math.max(1, control.sent)),
      },
      bound(
        "made-up keys, one address",
        "401 before the 429 throttle",
        first429 < 0 ? guessed401 : first429,
        AUTH_FAILURES_PER_MINUTE,
      ),
      bound("made-up keys, one address", "401 in all (of 200)", guessed401, null),
      bound("every address", "worker CPU ms, the whole run (workerd)", workerCpuMs, null),
      bound(
        "every address",
        "server errors (5xx; a sound run has 0)",
        [starts, messages, controlStart, control, guesses, reads, ratings, replays].reduce(
          (n, t) => n + t.failed,
          0,
        ),
        null,
      ),
    ];
    return {
      rows,
      notes: {
        seconds: round(seconds, 1),
        pacing: `${CONCURRENCY} in flight, one request every ${round(gap, 1)} ms; one in ${START_EVERY} starts a conversation without a token`,
        limits: {
          messagesPerMinute: ADDRESS_MESSAGES_PER_MINUTE,
          conversationsPerHour: ADDRESS_CONVERSATIONS_PER_HOUR,
          authFailuresPerMinute: AUTH_FAILURES_PER_MINUTE,
          reportedInRefusals: {
            messages: [...messages.reportedLimits],
            conversations: [...starts.reportedLimits],
          },
        },
        script: { ...starts.statuses, ...messages.statuses, visitorTokensCollected: visitors.length },
        tokensPerReply: { mean: round(perReply, 1), largest },
        tokensBaseline: "messages limit x the largest answered reply's tokens (the fake LLM counts words)",
        control: { ...controlStart.statuses, ...control.statuses },
        guesser: { ...guesses.statuses, realKeyAfterwards: realKeyAfter },
        reader: { ...reads.statuses, ...reader, readEveryMs: READ_EVERY_MS, resumeFrames: RESUME_FRAMES },
        rater: { ...ratings.statuses, feedbackRows, ...replays.statuses },
        timesAre: "when the request was sent, ms into the run",
      },
    };
  },
};

if (import.meta.main) {
  const out = await publicKeyBench.run((m) => console.error(m));
  console.table(out.rows);
}
