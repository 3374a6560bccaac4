/**
 * Chat overhead benchmark: what chatedge adds to a model call, on the OpenAI-compatible path with
 * every feature on (key auth, cached config, admission, settle, the analytics event sent to its
 * queue) and on the conversation API, beside five baselines measured in the same run: a direct
 * call to the local OpenAI-compatible upstream (local/fake-llm.ts), a minimal pass-through worker
 * in the same runtime (its own Miniflare, so each workerd's CPU is counted apart), the hops floor
 * (HOPS_FLOOR: one durable Durable Object write before the upstream, no logic), the conversation
 * floor (CONVERSATION_FLOOR: the conversation design's hops, no logic) and the one-hop floor
 * (ONE_HOP_FLOOR: the same with the upstream called from the conversation's object). The
 * conversation API runs twice: with the secret key, and as the widget does it, with the publishable
 * key (allowed Origin, a visitor token per conversation, every browser request counted against its
 * address); the difference between the two is what the browser checks cost.
 * Latency p50/p99 and first-token p50 at concurrency 1, p50/p99 and throughput at 16, and workerd
 * CPU per request. Targets are interleaved in random order round by round: timing here is noisy.
 *
 * CPU per request is the chat request's own: the worker measured runs no queue consumer. The
 * consumer that ingests the analytics events into Postgres is another invocation in production,
 * billed and limited on its own (Cloudflare runs a consumer batch as its own invocation), and the
 * analytics bench measures it. So that its cost stays in view, the OpenAI path also runs on a
 * second workerd whose consumers ingest what it sends, as `npm run dev` does ("openai+ingest"):
 * the difference is the ingest's CPU a message. (Until 2026-12-06 the one chat workerd ran its
 * consumers, and every chat path's CPU included the ingest of its events: 0.2-0.4 ms a message.)
 *
 * Two phases follow the rounds: long streams (longStreams: per-chunk cost, the upstream's events
 * sent at once and paced as a model sends them), and a long history
 * (longHistory: a message with a 6,000-token history, the conversation API's budget, where
 * per-message work that grows with the history shows).
 */
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import pg from "pg";
import { insertKey, seedTenantWithKey } from "../local/seed-tenants.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import {
  chatFixtures,
  closedLoop,
  cpuMs,
  FULL_HISTORY_TURNS,
  LONG_MESSAGE,
  longHistoryMessages,
  PACE_MS,
  pacedAnswer,
  pct,
  round,
  shuffled,
  workerdPids,
} from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const ROUNDS = Number(process.env.BENCH_CHAT_ROUNDS ?? 6);
const SEQ = 100; // requests per target per round at c=1
const LOADED = 400; // requests per target per round at c=16
const C = 16;
export const UPSTREAM_KEY = "sk-bench-upstream";

/** The origin the bench tenant allows its widget on. */
export const ORIGIN = "https://shop.bench.example";

// Long streams: answers of these many chunks (the fake's [[words:n]]), streamed whole. Equal steps,
// so the CPU each added chunk costs can be compared between the first and the second half: work
// that grows with the text so far (re-scanning the output) makes the second step dearer.
const STREAM_LENGTHS = [20, 260, 500] as const;
const STREAM_ROUNDS = Number(process.env.BENCH_CHAT_STREAM_ROUNDS ?? 3);
const STREAMS = 30; // streams per target, length and round, at c=1
// Paced streams: the same answers sent as a model streams them, one event a network read
// (pacedAnswer), where every chunk wakes the worker on its own. Shorter and fewer: each takes
// PACE_MS a chunk of wall time.
const PACED_LENGTHS = [20, 200] as const;
const PACED_STREAMS = 10;
type StreamTarget = "passthrough" | "openai" | "conversation";
const perStream = <T>(make: () => T) =>
  ({ passthrough: make(), openai: make(), conversation: make() }) as Record<StreamTarget, T>;
/** Conversations the long-history phase fills, and messages a target sends in each of its rounds. */
const HISTORY_CONVERSATIONS = 10;
const HISTORY_MESSAGES = 20;

type Target =
  | "direct"
  | "passthrough"
  | "floor"
  | "convFloor"
  | "oneHop"
  | "openai"
  | "ingest"
  | "conversation"
  | "widget";
const ALL: Target[] = [
  "direct",
  "passthrough",
  "floor",
  "convFloor",
  "oneHop",
  "openai",
  "ingest",
  "conversation",
  "widget",
];
// BENCH_CHAT_SKIP_CONVERSATION=1 measures only the OpenAI path and its baselines (quicker).
const TARGETS =
  process.env.BENCH_CHAT_SKIP_CONVERSATION === "1"
    ? ALL.filter((t) => t !== "conversation" && t !== "widget" && t !== "convFloor" && t !== "oneHop")
    : ALL;

/** One value per target. */
const perTarget = <T>(make: () => T) => Object.fromEntries(ALL.map((t) => [t, make()])) as Record<Target, T>;

/**
 * The widget's own address for a conversation slot: every slot (one conversation, 20 messages) comes
 * from its own address, so no address nears the per-address limits (30 messages a minute, 20 new
 * conversations an hour) and none refuses the bench.
 */
const slotAddress = (slot: number) => `10.${(slot >> 16) & 255}.${(slot >> 8) & 255}.${slot & 255}`;

/**
 * Starts a conversation as a server does (the secret key, for user `c<slot>`) or as the widget does
 * (the publishable key from ORIGIN, from the slot's own address); answers its id and the headers its
 * messages carry: the widget's with the visitor token its start issued.
 */
