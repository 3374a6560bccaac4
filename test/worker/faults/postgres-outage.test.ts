/**
 * Postgres gone, end to end: a tenant whose config is cached keeps chatting (OpenAI-compatible API
 * and conversation API, ending and rating conversations) while the analytics events wait in the
 * real analytics queue, retried by the worker's own queue handler; once Postgres is back every
 * turn, conversation and rating lands exactly once and nothing is dead-lettered. And a tenant whose
 * tool list is not cached still gets its answer while Postgres is down, with no tools that time
 * (its OpenAI route, asked to run the tools on the server, answers 503 instead).
 *
 * How the outage is made: workerd hands the worker's handlers (fetch and queue alike) the very
 * `env` object this file imports, and loadEnv() parses it once per object, so pointing that parsed
 * view's DATABASE_URL at a target the relay refuses (as test/worker/*\/faults.test.ts do per call)
 * cuts Postgres off for everything in this isolate: requests, the queue consumer, the DLQ consumer.
 * The worker project's files share one workerd (vitest.config.ts) but run one at a time, and
 * `afterEach` puts the switch back (and the queue handler), so no other file is affected.
 * The test reads the database during the outage through a separate parse of a copy of `env`.
 *
 * How deliveries are observed: the queue events Miniflare delivers run `worker.queue` of the very
 * module this file imports, so the test wraps it to record, per message, its attempt and whether
 * the handler acked or retried it (with which delay), and then runs the real handler unchanged.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { costOf } from "../../../src/admission/pricing";
import { retryDelaySeconds } from "../../../src/analytics/consumer";
import type { AnalyticsEvent } from "../../../src/analytics/events";
import { isPack } from "../../../src/analytics/pack";
import { cacheStats } from "../../../src/cache/stats";
import { openDb } from "../../../src/db/client";
import { type Env, loadEnv } from "../../../src/env";
import worker from "../../../src/index";
import { ANALYTICS_DLQ_NAME, ANALYTICS_QUEUE_NAME, countRows, dailyRows } from "../analytics/helpers";
import { chatTenant, completions, sseFrames, upstreamRequests } from "../chat/helpers";
import { eventually } from "../eventually";
import { call, query, send, sql } from "../helpers";

const MODEL = "gpt-4o-mini";

// ---- the outage switch ----------------------------------------------------------------------

/** The parsed environment every handler of this isolate uses. */
function workerEnv(): Env {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return loaded.env;
}

const REAL_DATABASE_URL = workerEnv().DATABASE_URL;
/** The same database behind a port the relay refuses to connect to: Postgres unreachable. */
const DEAD_DATABASE_URL = `postgres://postgres@127.0.0.1:1/${new URL(REAL_DATABASE_URL).pathname.slice(1)}`;

const postgresDown = (down: boolean) => {
  workerEnv().DATABASE_URL = down ? DEAD_DATABASE_URL : REAL_DATABASE_URL;
};
const isDown = () => workerEnv().DATABASE_URL === DEAD_DATABASE_URL;

const ISOLATE_CACHE_TTL_MS = workerEnv().ISOLATE_CACHE_TTL_MS;
/** With a TTL of 0 the isolate keeps nothing (src/cache/tiered.ts): every config lookup goes on to Redis. */
const isolateMemory = (on: boolean) => {
  workerEnv().ISOLATE_CACHE_TTL_MS = on ? ISOLATE_CACHE_TTL_MS : 0;
};

/** Reads the database behind the worker's back (its own parse of a copy of env), outage or not. */
async function direct<T = Record<string, unknown>>(text: ReturnType<typeof sql>): Promise<T[]> {
  const loaded = loadEnv({ ...env, DATABASE_URL: REAL_DATABASE_URL });
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const h = openDb(loaded.env);
  try {
    return (await h.db.execute(text)).rows as T[];
  } finally {
    await h.close();
  }
}

// ---- the queue observer ---------------------------------------------------------------------

