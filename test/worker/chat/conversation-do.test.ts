import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Conversation, RATINGS_PER_CONVERSATION } from "../../../src/chat/conversation-do";
import type { TurnInput } from "../../../src/chat/conversation-types";
import type { RawEnv } from "../../../src/env";
import { eventually, present } from "../eventually";
import { envelope, query, send, sql, uniqueId } from "../helpers";
import { chatTenant } from "./helpers";

type ConvRow = {
  turn_count: number;
  resolved: boolean;
  escalated: boolean;
  csat: number | null;
  total_tokens: string;
  channel: string;
  user_id: string;
};

/** The conversation's summary row, once the analytics consumer has written it. */
async function summaryOf(tenantId: string, conversationId: string): Promise<ConvRow> {
  return eventually(async () => {
    const [row] = await query<ConvRow>(
      sql`select turn_count, resolved, escalated, csat, total_tokens, channel, user_id from conversations
          where tenant_id = ${tenantId} and conversation_id = ${conversationId}`,
    );
    return present(row, `summary of ${conversationId}`);
  });
}

async function state(stub: DurableObjectStub<Conversation>, tenantId: string) {
  const t = await stub.transcript(tenantId);
  return t.ok ? t.value.view.state : t.code;
}

const ns = () => env.CONVERSATION;