export async function openConversation(
  url: string,
  keys: { secret: string; publishable: string },
  kind: "conversation" | "widget",
  slot: number,
): Promise<{ id: string; headers: Record<string, string> }> {
  const headers: Record<string, string> =
    kind === "conversation"
      ? { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" }
      : {
          authorization: `Bearer ${keys.publishable}`,
          "content-type": "application/json",
          origin: ORIGIN,
          "cf-connecting-ip": slotAddress(slot),
        };
  const res = await fetch(`${url}/v1/conversations`, {
    method: "POST",
    headers,
    body: JSON.stringify(kind === "conversation" ? { user: `c${slot}` } : {}),
  });
  if (res.status !== 201) throw new Error(`${kind} start: HTTP ${res.status} ${await res.text()}`);
  const out = (await res.json()) as { id: string; visitor_token?: string };
  if (kind === "conversation") return { id: out.id, headers };
  if (!out.visitor_token) throw new Error("widget start: no visitor_token");
  return { id: out.id, headers: { ...headers, "x-visitor-token": out.visitor_token } };
}

const PASS_THROUGH = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname, { method: request.method, headers: request.headers, body: request.body });
  },
};`;

/** The floors' gate: one row inserted a call, the commit awaited before it answers. */
const FLOOR_GATE = `
import { DurableObject } from "cloudflare:workers";
export class Gate extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS admitted (user TEXT NOT NULL, at INTEGER NOT NULL)");
  }
  admit(user) {
    this.ctx.storage.sql.exec("INSERT INTO admitted (user, at) VALUES (?, ?)", user, Date.now());
    return true;
  }
}
`;

/**
 * The hops floor: the steps any design that admits a message durably before calling the model
 * takes, with no logic in them. It reads the request, makes one RPC to a SQLite Durable Object that
 * inserts one row (the commit is awaited, as an admission's is), then calls the upstream and pipes
 * its answer back. The chat paths' CPU over this floor is what their own logic costs; the floor's
 * over the pass-through is what the extra hop and commit cost on this runtime.
 */
const HOPS_FLOOR = `${FLOOR_GATE}let id;
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const body = await request.text();
    id ??= env.GATE.idFromName("bench");
    await env.GATE.get(id).admit("bench");
    return fetch(env.UPSTREAM + url.pathname, { method: request.method, headers: request.headers, body });
  },
};`;

/**
 * The conversation floors' object: a conversation's own SQLite Durable Object. A start stores a row
 * and arms its idle alarm; an object evicted between messages reads its history back, as the real
 * one does. `prepare` asks the gate (a row inserted, the commit awaited, as the hops floor's) and
 * answers the history; `record` stores a message and its answer in one commit; `turn` does all of a
 * message in the object: the gate, the upstream called with the history and read whole, the record.
 */
const CONVERSATION_OBJECT = `${FLOOR_GATE}let gateId;
export class Conversation extends DurableObject {
  history = [];
  constructor(ctx, env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").toArray().length)
      this.history = sql.exec("SELECT role, content FROM messages WHERE idx > 0 ORDER BY idx").toArray();
  }
  async start() {
    this.ctx.storage.sql.exec("CREATE TABLE messages (idx INTEGER PRIMARY KEY, role TEXT NOT NULL, content TEXT NOT NULL)");
    this.ctx.storage.sql.exec("INSERT INTO messages (idx, role, content) VALUES (0, 'meta', '{}')");
    await this.ctx.storage.setAlarm(Date.now() + 1_800_000);
    return true;
  }
  async prepare(user) {
    gateId ??= this.env.GATE.idFromName("bench");
    await this.env.GATE.get(gateId).admit(user);
    return this.history;
  }
  record(user, answer) {
    const n = this.history.length;
    this.ctx.storage.sql.exec("INSERT INTO messages (idx, role, content) VALUES (?, 'user', ?), (?, 'assistant', ?)", n + 1, user, n + 2, answer);
    this.history.push({ role: "user", content: user }, { role: "assistant", content: answer });
    return true;
  }
  async turn(content, stream) {
    const history = await this.prepare("bench");
    const res = await callUpstream(this.env, history, content, stream);
    const answer = await res.text();
    this.record(content, answer);
    return { status: res.status, type: res.headers.get("content-type"), answer };
  }
  alarm() {}
}
function callUpstream(env, history, content, stream) {
  return fetch(env.UPSTREAM + "/v1/chat/completions", {
    method: "POST",
    headers: { authorization: "Bearer " + env.UPSTREAM_KEY, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [...history, { role: "user", content }] }),
  });
}
// A floor's worker: a start makes the conversation's object; a message is answered by \`send\`.
async function serveConversation(request, env, send) {
  const url = new URL(request.url);
  const body = await request.text();
  if (url.pathname === "/v1/conversations") {
    const id = crypto.randomUUID();
    await env.CONVERSATION.get(env.CONVERSATION.idFromName(id)).start();
    return Response.json({ id }, { status: 201 });
  }
  const { content, stream } = JSON.parse(body);
  const conversation = env.CONVERSATION.get(env.CONVERSATION.idFromName(url.pathname.split("/")[3]));
  const out = await send(conversation, content, stream);
  return new Response(out.answer, { status: out.status, headers: { "content-type": out.type } });
}
`;

/**
 * The conversation floor: the hops of this platform's conversation design with no logic in them.
 * A start makes the conversation's object (CONVERSATION_OBJECT). A message is one RPC to that
 * object, which makes one to the gate and answers the history it holds; then the worker calls the
 * upstream with that history and reads it whole; then a second RPC stores the two messages (one
 * commit) and the answer goes back as the upstream sent it. The conversation API's CPU over this
 * floor is what its own logic costs; the floor's over the pass-through is what the design's hops
 * cost here.
 */
const CONVERSATION_FLOOR = `${CONVERSATION_OBJECT}
export default {
  fetch: (request, env) =>
    serveConversation(request, env, async (conversation, content, stream) => {
      const history = await conversation.prepare("bench");
      const res = await callUpstream(env, history, content, stream);
      const answer = await res.text();
      await conversation.record(content, answer);
      return { status: res.status, type: res.headers.get("content-type"), answer };
    }),
};`;

/**
 * The one-hop conversation floor: the same object, the same gate, the same commits, but the
 * worker makes one RPC a message and the object calls the upstream itself (`turn`), recording
 * the answer before it returns it. It is the floor of a design where the engine runs in the
 * conversation's object: what that design would save over CONVERSATION_FLOOR is one RPC a message.
 */
const ONE_HOP_FLOOR = `${CONVERSATION_OBJECT}
export default {
  fetch: (request, env) =>
    serveConversation(request, env, (conversation, content, stream) => conversation.turn(content, stream)),
};`;

/** The bench tenant (its widget allowed on ORIGIN); answers its secret and publishable keys. */
async function seedTenant(databaseUrl: string): Promise<{ secret: string; publishable: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    const secret = await seedTenantWithKey(
      client,
      {
        id: "bench",
        name: "Bench",
        systemPrompt: "You help.",
        model: "gpt-4o-mini",
        monthlyTokenBudget: 10_000_000_000_000,
        rateLimitPerMinute: 1_000_000,
        userRateLimitPerMinute: 100_000,
        conversationCostCapUsd: 100_000,
        allowedOrigins: [ORIGIN],
      },
      "bench",
    );
    const publishable = (await insertKey(client, "bench", "publishable", "bench widget")).key;
    return { secret, publishable };
  } finally {
    await client.end();
  }
}

/** The bench worker's bindings: the fake upstream as OpenAI, Redis through the bridge. */
function chatBindings(fixtures: Awaited<ReturnType<typeof chatFixtures>>): Record<string, string> {
  return { OPENAI_API_KEY: UPSTREAM_KEY, OPENAI_BASE_URL: `${fixtures.fake.url}/v1`, ...fixtures.redis };
}

/**
 * What the chat benchmarks run against (this one and bench/profile-chat.ts): a fresh database
 * `name` with the bench tenant, the fake upstream, and the real worker pointed at it, with its
 * queue consumers unless `consumers` is false. `beforeWorker` runs between the fixtures and the
 * worker (the pass-through baseline starts there, so each workerd's process can be told apart).
 */
export async function chatSetup(
  name: string,
  opts: {
    inspectorPort?: number;
    beforeWorker?: (fake: { url: string }) => Promise<void>;
    consumers?: boolean;
    /** Also run the pass-through in the worker's process, as a control (`worker.controlUrl`: bench/ab.ts). */
    control?: boolean;
  } = {},
) {
  const fixtures = await chatFixtures(name);
  const keys = await seedTenant(fixtures.databaseUrl);
  await opts.beforeWorker?.(fixtures.fake);
  const worker = await startBenchWorker(fixtures.databaseUrl, {
    consumers: opts.consumers ?? true,
    inspectorPort: opts.inspectorPort,
    bindings: chatBindings(fixtures),
    control: opts.control ? { script: PASS_THROUGH, upstream: fixtures.fake.url } : undefined,
  });
  return { fixtures, keys, worker };
}

const body = (user: string, stream: boolean) =>
  JSON.stringify({
    model: "gpt-4o-mini",
    user,
    stream,
    messages: [{ role: "user", content: "hello there, where is my order" }],
  });

export const chatBench: Bench = {
  name: "chat",
  async run(log) {
    const before = new Set(workerdPids());
    // A baseline worker in a Miniflare (and so a workerd) of its own, pointed at the upstream.
    const baseline = async (
      script: string,
      upstream: string,
      durableObjects?: Record<string, { className: string; useSQLite: boolean }>,
    ) => {
      const mf = new Miniflare(
        convertV4MiniflareOptions({
          log: new Log(LogLevel.ERROR),
          modules: true,
          script,
          compatibilityDate: "2026-10-15",
          bindings: { UPSTREAM: upstream, UPSTREAM_KEY },
          ...(durableObjects ? { durableObjects } : {}),
        }),
      );
      const url = (await mf.ready).toString().replace(/\/$/, "");
      const pid = workerdPids().find((p) => !before.has(p));
      before.add(pid ?? -1);
      return { mf, url, pid };
    };
    let pass: Awaited<ReturnType<typeof baseline>> | undefined;
    let floor: Awaited<ReturnType<typeof baseline>> | undefined;
    let convFloor: Awaited<ReturnType<typeof baseline>> | undefined;
    let oneHop: Awaited<ReturnType<typeof baseline>> | undefined;
    const { fixtures, keys, worker } = await chatSetup("chatedge_bench_chat", {
      consumers: false,
      async beforeWorker(upstream) {
        pass = await baseline(PASS_THROUGH, upstream.url);
        floor = await baseline(HOPS_FLOOR, upstream.url, { GATE: { className: "Gate", useSQLite: true } });
        const conversationObjects = {
          GATE: { className: "Gate", useSQLite: true },
          CONVERSATION: { className: "Conversation", useSQLite: true },
        };
        if (TARGETS.includes("convFloor")) {
          convFloor = await baseline(CONVERSATION_FLOOR, upstream.url, conversationObjects);
          oneHop = await baseline(ONE_HOP_FLOOR, upstream.url, conversationObjects);
        }
      },
    });
    const { fake } = fixtures;
    const chatPid = workerdPids().find((p) => !before.has(p));
    before.add(chatPid ?? -1);
    // The same worker with its queue consumers, for the OpenAI path with its events ingested.
    const ingesting = await startBenchWorker(fixtures.databaseUrl, {
      consumers: true,
      bindings: chatBindings(fixtures),
    });
    const ingestPid = workerdPids().find((p) => !before.has(p));
    const passUrl = pass?.url ?? "";
    const floorUrl = floor?.url ?? "";
    const passPid = pass?.pid;
    const floorPid = floor?.pid;
    const convFloorUrl = convFloor?.url ?? "";
    const oneHopUrl = oneHop?.url ?? "";
    if (
      !passPid ||
      !floorPid ||
      !chatPid ||
      !ingestPid ||
      (convFloor && !convFloor.pid) ||
      (oneHop && !oneHop.pid)
    )
      throw new Error("could not find the workerd processes");
    log(
      `upstream ${fake.url}, pass-through ${passUrl}, hops floor ${floorUrl}, conversation floor ${convFloorUrl}, one-hop floor ${oneHopUrl}, chatedge ${worker.url}`,
    );

    const auth = { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" };
    // Each client (a lane of the closed loop: one at c=1, 16 at c=16) holds its own conversation
    // for 20 messages, sent one after another as a visitor sends them, so history stays small and
    // comparable; then it starts the next. The start is counted in the target's CPU, not in its
    // latency. The widget's start issues the visitor token its messages carry. (Until 2026-12-06
    // the 16 clients shared one conversation, 16 messages in it at once, which no widget does.)
    const sessions = new Map<string, Promise<{ id: string; headers: Record<string, string> }>>();
    const sent = new Map<string, number>();
    let slots = 0;
    // The conversation floors are sent what the conversation API is, at their own addresses.
    const conversationBase = (target: Target) =>
      target === "convFloor" ? convFloorUrl : target === "oneHop" ? oneHopUrl : worker.url;
    const session = (target: "conversation" | "widget" | "convFloor" | "oneHop", lane: number) => {
      const n = sent.get(`${target}:${lane}`) ?? 0;
      sent.set(`${target}:${lane}`, n + 1);
      const key = `${target}:${lane}:${Math.floor(n / 20)}`;
      const known = sessions.get(key);
      if (known) return known;
      const kind = target === "widget" ? "widget" : "conversation";
      const started = openConversation(conversationBase(target), keys, kind, slots++);
      sessions.set(key, started);
      return started;
    };

    let seq = 0;
    /** One request to a target; answers [total ms, first-token ms]. */
    const hit = async (target: Target, stream: boolean, lane = 0): Promise<[number, number]> => {
      seq += 1;
      let url: string;
      let init: RequestInit;
      if (target === "direct" || target === "passthrough" || target === "floor") {
        const base = target === "direct" ? fake.url : target === "floor" ? floorUrl : passUrl;
        url = `${base}/v1/chat/completions`;
        init = {
          method: "POST",
          headers: { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" },
          body: body(`u${seq % 1000}`, stream),
        };
      } else if (target === "openai" || target === "ingest") {
        url = `${target === "openai" ? worker.url : ingesting.url}/v1/chat/completions`;
        init = { method: "POST", headers: auth, body: body(`u${seq % 1000}`, stream) };
      } else {
        const s = await session(target, lane);
        url = `${conversationBase(target)}/v1/conversations/${s.id}/messages`;
        init = {
          method: "POST",
          headers: s.headers,
          body: JSON.stringify({ content: "hello there, where is my order", stream }),
        };
      }
      const t = performance.now();
      const res = await fetch(url, init);
      if (res.status !== 200) throw new Error(`${target}: HTTP ${res.status} ${await res.text()}`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let first = Number.NaN;
      for (;;) {
        const { done } = await reader.read();
        if (Number.isNaN(first)) first = performance.now() - t;
        if (done) break;
      }
      return [performance.now() - t, first];
    };

    const lat1 = perTarget<number[]>(() => []);
    const first1 = perTarget<number[]>(() => []);
    const lat16 = perTarget<number[]>(() => []);
    const wall16 = perTarget(() => ({ ms: 0, n: 0 }));
    const cpu = perTarget(() => ({ ms: 0, n: 0 }));
    // The same CPU split by phase: one request at a time (with its streams), then 16 at a time
    // with the wait after it (what a phase leaves running lands in the next one's share).
    const cpu1 = perTarget(() => ({ ms: 0, n: 0 }));
    const cpu16 = perTarget(() => ({ ms: 0, n: 0 }));
    const pids: Partial<Record<Target, number>> = {
      passthrough: passPid,
      floor: floorPid,
      convFloor: convFloor?.pid,
      oneHop: oneHop?.pid,
      openai: chatPid,
      ingest: ingestPid,
      conversation: chatPid,
      widget: chatPid,
    };
    const pidOf = (t: Target) => pids[t];

    log("warming up");
    for (const t of TARGETS) await closedLoop(200, 4, (_, lane) => hit(t, false, lane).then((r) => r[0]));
    // Let queued analytics batches drain so they do not land in the first round's CPU.
    await new Promise((r) => setTimeout(r, 2_500));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of shuffled(TARGETS)) {
        const pid = pidOf(t);
        const c0 = pid ? cpuMs(pid) : 0;
        for (let i = 0; i < SEQ; i++) lat1[t].push((await hit(t, false))[0]);
        for (let i = 0; i < SEQ / 2; i++) first1[t].push((await hit(t, true))[1]);
        const c1 = pid ? cpuMs(pid) : 0;
        const loaded = await closedLoop(LOADED, C, (_, lane) => hit(t, false, lane).then((r) => r[0]));
        lat16[t].push(...loaded.lat);
        wall16[t].ms += loaded.ms;
        wall16[t].n += LOADED;
        // Background work (settlements, queue batches) counts against the target that caused it.
        await new Promise((r) => setTimeout(r, 2_200));
        if (pid) {
          const c2 = cpuMs(pid);
          cpu[t].ms += c2 - c0;
          cpu[t].n += SEQ + SEQ / 2 + LOADED;
          cpu1[t].ms += c1 - c0;
          cpu1[t].n += SEQ + SEQ / 2;
          cpu16[t].ms += c2 - c1;
          cpu16[t].n += LOADED;
        }
      }
      log(
        `round ${round}/${ROUNDS}: c=1 p50 direct ${round3(pct(lat1.direct, 0.5))} pass ${round3(pct(lat1.passthrough, 0.5))} floor ${round3(pct(lat1.floor, 0.5))} conv floor ${round3(pct(lat1.convFloor, 0.5))} one-hop ${round3(pct(lat1.oneHop, 0.5))} openai ${round3(pct(lat1.openai, 0.5))} +ingest ${round3(pct(lat1.ingest, 0.5))} conv ${round3(pct(lat1.conversation, 0.5))} widget ${round3(pct(lat1.widget, 0.5))} ms`,
      );
    }

    const phases: StreamSetup = {
      passthrough: { url: `${passUrl}/v1/chat/completions`, pid: passPid },
      openai: { url: `${worker.url}/v1/chat/completions`, pid: chatPid },
      conversation: TARGETS.includes("conversation") ? { url: worker.url, pid: chatPid } : undefined,
      auth,
      keys,
      log,
    };
    const streams = await longStreams(phases);
    const history = await longHistory(phases);

    await worker.stop();
    await ingesting.stop();
    await pass?.mf.dispose();
    await floor?.mf.dispose();
    await convFloor?.mf.dispose();
    await oneHop?.mf.dispose();
    await fixtures.close();

    const p50 = (t: Target) => pct(lat1[t], 0.5);
    const p99 = (t: Target) => pct(lat1[t], 0.99);
    const per = (c: { ms: number; n: number }) => (c.n ? c.ms / c.n : Number.NaN);
    const cpuPer = (t: Target) => per(cpu[t]);
    const rps = (t: Target) => (wall16[t].n / wall16[t].ms) * 1000;
    const rows: BenchRow[] = [
      {
        name: "upstream direct",
        metric: "p50 ms c=1",
        value: round(p50("direct")),
        baseline: null,
        ratio: null,
      },
      {
        name: "pass-through worker",
        metric: "p50 ms c=1",
        value: round(p50("passthrough")),
        baseline: round(p50("direct")),
        ratio: round(p50("direct") / p50("passthrough")),
      },
      {
        name: "pass-through worker",
        metric: "cpu ms/request",
        value: round(cpuPer("passthrough")),
        baseline: null,
        ratio: null,
      },
    ];
    // A target's CPU a request in `c` (all, or one phase) against the pass-through's.
    const cpuVsPass = (
      name: string,
      t: Target,
      metric: string,
      c: Record<Target, { ms: number; n: number }>,
    ) => ({
      name,
      metric,
      value: round(per(c[t])),
      baseline: round(per(c.passthrough)),
      ratio: round(per(c.passthrough) / per(c[t])),
    });
    // The same for the whole run and for each phase.
    const cpuRowsVsPass = (name: string, t: Target) => [
      cpuVsPass(name, t, "cpu ms/request", cpu),
      cpuVsPass(name, t, "cpu ms/request c=1 phase", cpu1),
      cpuVsPass(name, t, "cpu ms/request c=16 phase", cpu16),
    ];
    // The hops floor against the pass-through: what one durable DO write before the upstream costs.
    const floorName = "hops floor (one DO write, then the upstream)";
    rows.push(
      {
        name: floorName,
        metric: "p50 ms added over pass-through c=1",
        value: round(p50("floor") - p50("passthrough")),
        baseline: null,
        ratio: null,
      },
      ...cpuRowsVsPass(floorName, "floor"),
    );
    // The conversation floor against the pass-through: what the conversation design's hops cost.
    const convFloorName =
      "conversation floor (a start's object; a message's three RPCs, two commits, the upstream read whole)";
    // The one-hop floor: the same object and commits with the upstream called from the object.
    const oneHopName = "one-hop conversation floor (the object calls the upstream: one RPC a message)";
    if (TARGETS.includes("convFloor"))
      rows.push(...cpuRowsVsPass(convFloorName, "convFloor"), ...cpuRowsVsPass(oneHopName, "oneHop"), {
        name: oneHopName,
        metric: "cpu ms/request vs conversation floor",
        value: round(cpuPer("oneHop")),
        baseline: round(cpuPer("convFloor")),
        ratio: round(cpuPer("convFloor") / cpuPer("oneHop")),
      });
    for (const t of TARGETS.filter((x) => x === "openai" || x === "conversation")) {
      const name = t === "openai" ? "chat (OpenAI path)" : "chat (conversation API)";
      rows.push(
        {
          name,
          metric: "p50 ms c=1",
          value: round(p50(t)),
          baseline: round(p50("passthrough")),
          ratio: round(p50("passthrough") / p50(t)),
        },
        {
          name,
          metric: "p50 ms added over pass-through c=1",
          value: round(p50(t) - p50("passthrough")),
          baseline: null,
          ratio: null,
        },
        {
          name,
          metric: "p99 ms c=1",
          value: round(p99(t)),
          baseline: round(p99("passthrough")),
          ratio: round(p99("passthrough") / p99(t)),
        },
        {
          name,
          metric: "first-token p50 ms c=1",
          value: round(pct(first1[t], 0.5)),
          baseline: round(pct(first1.passthrough, 0.5)),
          ratio: round(pct(first1.passthrough, 0.5) / pct(first1[t], 0.5)),
        },
        {
          name,
          metric: "p50 ms c=16",
          value: round(pct(lat16[t], 0.5)),
          baseline: round(pct(lat16.passthrough, 0.5)),
          ratio: round(pct(lat16.passthrough, 0.5) / pct(lat16[t], 0.5)),
        },
        {
          name,
          metric: "p99 ms c=16",
          value: round(pct(lat16[t], 0.99)),
          baseline: round(pct(lat16.passthrough, 0.99)),
          ratio: round(pct(lat16.passthrough, 0.99) / pct(lat16[t], 0.99)),
        },
        {
          name,
          metric: "req/s c=16",
          value: round(rps(t), 0),
          baseline: round(rps("passthrough"), 0),
          ratio: round(rps(t) / rps("passthrough")),
        },
        ...cpuRowsVsPass(name, t),
        // What the path's own logic costs over the same hops with none in them.
        {
          name,
          metric: "cpu ms/request vs hops floor",
          value: round(cpuPer(t)),
          baseline: round(cpuPer("floor")),
          ratio: round(cpuPer("floor") / cpuPer(t)),
        },
      );
      if (t === "conversation")
        rows.push({
          name,
          metric: "cpu ms/request vs conversation floor",
          value: round(cpuPer(t)),
          baseline: round(cpuPer("convFloor")),
          ratio: round(cpuPer("convFloor") / cpuPer(t)),
        });
    }
    // The OpenAI path on the workerd that also ingests its analytics events (queue consumers on).
    const ingestName = "chat (OpenAI path) + analytics ingest in-process";
    rows.push(cpuVsPass(ingestName, "ingest", "cpu ms/request", cpu), {
      name: ingestName,
      metric: "ingest cpu ms/message (over the OpenAI path)",
      value: round(cpuPer("ingest") - cpuPer("openai")),
      baseline: null,
      ratio: null,
    });
    if (TARGETS.includes("widget")) {
      // The same conversation API through the publishable key, judged against the secret key.
      const name = "chat (widget, publishable key)";
      const vs = (metric: string, value: number, baseline: number, higherIsBetter = false) => ({
        name,
        metric,
        value: round(value),
        baseline: round(baseline),
        ratio: round(higherIsBetter ? value / baseline : baseline / value),
      });
      const added = (metric: string, value: number) => ({
        name,
        metric,
        value: round(value),
        baseline: null,
        ratio: null,
      });
      rows.push(
        vs("p50 ms c=1", p50("widget"), p50("conversation")),
        added("p50 ms added over conversation c=1", p50("widget") - p50("conversation")),
        vs("p99 ms c=1", p99("widget"), p99("conversation")),
        vs("first-token p50 ms c=1", pct(first1.widget, 0.5), pct(first1.conversation, 0.5)),
        vs("p50 ms c=16", pct(lat16.widget, 0.5), pct(lat16.conversation, 0.5)),
        vs("p99 ms c=16", pct(lat16.widget, 0.99), pct(lat16.conversation, 0.99)),
        vs("req/s c=16", rps("widget"), rps("conversation"), true),
        vs("cpu ms/request", cpuPer("widget"), cpuPer("conversation")),
        added("cpu ms/request added over conversation", cpuPer("widget") - cpuPer("conversation")),
        vs("p50 ms c=1 vs pass-through", p50("widget"), p50("passthrough")),
        added("p50 ms added over pass-through c=1", p50("widget") - p50("passthrough")),
        vs("cpu ms/request vs pass-through", cpuPer("widget"), cpuPer("passthrough")),
        vs("cpu ms/request vs conversation floor", cpuPer("widget"), cpuPer("convFloor")),
      );
    }
    rows.push(...streams.rows, ...history.rows);
    return {
      rows,
      notes: {
        longStreams: streams.notes,
        longHistory: history.notes,
        rounds: ROUNDS,
        perRound: { c1: SEQ, c1Streams: SEQ / 2, c16: LOADED },
        widget:
          "publishable key, allowed Origin, X-Visitor-Token from the start call, one CF-Connecting-IP per conversation (20 messages); baseline: the conversation API with the secret key",
        conversations:
          "each concurrent client holds its own conversation for 20 messages, sent one after another (16 conversations at once at c=16)",
        floor:
          "hops floor: reads the request, one RPC to a SQLite Durable Object inserting one row, then the upstream piped back (no logic)",
        conversationFloor:
          "conversation floor: a start makes a SQLite Durable Object per conversation (a row, an idle alarm); a message makes one RPC to it, which makes one to a gate object inserting a row, calls the upstream with the history it answered, reads the answer whole and stores both messages in a second RPC (no logic); sent what the conversation API is sent, one conversation per client for 20 messages",
        oneHopFloor:
          "one-hop floor: the conversation floor's object, gate, starts and commits, but one RPC a message: the object asks the gate, calls the upstream with its history, reads the answer whole and records it before returning it",
        ingest:
          "the chat worker runs no queue consumer (in production the analytics ingest is an invocation of its own); openai+ingest is the OpenAI path on a second workerd whose consumers ingest its events into Postgres",
        targets: "OpenAI path p50 added over pass-through < 2 ms at c=1; CPU per request < 2x pass-through",
      },
    };
  },
};

const round3 = (n: number) => round(n, 2);

interface StreamSetup {
  passthrough: { url: string; pid: number };
  openai: { url: string; pid: number };
  /** The worker's base URL; undefined skips the conversation API. */
  conversation: { url: string; pid: number } | undefined;
  auth: Record<string, string>;
  keys: { secret: string; publishable: string };
  log: (msg: string) => void;
}

/** Starts a conversation for user `c<slot>` on the worker the phases send to; answers its id. */
async function startConversation(s: StreamSetup, slot: number): Promise<string> {
  if (!s.conversation) throw new Error("the conversation API is skipped in this run");
  return (await openConversation(s.conversation.url, s.keys, "conversation", slot)).id;
}

/**
 * Streams answers of STREAM_LENGTHS chunks through the pass-through worker, the OpenAI path and the
 * conversation API (one message per conversation, so no history grows with the answers; the
 * start is counted in the CPU of every length alike and cancels out of the per-chunk figures).
 * Per chunk: the CPU each added chunk costs, from the step 20 -> 260 and from 260 -> 500. Then the
 * same paced (PACED_LENGTHS, one event a network read, PACE_MS apart), as a model streaming while
 * it generates sends them: there every chunk wakes the worker, and its cost per chunk is compared
 * with the pass-through's, which forwards the bytes without running any JavaScript.
 */
async function longStreams(s: StreamSetup): Promise<{ rows: BenchRow[]; notes: Record<string, unknown> }> {
  const targets: StreamTarget[] = s.conversation
    ? ["passthrough", "openai", "conversation"]
    : ["passthrough", "openai"];
  const key = (t: StreamTarget, n: number, paced = false) => `${t}:${n}${paced ? " paced" : ""}`;
  const cpu = new Map<string, { ms: number; n: number }>();
  const lat = new Map<string, number[]>();
  let seq = 0;
  const content = (n: number, paced: boolean) =>
    `hello there, where is my order ${paced ? pacedAnswer(n) : `[[words:${n}]]`}`;
  const one = async (t: StreamTarget, n: number, paced = false): Promise<number> => {
    seq += 1;
    let url: string;
    let init: RequestInit;
    if (t === "conversation" && s.conversation) {
      const id = await startConversation(s, seq);
      url = `${s.conversation.url}/v1/conversations/${id}/messages`;
      init = {
        method: "POST",
        headers: s.auth,
        body: JSON.stringify({ content: content(n, paced), stream: true }),
      };
    } else {
      url = t === "passthrough" ? s.passthrough.url : s.openai.url;
      const headers =
        t === "passthrough"
          ? { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" }
          : s.auth;
      init = {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: "gpt-4o-mini",
          user: `u${seq % 1000}`,
          stream: true,
          messages: [{ role: "user", content: content(n, paced) }],
        }),
      };
    }
    const t0 = performance.now();
    const res = await fetch(url, init);
    if (res.status !== 200) throw new Error(`${t} stream: HTTP ${res.status} ${await res.text()}`);
    const text = await res.text();
    const ms = performance.now() - t0;
    // The whole answer arrived: n words, the last one padding ("word").
    if (!text.includes(" word")) throw new Error(`${t} stream of ${n}: answer not streamed whole`);
    return ms;
  };
  const steps: Array<{ n: number; paced: boolean; streams: number }> = [
    ...STREAM_LENGTHS.map((n) => ({ n, paced: false, streams: STREAMS })),
    ...PACED_LENGTHS.map((n) => ({ n, paced: true, streams: PACED_STREAMS })),
  ];
  s.log("long streams: warming up");
  for (const t of targets) for (const st of steps) for (let i = 0; i < 3; i++) await one(t, st.n, st.paced);
  await new Promise((r) => setTimeout(r, 2_500));
  for (let r = 1; r <= STREAM_ROUNDS; r++) {
    for (const t of shuffled(targets)) {
      for (const st of shuffled(steps)) {
        const pid = s[t]?.pid ?? 0;
        const k = key(t, st.n, st.paced);
        const c0 = cpuMs(pid);
        const xs = lat.get(k) ?? [];
        for (let i = 0; i < st.streams; i++) xs.push(await one(t, st.n, st.paced));
        lat.set(k, xs);
        // Background work (settlements, analytics batches) counts against the streams that caused it.
        await new Promise((res) => setTimeout(res, 2_200));
        const c = cpu.get(k) ?? { ms: 0, n: 0 };
        c.ms += cpuMs(pid) - c0;
        c.n += st.streams;
        cpu.set(k, c);
      }
    }
    s.log(`long streams: round ${r}/${STREAM_ROUNDS}`);
  }
  const per = (t: StreamTarget, n: number, paced = false) => {
    const c = cpu.get(key(t, n, paced));
    return c ? c.ms / c.n : Number.NaN;
  };
  const p50 = (t: StreamTarget, n: number) => pct(lat.get(key(t, n)) ?? [], 0.5);
  const [short, mid, long] = STREAM_LENGTHS;
  // ms of CPU per added chunk over a step of lengths, reported in microseconds.
  const slope = (t: StreamTarget, a: number, b: number, paced = false) =>
    ((per(t, b, paced) - per(t, a, paced)) / (b - a)) * 1000;
  const rows: BenchRow[] = [];
  const cpuRow = (name: string, metric: string, value: number, baseline: number) => ({
    name,
    metric,
    value: round(value),
    baseline: round(baseline),
    ratio: round(baseline / value),
  });
  rows.push(
    {
      name: `pass-through worker, ${long}-chunk stream`,
      metric: "cpu ms/request",
      value: round(per("passthrough", long)),
      baseline: null,
      ratio: null,
    },
    {
      // About nothing: it forwards the upstream's bytes without looking at them.
      name: `pass-through worker, ${long}-chunk stream`,
      metric: `cpu us/chunk (${mid}->${long} step)`,
      value: round(slope("passthrough", mid, long)),
      baseline: null,
      ratio: null,
    },
  );
  for (const t of targets.filter((x) => x !== "passthrough")) {
    const name = `${t === "openai" ? "chat (OpenAI path)" : "chat (conversation API)"}, ${long}-chunk stream`;
    rows.push(
      cpuRow(name, "cpu ms/request vs pass-through", per(t, long), per("passthrough", long)),
      {
        name,
        metric: `cpu us/chunk (${mid}->${long} step)`,
        value: round(slope(t, mid, long)),
        baseline: null,
        ratio: null,
      },
      // The same CPU per chunk in both halves (ratio about 1): nothing per chunk grows with the text so far.
      cpuRow(
        name,
        `cpu us/chunk, ${mid}->${long} step vs ${short}->${mid} step`,
        slope(t, mid, long),
        slope(t, short, mid),
      ),
      {
        name,
        metric: "p50 ms c=1 (whole stream)",
        value: round(p50(t, long)),
        baseline: round(p50("passthrough", long)),
        ratio: round(p50("passthrough", long) / p50(t, long)),
      },
      {
        name,
        metric: `p50 ms added over pass-through c=1 (baseline: at ${short} chunks)`,
        value: round(p50(t, long) - p50("passthrough", long)),
        baseline: round(p50(t, short) - p50("passthrough", short)),
        ratio: null,
      },
    );
  }
  // Paced: what a chunk costs when each one wakes the worker, as a model streaming while it
  // generates makes it; the pass-through forwards it without JavaScript.
  const [pacedShort, pacedLong] = PACED_LENGTHS;
  const pacedSlope = (t: StreamTarget) => slope(t, pacedShort, pacedLong, true);
  rows.push({
    name: `pass-through worker, ${pacedLong}-chunk paced stream`,
    metric: "cpu ms/request",
    value: round(per("passthrough", pacedLong, true)),
    baseline: null,
    ratio: null,
  });
  for (const t of targets.filter((x) => x !== "passthrough")) {
    const name = `${t === "openai" ? "chat (OpenAI path)" : "chat (conversation API)"}, ${pacedLong}-chunk paced stream`;
    rows.push(
      cpuRow(
        name,
        "cpu ms/request vs pass-through",
        per(t, pacedLong, true),
        per("passthrough", pacedLong, true),
      ),
      cpuRow(
        name,
        `cpu us/chunk (${pacedShort}->${pacedLong} step) vs pass-through`,
        pacedSlope(t),
        pacedSlope("passthrough"),
      ),
    );
  }
  const notes = {
    pacedLengths: PACED_LENGTHS,
    pacedStreamsPerRound: PACED_STREAMS,
    paceMs: PACE_MS,
    lengths: STREAM_LENGTHS,
    rounds: STREAM_ROUNDS,
    streamsPerRound: STREAMS,
    cpuMsPerStream: Object.fromEntries([...cpu].map(([k, c]) => [k, round(c.ms / c.n)])),
    p50Ms: Object.fromEntries([...lat].map(([k, xs]) => [k, round(pct(xs, 0.5))])),
    added:
      "p50 ms added over pass-through: value at the long length, baseline the same at the short one (the difference is what streaming the extra chunks adds)",
  };
  return { rows, notes };
}

/**
 * A message with a history as long as the conversation API keeps (its 6,000-token budget): long
 * messages (LONG_MESSAGE, echoed by the fake, about 670 tokens a turn) into conversations filled
 * with nine such turns; the OpenAI path and the pass-through are sent the same history in the
 * request, as a client of the stateless API sends it. Per-message work that grows with the
 * history shows here and not in the short conversations of the main phases.
 */
async function longHistory(s: StreamSetup): Promise<{ rows: BenchRow[]; notes: Record<string, unknown> }> {
  const targets: StreamTarget[] = s.conversation
    ? ["passthrough", "openai", "conversation"]
    : ["passthrough", "openai"];
  const messages = longHistoryMessages();
  const full: string[] = [];
  let seq = 0;
  const post = async (url: string, headers: Record<string, string>, body: string) => {
    const t0 = performance.now();
    const res = await fetch(url, { method: "POST", headers, body });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`long history ${url}: HTTP ${res.status} ${text}`);
    return performance.now() - t0;
  };
  const one = (t: StreamTarget): Promise<number> => {
    seq += 1;
    if (t === "conversation" && s.conversation) {
      const id = full[seq % full.length] as string;
      const url = `${s.conversation.url}/v1/conversations/${id}/messages`;
      return post(url, s.auth, JSON.stringify({ content: LONG_MESSAGE }));
    }
    const body = JSON.stringify({ model: "gpt-4o-mini", user: `h${seq % 100}`, messages });
    return t === "passthrough"
      ? post(
          s.passthrough.url,
          { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" },
          body,
        )
      : post(s.openai.url, s.auth, body);
  };
  s.log("long history: filling conversations");
  if (s.conversation) {
    for (let c = 0; c < HISTORY_CONVERSATIONS; c++) {
      const id = await startConversation(s, c);
      full.push(id);
      for (let i = 0; i < FULL_HISTORY_TURNS; i++) {
        await post(
          `${s.conversation.url}/v1/conversations/${id}/messages`,
          s.auth,
          JSON.stringify({ content: LONG_MESSAGE }),
        );
      }
    }
  }
  for (const t of targets) for (let i = 0; i < 10; i++) await one(t);
  await new Promise((r) => setTimeout(r, 2_500));
  const cpu = perStream(() => ({ ms: 0, n: 0 }));
  const lat = perStream<number[]>(() => []);
  for (let r = 1; r <= STREAM_ROUNDS; r++) {
    for (const t of shuffled(targets)) {
      const pid = s[t]?.pid ?? 0;
      const c0 = cpuMs(pid);
      for (let i = 0; i < HISTORY_MESSAGES; i++) lat[t].push(await one(t));
      await new Promise((res) => setTimeout(res, 2_200));
      cpu[t].ms += cpuMs(pid) - c0;
      cpu[t].n += HISTORY_MESSAGES;
    }
    s.log(`long history: round ${r}/${STREAM_ROUNDS}`);
  }
  const per = (t: StreamTarget) => (cpu[t].n ? cpu[t].ms / cpu[t].n : Number.NaN);
  const name = (t: StreamTarget) =>
    `${t === "passthrough" ? "pass-through worker" : t === "openai" ? "chat (OpenAI path)" : "chat (conversation API)"}, 6,000-token history`;
  const rows: BenchRow[] = [
    {
      name: name("passthrough"),
      metric: "cpu ms/request",
      value: round(per("passthrough")),
      baseline: null,
      ratio: null,
    },
  ];
  for (const t of targets.filter((x) => x !== "passthrough")) {
    rows.push(
      {
        name: name(t),
        metric: "cpu ms/request vs pass-through",
        value: round(per(t)),
        baseline: round(per("passthrough")),
        ratio: round(per("passthrough") / per(t)),
      },
      {
        name: name(t),
        metric: "p50 ms c=1",
        value: round(pct(lat[t], 0.5)),
        baseline: round(pct(lat.passthrough, 0.5)),
        ratio: round(pct(lat.passthrough, 0.5) / pct(lat[t], 0.5)),
      },
    );
  }
  const notes = {
    turns: FULL_HISTORY_TURNS,
    conversations: HISTORY_CONVERSATIONS,
    messagesPerRound: HISTORY_MESSAGES,
    rounds: STREAM_ROUNDS,
    message: "LONG_MESSAGE (bench/lib.ts), about 330 tokens; the fake echoes it",
  };
  return { rows, notes };
}

if (import.meta.main) {
  const out = await chatBench.run((m) => console.error(m));
  console.table(out.rows);
}