type Outcome = { kind: "ack" } | { kind: "retry"; delaySeconds: number | undefined };
interface Delivery {
  queue: string;
  messageId: string;
  attempts: number;
  body: AnalyticsEvent;
  /** Whether Postgres was cut off when the handler got the batch. */
  down: boolean;
  outcome?: Outcome;
}

const deliveries: Delivery[] = [];
const originalQueue = worker.queue;

/** Hands the real handler a batch whose messages record what the handler did with them. */
function observed(batch: MessageBatch<unknown>): MessageBatch<unknown> {
  const records: Delivery[] = [];
  const messages = batch.messages.map((m) => {
    // A pack (src/analytics/pack.ts) is recorded as its events, each named as the consumer names
    // it, each answered with the pack.
    const bodies = isPack(m.body) ? m.body.events : [m.body as AnalyticsEvent];
    const ds = bodies.map(
      (body, i): Delivery => ({
        queue: batch.queue,
        messageId: isPack(m.body) ? `${m.id}:${i}` : m.id,
        attempts: m.attempts,
        body,
        down: isDown(),
      }),
    );
    records.push(...ds);
    return {
      id: m.id,
      timestamp: m.timestamp,
      body: m.body,
      attempts: m.attempts,
      ack() {
        for (const d of ds) d.outcome = { kind: "ack" };
        m.ack();
      },
      retry(options?: QueueRetryOptions) {
        for (const d of ds) d.outcome = { kind: "retry", delaySeconds: options?.delaySeconds };
        m.retry(options);
      },
    } as Message<unknown>;
  });
  deliveries.push(...records);
  return {
    queue: batch.queue,
    metadata: batch.metadata,
    messages,
    ackAll() {
      for (const d of records) d.outcome = { kind: "ack" };
      batch.ackAll();
    },
    retryAll(options?: QueueRetryOptions) {
      for (const d of records) d.outcome = { kind: "retry", delaySeconds: options?.delaySeconds };
      batch.retryAll(options);
    },
  } as MessageBatch<unknown>;
}

afterEach(() => {
  worker.queue = originalQueue;
  postgresDown(false);
  isolateMemory(true);
});

// ---- small helpers --------------------------------------------------------------------------

type Usage = { input: number; output: number; cost: number };
type Reply = {
  conversation_id: string;
  message: { content: string };
  state: string;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
};

const usageOfReply = (r: Reply): Usage => ({
  input: r.usage.input_tokens,
  output: r.usage.output_tokens,
  cost: r.usage.cost_usd,
});
const usageOfCompletion = (u: { prompt_tokens: number; completion_tokens: number }): Usage => ({
  input: u.prompt_tokens,
  output: u.completion_tokens,
  cost: costOf(MODEL, u.prompt_tokens, u.completion_tokens),
});
const total = (us: Usage[]): Usage =>
  us.reduce((a, u) => ({ input: a.input + u.input, output: a.output + u.output, cost: a.cost + u.cost }), {
    input: 0,
    output: 0,
    cost: 0,
  });

/** The tenant's rollup summed over its days (additive columns only). */
async function rollup(tenantId: string) {
  const sum: Record<string, number> = {};
  for (const row of await dailyRows(tenantId)) {
    for (const [k, v] of Object.entries(row)) if (k !== "day") sum[k] = (sum[k] ?? 0) + Number(v);
  }
  return sum;
}

// ---- the test -------------------------------------------------------------------------------