describe("Conversation object", () => {
  it("emits its summary once when it ends, with the rating given after", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, { user: "bob" })).json()) as {
      id: string;
    };
    const reply = (await (
      await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content: "hello" })
    ).json()) as {
      usage: { input_tokens: number; output_tokens: number };
    };
    await send("POST", `/v1/conversations/${conv.id}/end`, key, { resolved: true });
    await send("POST", `/v1/conversations/${conv.id}/end`, key, { resolved: false });
    await send("POST", `/v1/conversations/${conv.id}/feedback`, key, { csat: 5 });
    const row = await summaryOf(id, conv.id);
    expect(row).toMatchObject({
      turn_count: 1,
      resolved: true,
      escalated: false,
      channel: "web",
      user_id: "user:bob",
    });
    expect(Number(row.total_tokens)).toBe(reply.usage.input_tokens + reply.usage.output_tokens);
    // The rating arrives as its own event after the summary, once the consumer has applied it.
    await eventually(async () => expect((await summaryOf(id, conv.id)).csat).toBe(5));
    const count = await query<{ n: string }>(
      sql`select count(*)::text as n from conversations where conversation_id = ${conv.id}`,
    );
    expect(count[0]?.n).toBe("1");
  });

  it("records a repeated rating once, and a few changes of it; the latest counts", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const rate = (csat: number, comment?: string) =>
      send("POST", `/v1/conversations/${conv.id}/feedback`, key, { csat, ...(comment ? { comment } : {}) });
    // A retry or a double click: the same rating twice is one row.
    expect((await rate(5)).status).toBe(200);
    expect((await rate(5)).status).toBe(200);
    // Changes are rows too, up to RATINGS_PER_CONVERSATION in all.
    const changes = [4, 3, 2, 1].slice(0, RATINGS_PER_CONVERSATION - 1);
    for (const csat of changes) expect((await rate(csat, "changed my mind")).status).toBe(200);
    const over = await rate(5, "and again");
    expect(over.status).toBe(409);
    expect(await envelope(over)).toMatchObject({
      code: "CONFLICT",
      message: `this conversation's rating was given ${RATINGS_PER_CONVERSATION} times; it takes no more changes`,
    });
    // The last rating, repeated, is still answered: it changes nothing.
    const last = await rate(1, "changed my mind");
    expect(last.status).toBe(200);
    expect(((await last.json()) as { csat: number }).csat).toBe(1);
    await send("POST", `/v1/conversations/${conv.id}/end`, key, { resolved: false });
    await eventually(async () => expect((await summaryOf(id, conv.id)).csat).toBe(1));
    const rows = () =>
      query<{ csat: number }>(
        sql`select csat from feedback where tenant_id = ${id} and conversation_id = ${conv.id} `,
      );
    await eventually(async () => expect(await rows()).toHaveLength(RATINGS_PER_CONVERSATION));
    await new Promise((r) => setTimeout(r, 1_000));
    // (Sorted: two ratings in one millisecond have no order between them.)
    expect((await rows()).map((r) => r.csat).sort()).toEqual([5, ...changes].sort());
  });

  it("ends an idle conversation unresolved by alarm", async () => {
    const { id } = await chatTenant();
    const convId = `conv_${uniqueId("idle")
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, 24)
      .padEnd(24, "x")}`;
    const stub = ns().getByName(`${id}:${convId}`);
    await runInDurableObject(stub, (c: Conversation) => c.clock.set(Date.now()));
    const started = await stub.start({
      tenantId: id,
      conversationId: convId,
      userId: "user:idle",
      channel: "web",
      greeting: "hi",
      experiment: null,
      variant: null,
      // Long enough that the real alarm never fires on its own: the test moves the pinned clock.
      idleTimeoutMs: 60_000,
    });
    expect(started.ok).toBe(true);
    await runInDurableObject(stub, (c: Conversation) => c.clock.advance(59_999));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Too early: the alarm re-arms itself instead of ending the conversation.
    expect(await state(stub, id)).toBe("open");
    await runInDurableObject(stub, (c: Conversation) => c.clock.advance(1));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await state(stub, id)).toBe("unresolved");
    const row = await summaryOf(id, convId);
    expect(row).toMatchObject({ turn_count: 0, resolved: false, escalated: false });
  });

  it("saves its turns' counters whole when its idle alarm fires early, for a build that reads only the meta row", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, { user: "early" })).json()) as {
      id: string;
    };
    for (const content of ["one", "two"])
      expect((await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content })).status).toBe(
        200,
      );
    const stub = ns().getByName(`${id}:${conv.id}`);
    const metaRow = () =>
      runInDurableObject(
        stub,
        (_c: Conversation, state) =>
          JSON.parse(state.storage.sql.exec<{ v: string }>("select v from meta").one().v) as {
            turnCount: number;
            savedSeq: number;
          },
      );
    expect(await metaRow()).toMatchObject({ turnCount: 0, savedSeq: 0 });
    // Long before the conversation is idle: the alarm re-arms, and saves the meta whole on the way.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await state(stub, id)).toBe("open");
    expect(await metaRow()).toMatchObject({ turnCount: 2, savedSeq: 4 });
  });

  it("stores nothing for an id nobody started, whatever is asked of it", async () => {
    const { id, key } = await chatTenant();
    const convId = `conv_${uniqueId("x")
      .replace(/[^A-Za-z0-9]/g, "")
      .padEnd(24, "Z")
      .slice(0, 24)}`;
    for (const [method, path, body] of [
      ["GET", `/v1/conversations/${convId}`],
      ["POST", `/v1/conversations/${convId}/messages`, { content: "hi" }],
      ["POST", `/v1/conversations/${convId}/end`, { resolved: true }],
      ["POST", `/v1/conversations/${convId}/feedback`, { csat: 1 }],
    ] as const) {
      expect((await send(method, path, key, body)).status, `${method} ${path}`).toBe(404);
    }
    const tables = await runInDurableObject(ns().getByName(`${id}:${convId}`), (_c, state) =>
      state.storage.sql
        .exec<{ name: string }>("select name from sqlite_master where type = 'table'")
        .toArray()
        .map((r) => r.name)
        .filter((n) => !n.startsWith("_cf_")),
    );
    expect(tables).toEqual([]);
  });

  it("refuses calls for another tenant and bad input", async () => {
    const { id } = await chatTenant();
    const convId = `conv_${"B".repeat(24)}`;
    const stub = ns().getByName(`${id}:${convId}`);
    await stub.start({
      tenantId: id,
      conversationId: convId,
      userId: "u",
      channel: "web",
      greeting: "",
      experiment: null,
      variant: null,
      idleTimeoutMs: 60_000,
    });
    expect(await stub.transcript("someone-else")).toEqual({
      ok: false,
      code: "not_found",
      message: "no such conversation",
    });
    const again = await stub.start({
      tenantId: id,
      conversationId: convId,
      userId: "u",
      channel: "web",
      greeting: "",
      experiment: null,
      variant: null,
      idleTimeoutMs: 60_000,
    });
    expect(again).toEqual({ ok: false, code: "invalid", message: "conversation already exists" });
    const bad = await stub.feedback(id, { csat: 9, comment: null });
    expect(bad).toMatchObject({ ok: false, code: "invalid" });
    const t = await stub.transcript(id);
    expect(t.ok && t.value.view.csat).toBeNull();
  });

  it("hands its start's and its turns' inbox events to the worker, which sends them packed with its analytics", async () => {
    const { id, key } = await chatTenant();
    // The id the start will draw, so the object can be watched from before it exists.
    const convId = `conv_${uniqueId("inbox")
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, 24)
      .padEnd(24, "q")}`;
    const stub = ns().getByName(`${id}:${convId}`);
    // What the object hands its own queue binding, passed on to the real queue.
    const events = await runInDurableObject(stub, (c: Conversation) => {
      const target = c as unknown as { env: typeof env };
      const queue = target.env.ANALYTICS_QUEUE;
      const seen: { type: string; entries?: { seq: number }[] }[] = [];
      target.env = {
        ...target.env,
        ANALYTICS_QUEUE: {
          send: (body: (typeof seen)[number], opts?: QueueSendOptions) => {
            seen.push(body);
            return queue.send(body, opts);
          },
          sendBatch: (msgs: Iterable<MessageSendRequest>, opts?: QueueSendBatchOptions) =>
            queue.sendBatch(msgs, opts),
        } as unknown as Queue,
      };
      return seen;
    });
    const started = await stub.start({
      tenantId: id,
      conversationId: convId,
      userId: "user:quick",
      channel: "web",
      greeting: "hi",
      experiment: null,
      variant: null,
      idleTimeoutMs: 60_000,
    });
    if (!started.ok) throw new Error("not started");
    // The start's event announces the conversation with no entries; the route sends it packed.
    expect(started.value.inbox).toMatchObject({
      type: "inbox",
      conversationId: convId,
      status: "open",
      entries: [],
    });
    // Longer than the object's inbox delay: a start that armed its own send would have sent by now.
    await new Promise((r) => setTimeout(r, 400));
    const conv = { id: convId };
    // Through the API too: the new conversation is in the inbox before anyone wrote in it.
    const viaApi = (await (await send("POST", "/v1/conversations", key, { user: "quick" })).json()) as {
      id: string;
    };
    await eventually(async () => {
      const r = await query<{ status: string }>(
        sql`select status from inbox_conversations where tenant_id = ${id} and conversation_id = ${viaApi.id}`,
      );
      expect(r.map((x) => x.status)).toEqual(["open"]);
    });
    for (const content of ["one", "two", "three"])
      expect((await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content })).status).toBe(
        200,
      );
    // Every entry reaches the index once, in order, through the worker's packs and the real consumer.
    const rows = await eventually(async () => {
      const r = await query<{ seq: number; role: string; content: string }>(
        sql`select seq::int as seq, role, content from inbox_entries
            where tenant_id = ${id} and conversation_id = ${conv.id} order by seq`,
      );
      if (r.length < 6) throw new Error(`entries so far: ${r.map((x) => x.seq).join(",")}`);
      return r;
    });
    expect(rows.map((r) => [r.seq, r.role])).toEqual([
      [1, "user"],
      [2, "assistant"],
      [3, "user"],
      [4, "assistant"],
      [5, "user"],
      [6, "assistant"],
    ]);
    expect(rows.filter((r) => r.role === "user").map((r) => r.content)).toEqual(["one", "two", "three"]);
    // The object sent none of them itself: a start or a plain turn costs it no queue message of its own.
    const own = await runInDurableObject(stub, () => events.filter((e) => e.type === "inbox"));
    expect(own).toEqual([]);
  });

  it("reads back its turns after a restart, also from storage written before turns carried their counters", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, { user: "reload" })).json()) as {
      id: string;
    };
    for (const content of ["one", "two", "three"])
      expect((await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content })).status).toBe(
        200,
      );
    const stub = ns().getByName(`${id}:${conv.id}`);
    const live = await stub.transcript(id);
    if (!live.ok) throw new Error("no transcript");
    expect(live.value.view.turnCount).toBe(3);
    /** A new instance over the same storage, as after an eviction, once its constructor has loaded. */
    const reload = async (state: DurableObjectState) => {
      const fresh = new Conversation(state, env as ConstructorParameters<typeof Conversation>[1]);
      await new Promise((r) => setTimeout(r, 10));
      return fresh;
    };
    const turn: TurnInput = {
      at: Date.now(),
      user: { content: "four", tokens: 5 },
      assistant: { content: "an answer", tokens: 6 },
      inputTokens: 40,
      outputTokens: 7,
      costUsd: 0.25,
      latencyMs: 12,
      outcome: "ok",
      toolsUsed: ["lookup"],
      escalationEmail: "",
      origin: "https://shop.example",
    };
    const seen = await runInDurableObject(stub, async (_c: Conversation, state) => {
      const sql = state.storage.sql;
      // The turns left the meta row as the start wrote it: their counters are on their rows.
      const saved = JSON.parse(sql.exec<{ v: string }>("select v from meta").one().v) as {
        turnCount: number;
      };
      const reread = await (await reload(state)).transcript(id);
      // Storage as the code before wrote it: no turn_meta, the meta saved whole with every turn.
      const { savedSeq: _, ...whole } = {
        ...JSON.parse(sql.exec<{ v: string }>("select v from meta").one().v),
        ...JSON.parse(
          sql.exec<{ t: string }>("select turn_meta as t from messages order by idx desc limit 1").one().t,
        ),
      };
      sql.exec("alter table messages drop column turn_meta");
      sql.exec("update meta set v = ?", JSON.stringify(whole));
      const migrated = await reload(state);
      const before = await migrated.transcript(id);
      const recorded = await migrated.recordTurn(id, turn);
      const after = await (await reload(state)).transcript(id);
      return { saved, reread, before, recorded, after };
    });
    expect(seen.saved.turnCount).toBe(0);
    expect(seen.reread.ok && seen.reread.value.view).toEqual(live.value.view);
    expect(seen.before.ok && seen.before.value.view).toEqual(live.value.view);
    if (!seen.recorded.ok || !seen.after.ok) throw new Error("turn not recorded");
    expect(seen.after.value.view).toEqual(seen.recorded.value.view);
    expect(seen.after.value.view).toMatchObject({
      turnCount: 4,
      totalTokens: live.value.view.totalTokens + 47,
      totalCostUsd: live.value.view.totalCostUsd + 0.25,
      version: 8,
    });
  });

  it("a queue that fails after a turn or a rating is stored does not fail the request: the message is retried off the caller's path", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, { user: "qa" })).json()) as {
      id: string;
    };
    const stub = ns().getByName(`${id}:${conv.id}`);
    // The object's queues refuse the escalation notice's first send and the rating's first send (as
    // a queue failing for a moment would); everything else, and every later try, goes through.
    const refused: string[] = [];
    await runInDurableObject(stub, (c: Conversation) => {
      const holder = c as unknown as { env: RawEnv };
      const real = holder.env;
      const failOnce = (queue: Queue, kind: string) => {
        let failed = false;
        return {
          send: async (body: { type?: string }, opts?: QueueSendOptions) => {
            if (!failed && body?.type === kind) {
              failed = true;
              refused.push(kind);
              throw new Error(`${kind}: queue unavailable`);
            }
            return queue.send(body, opts);
          },
        } as unknown as Queue;
      };
      holder.env = {
        ...real,
        NOTIFY_QUEUE: failOnce(real.NOTIFY_QUEUE, "escalation"),
        ANALYTICS_QUEUE: failOnce(real.ANALYTICS_QUEUE, "feedback"),
      };
    });
    // Escalating: the turn is recorded and answered once, though its notice could not go yet.
    const asked = await send("POST", `/v1/conversations/${conv.id}/messages`, key, {
      content: "let me speak to a human agent",
    });
    expect(asked.status).toBe(200);
    expect(((await asked.json()) as { state: string }).state).toBe("escalated");
    const rated = await send("POST", `/v1/conversations/${conv.id}/feedback`, key, { csat: 4 });
    expect(rated.status).toBe(200);
    expect(refused.sort()).toEqual(["escalation", "feedback"]);
    const t = await stub.transcript(id);
    if (!t.ok) throw new Error(t.message);
    expect(t.value.messages.filter((m) => m.role === "user")).toHaveLength(1);
    // Both went on the next try: the notice reached the outbox, the rating the analytics tables.
    await eventually(async () => {
      const [n] = await query<{ kind: string }>(
        sql`select kind from notifications where tenant_id = ${id} and kind = 'escalation'`,
      );
      return present(n, "the escalation notice");
    });
    await eventually(async () => {
      const [fb] = await query<{ csat: number }>(
        sql`select csat from feedback where tenant_id = ${id} and conversation_id = ${conv.id}`,
      );
      return present(fb, "the rating");
    });
  });
});