describe("Postgres outage, end to end", () => {
  it("keeps chatting from cached config, holds analytics in the queue, and lands them once after recovery", async () => {
    worker.queue = (batch, e, ctx) => originalQueue.call(worker, observed(batch), e, ctx);
    const { id: tenantId, key } = await chatTenant({
      model: MODEL,
      custom_greeting: "Hi! How can I help?",
    });
    const mine = () => deliveries.filter((d) => d.body?.tenantId === tenantId);

    // 1. Warm the caches with one chat while Postgres is up, and see its turn land.
    const warm = await completions(
      key,
      { model: MODEL, user: "warm-visitor", messages: [{ role: "user", content: "hello there" }] },
      { "x-conversation-id": "warmup" },
    );
    expect(warm.status).toBe(200);
    await eventually(
      () =>
        expect(
          mine().some((d) => d.outcome?.kind === "ack"),
          "the warm-up turn acked",
        ).toBe(true),
      { timeoutMs: 10_000 },
    );
    expect(await countRows("turns", tenantId)).toBe(1);
    const before = await rollup(tenantId);
    expect(before).toMatchObject({ turns: 1, active_users: 1, conversations: 0 });
    const warmIds = new Set(mine().map((d) => d.messageId));

    // 2. Postgres goes away. The worker itself sees it (readiness), and its isolate keeps no config
    //    in memory from now on: every lookup must come from Redis, never from Postgres.
    postgresDown(true);
    const ready = await call("/readyz");
    expect(ready.status).toBe(503);
    const readyBody = (await ready.json()) as { postgres: { ok: boolean; error?: string } };
    expect(readyBody.postgres.ok).toBe(false);
    // It needs no credentials: it says what failed, not the driver's words (hosts, users).
    expect(["unreachable (the worker's log has the error)", "timed out after 3000 ms"]).toContain(
      readyBody.postgres.error,
    );
    isolateMemory(false);
    const lookups = { ...cacheStats };

    // 3. Visitors chat. OpenAI-compatible, plain and streamed.
    const produced = new Map<string, Usage[]>();
    const note = (conversationId: string, u: Usage) =>
      produced.set(conversationId, [...(produced.get(conversationId) ?? []), u]);

    const plain = await completions(
      key,
      { model: MODEL, user: "visitor-1", messages: [{ role: "user", content: "where is my parcel" }] },
      { "x-conversation-id": "api-1" },
    );
    expect(plain.status).toBe(200);
    const plainBody = (await plain.json()) as {
      choices: { message: { content: string } }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(plainBody.choices[0]?.message.content).toBe("Fake openai reply: where is my parcel");
    note("api-1", usageOfCompletion(plainBody.usage));

    const streamed = await completions(
      key,
      {
        model: MODEL,
        user: "visitor-2",
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: "user", content: "hello" },
          { role: "assistant", content: "Hi! How can I help?" },
          { role: "user", content: "do you ship abroad" },
        ],
      },
      { "x-conversation-id": "api-2" },
    );
    expect(streamed.status).toBe(200);
    const chunks = (await sseFrames(streamed)).map((f) => f.data);
    expect(chunks.at(-1)).toBe("[DONE]");
    const parsed = chunks.slice(0, -1).map(
      (d) =>
        JSON.parse(d) as {
          choices: { delta: { content?: string } }[];
          usage?: { prompt_tokens: number; completion_tokens: number };
        },
    );
    expect(parsed.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(
      "Fake openai reply: do you ship abroad",
    );
    const streamUsage = parsed.find((c) => c.usage)?.usage;
    expect(streamUsage).toBeDefined();
    note("api-2", usageOfCompletion(streamUsage!));

    // The conversation API: two conversations, ended (resolved and not) and rated.
    const conversation = async (
      user: string,
      messages: { content: string; stream?: boolean }[],
      end: { resolved: boolean },
      rating: { csat: number; comment?: string },
    ) => {
      const started = await send("POST", "/v1/conversations", key, { user });
      expect(started.status).toBe(201);
      const conv = (await started.json()) as { id: string; greeting: string };
      expect(conv.greeting).toBe("Hi! How can I help?");
      for (const m of messages) {
        const res = await send("POST", `/v1/conversations/${conv.id}/messages`, key, m);
        expect(res.status).toBe(200);
        let reply: Reply;
        if (m.stream) {
          const frames = await sseFrames(res);
          expect(frames.at(-1)?.event).toBe("done");
          reply = JSON.parse(frames.at(-1)?.data ?? "{}") as Reply;
        } else reply = (await res.json()) as Reply;
        expect(reply.message.content).toBe(`Fake openai reply: ${m.content}`);
        expect(reply.usage.output_tokens).toBeGreaterThan(0);
        note(conv.id, usageOfReply(reply));
      }
      const ended = await send("POST", `/v1/conversations/${conv.id}/end`, key, end);
      expect(ended.status).toBe(200);
      expect(((await ended.json()) as { state: string }).state).toBe(
        end.resolved ? "resolved" : "unresolved",
      );
      const rated = await send("POST", `/v1/conversations/${conv.id}/feedback`, key, rating);
      expect(rated.status).toBe(200);
      expect(((await rated.json()) as { csat: number }).csat).toBe(rating.csat);
      return conv.id;
    };
    const convA = await conversation(
      "visitor-3",
      [{ content: "I need to change my address" }, { content: "it is 5 Main Street", stream: true }],
      { resolved: true },
      { csat: 5, comment: "quick and clear" },
    );
    const convB = await conversation(
      "visitor-4",
      [{ content: "do you sell gift cards" }],
      { resolved: false },
      { csat: 2 },
    );

    // Every config lookup was answered by a cache; none reached for Postgres.
    expect(cacheStats.postgres).toBe(lookups.postgres);
    expect(cacheStats.redis).toBeGreaterThan(lookups.redis);

    // 4. The events (5 turns, 2 summaries, 2 ratings) sit in the queue: each is delivered, retried
    //    with the consumer's backoff, and delivered again; none is acked, none dead-lettered.
    const TURNS = 5;
    const EXPECTED = TURNS + 2 + 2;
    // The inbox index's events (src/inbox) ride the same queue; they are counted apart below.
    const isInbox = (d: Delivery) => d.body.type === "inbox";
    const outageMessages = () => mine().filter((d) => !warmIds.has(d.messageId) && !isInbox(d));
    const inboxMessages = () => mine().filter((d) => !warmIds.has(d.messageId) && isInbox(d));
    const idsOf = (ds: Delivery[]) => new Set(ds.map((d) => d.messageId));
    await eventually(
      () => {
        const ds = outageMessages();
        // An event acked while Postgres is down is an event lost (deliveries only accumulate, so
        // the wait ends failing with it, showing it).
        expect(ds.filter((d) => d.outcome?.kind === "ack")).toEqual([]);
        expect(inboxMessages().filter((d) => d.outcome?.kind === "ack")).toEqual([]);
        const twice = idsOf(ds.filter((d) => d.attempts >= 2 && d.outcome?.kind === "retry"));
        const settled = ds.every((d) => d.outcome !== undefined);
        expect(
          settled && idsOf(ds).size >= EXPECTED && twice.size >= EXPECTED,
          `all ${EXPECTED} events retried twice while Postgres is down`,
        ).toBe(true);
      },
      { timeoutMs: 20_000 },
    );
    const downDeliveries = outageMessages();
    for (const d of downDeliveries) {
      expect(d, `delivery of ${d.body.type} ${d.messageId} attempt ${d.attempts}`).toMatchObject({
        queue: ANALYTICS_QUEUE_NAME,
        down: true,
        outcome: { kind: "retry", delaySeconds: retryDelaySeconds(d.attempts) },
      });
    }
    expect(mine().filter((d) => d.queue === ANALYTICS_DLQ_NAME)).toEqual([]);
    const kinds = (ds: Delivery[]) => {
      const byId = new Map(ds.map((d) => [d.messageId, d.body.type]));
      return [...byId.values()].sort();
    };
    expect(kinds(downDeliveries)).toEqual([
      "conversation",
      "conversation",
      "feedback",
      "feedback",
      ...Array(TURNS).fill("turn"),
    ]);
    // Nothing landed: the database still holds only the warm-up.
    const [held] = await direct<{ turns: number; conversations: number; feedback: number; dead: number }>(
      sql`select
            (select count(*)::int from turns where tenant_id = ${tenantId}) as turns,
            (select count(*)::int from conversations where tenant_id = ${tenantId}) as conversations,
            (select count(*)::int from feedback where tenant_id = ${tenantId}) as feedback,
            (select count(*)::int from dead_letters where tenant_id = ${tenantId}) as dead`,
    );
    expect(held).toEqual({ turns: 1, conversations: 0, feedback: 0, dead: 0 });

    // 5. Postgres comes back; the queue's next deliveries land everything.
    postgresDown(false);
    isolateMemory(true);
    expect((await call("/readyz")).status).toBe(200);
    await eventually(
      () =>
        expect(
          idsOf(outageMessages().filter((d) => d.outcome?.kind === "ack")).size,
          `all ${EXPECTED} events acked after recovery`,
        ).toBeGreaterThanOrEqual(EXPECTED),
      { timeoutMs: 25_000 },
    );

    // Each message: consecutive attempts by the same queue message, retried while down, then one ack.
    const byMessage = new Map<string, Delivery[]>();
    for (const d of outageMessages()) byMessage.set(d.messageId, [...(byMessage.get(d.messageId) ?? []), d]);
    expect(byMessage.size).toBe(EXPECTED);
    for (const [id, ds] of byMessage) {
      expect(
        ds.map((d) => d.attempts),
        id,
      ).toEqual(ds.map((_, i) => i + 1));
      expect(
        ds.map((d) => d.outcome?.kind),
        id,
      ).toEqual([...Array(ds.length - 1).fill("retry"), "ack"]);
      expect(ds.at(-1)?.down, id).toBe(false);
    }
    expect(mine().filter((d) => d.queue === ANALYTICS_DLQ_NAME)).toEqual([]);

    // 6. Exactly once: the rows are the queued events, one each, with what the chats produced.
    const events = [...byMessage.values()].map((ds) => ds[0]!.body);
    const eventIds = (type: AnalyticsEvent["type"]) =>
      events
        .filter((e) => e.type === type)
        .map((e) => e.id)
        .sort();
    const warmTurnId = mine().find((d) => warmIds.has(d.messageId))?.body.id;

    const turns = await query<{
      id: string;
      conversation_id: string;
      user_id: string;
      channel: string;
      outcome: string;
      input_tokens: string;
      output_tokens: string;
      cost_usd: number;
    }>(
      sql`select id, conversation_id, user_id, channel, outcome, input_tokens, output_tokens, cost_usd
          from turns where tenant_id = ${tenantId} and conversation_id <> 'warmup' order by id`,
    );
    expect(turns.map((t) => t.id)).toEqual(eventIds("turn"));
    expect(await countRows("turns", tenantId)).toBe(TURNS + 1);
    expect(
      (
        await query<{ id: string }>(
          sql`select id from turns where conversation_id = 'warmup' and tenant_id = ${tenantId}`,
        )
      ).map((t) => t.id),
    ).toEqual([warmTurnId]);
    expect(turns.every((t) => t.outcome === "ok")).toBe(true);
    for (const [conversationId, us] of produced) {
      const rows = turns.filter((t) => t.conversation_id === conversationId);
      const want = total(us);
      expect(rows, conversationId).toHaveLength(us.length);
      expect(
        rows.reduce((n, t) => n + Number(t.input_tokens), 0),
        conversationId,
      ).toBe(want.input);
      expect(
        rows.reduce((n, t) => n + Number(t.output_tokens), 0),
        conversationId,
      ).toBe(want.output);
      expect(
        rows.reduce((n, t) => n + t.cost_usd, 0),
        conversationId,
      ).toBeCloseTo(want.cost, 12);
    }
    expect(new Set(turns.map((t) => `${t.user_id}/${t.channel}`))).toEqual(
      new Set(["user:visitor-1/api", "user:visitor-2/api", "user:visitor-3/web", "user:visitor-4/web"]),
    );

    const conversations = await query<{
      id: string;
      conversation_id: string;
      turn_count: number;
      resolved: boolean;
      escalated: boolean;
      csat: number | null;
      total_tokens: string;
      total_cost_usd: number;
    }>(
      sql`select id, conversation_id, turn_count, resolved, escalated, csat, total_tokens, total_cost_usd
          from conversations where tenant_id = ${tenantId} order by id`,
    );
    expect(conversations.map((c) => c.id)).toEqual(eventIds("conversation"));
    // The inbox index caught up too: each conversation as it ended, with its rating.
    await eventually(async () => {
      const inbox = await query<{ conversation_id: string; status: string; csat: number | null }>(
        sql`select conversation_id, status, csat from inbox_conversations
            where tenant_id = ${tenantId}`,
      );
      expect(new Set(inbox.map((r) => JSON.stringify(r)))).toEqual(
        new Set([
          JSON.stringify({ conversation_id: convA, status: "resolved", csat: 5 }),
          JSON.stringify({ conversation_id: convB, status: "ended", csat: 2 }),
        ]),
      );
      expect(inbox).toHaveLength(2);
    });
    for (const [conversationId, resolved, csat] of [
      [convA, true, 5],
      [convB, false, 2],
    ] as const) {
      const row = conversations.find((c) => c.conversation_id === conversationId);
      const us = produced.get(conversationId) ?? [];
      const want = total(us);
      expect(row, conversationId).toMatchObject({ turn_count: us.length, resolved, escalated: false, csat });
      expect(Number(row?.total_tokens), conversationId).toBe(want.input + want.output);
      expect(row?.total_cost_usd, conversationId).toBeCloseTo(want.cost, 12);
    }

    const feedback = await query<{
      id: string;
      conversation_id: string;
      csat: number;
      comment: string | null;
    }>(
      sql`select id, conversation_id, csat, comment from feedback where tenant_id = ${tenantId} order by id`,
    );
    expect(feedback.map((f) => f.id)).toEqual(eventIds("feedback"));
    expect(feedback.map((f) => [f.conversation_id, f.csat, f.comment]).sort()).toEqual(
      [
        [convA, 5, "quick and clear"],
        [convB, 2, null],
      ].sort(),
    );

    // The rollup moved by exactly what the chats produced: nothing missing, nothing twice.
    const all = total([...produced.values()].flat());
    const convTotals = total([...(produced.get(convA) ?? []), ...(produced.get(convB) ?? [])]);
    const after = await rollup(tenantId);
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect({
      turns: delta("turns"),
      answered: delta("answered"),
      errors: delta("errors"),
      blocked: delta("blocked"),
      refused: delta("refused"),
      input_tokens: delta("input_tokens"),
      output_tokens: delta("output_tokens"),
      active_users: delta("active_users"),
      conversations: delta("conversations"),
      conversation_turns: delta("conversation_turns"),
      resolved: delta("resolved"),
      escalated: delta("escalated"),
      csat_sum: delta("csat_sum"),
      csat_count: delta("csat_count"),
      conversation_tokens: delta("conversation_tokens"),
      safety_events: delta("safety_events"),
    }).toEqual({
      turns: TURNS,
      answered: TURNS,
      errors: 0,
      blocked: 0,
      refused: 0,
      input_tokens: all.input,
      output_tokens: all.output,
      active_users: 4,
      conversations: 2,
      conversation_turns: 3,
      resolved: 1,
      escalated: 0,
      csat_sum: 7,
      csat_count: 2,
      conversation_tokens: convTotals.input + convTotals.output,
      safety_events: 0,
    });
    expect(delta("cost_usd")).toBeCloseTo(all.cost, 12);
    expect(delta("conversation_cost_usd")).toBeCloseTo(convTotals.cost, 12);
    expect(all.cost).toBeGreaterThan(0);

    const [dead] = await query<{ n: number }>(
      sql`select count(*)::int as n from dead_letters where tenant_id = ${tenantId}`,
    );
    expect(dead?.n).toBe(0);
  }, 55_000);
});

describe("the tool registry unreachable", () => {
  it("answers a visitor with no tools this time and a warning (the OpenAI route 503), and offers them again once Postgres is back", async () => {
    const { id: tenantId, key } = await chatTenant({
      model: MODEL,
      allowed_tools: ["order_status"],
      tool_execution: "server",
    });
    const started = await send("POST", "/v1/conversations", key, {});
    expect(started.status).toBe(201);
    const conv = ((await started.json()) as { id: string }).id;
    /** What the fake model was sent for this message (a unique content), and the reply. */
    const ask = async (content: string) => {
      const res = await send("POST", `/v1/conversations/${conv}/messages`, key, { content });
      expect(res.status, await res.clone().text()).toBe(200);
      const reply = (await res.json()) as Reply;
      const sent = (await upstreamRequests())
        .map((r) => r.body as { messages: { content: string }[]; tools?: { function: { name: string } }[] })
        .filter((b) => b.messages.some((m) => m.content === content));
      expect(sent).toHaveLength(1);
      return { reply, tools: sent[0]?.tools?.map((t) => t.function.name) };
    };
    /** The OpenAI route, whose caller asked for the tenant's tools to run on the server. */
    const complete = (content: string) =>
      completions(key, { model: MODEL, user: "v-1", messages: [{ role: "user", content }] });
    // One message on each path warms the tenant's caches (config, knowledge, an empty tool list).
    expect((await ask(`hello first ${tenantId}`)).tools).toBeUndefined();
    expect((await complete(`hello first ${tenantId}`)).status).toBe(200);
    // Registering a tool drops the tenant's cached tool list (isolate and Redis), while the rest
    // stays cached: the next message must read the registry from Postgres.
    const registered = await send("POST", "/v1/tools", key, {
      name: "order_status",
      description: "Looks up an order by its number.",
      parameters: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
      target: { kind: "https", url: env.ORDER_STATUS_URL },
    });
    expect(registered.status).toBe(201);

    postgresDown(true);
    const warn = vi.spyOn(console, "warn");
    try {
      const down = await ask(`hello while the registry is down ${tenantId}`);
      expect(down.reply.message.content).toBe(
        `Fake openai reply: hello while the registry is down ${tenantId}`,
      );
      expect(down.tools).toBeUndefined();
      const warned = warn.mock.calls
        .map(([line]) => (typeof line === "string" && line.startsWith("{") ? JSON.parse(line) : {}))
        .find(
          (w: { msg?: string; tenantId?: string }) =>
            w.msg === "tools unavailable" && w.tenantId === tenantId,
        );
      expect(warned?.error).toBeTruthy();
      // The OpenAI route does not answer as if the tools it was to run were there: 503, retry.
      const refused = await complete(`hello while the registry is down ${tenantId}`);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ error: { type: "server_error" } });
    } finally {
      warn.mockRestore();
    }

    postgresDown(false);
    const up = await ask(`hello again ${tenantId}`);
    expect(up.reply.message.content).toBe(`Fake openai reply: hello again ${tenantId}`);
    expect(up.tools).toEqual(["order_status"]);
    expect((await complete(`hello again ${tenantId}`)).status).toBe(200);

    // Read once, the list is in Redis: Postgres gone again, and nothing in this isolate's memory,
    // the tools are still offered.
    postgresDown(true);
    isolateMemory(false);
    expect((await ask(`hello from the cached list ${tenantId}`)).tools).toEqual(["order_status"]);
    expect((await complete(`hello from the cached list ${tenantId}`)).status).toBe(200);
  });
});
