import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../../src/chat/conversation-do";
import { eventually, present } from "../eventually";
import { query, send, sql, uniqueId } from "../helpers";
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

  it("hands a turn's inbox entries to the worker, which sends them packed with its analytics", async () => {
    const { id, key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, { user: "quick" })).json()) as {
      id: string;
    };
    const stub = ns().getByName(`${id}:${conv.id}`);
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
    // The object sent none of them itself: a plain turn costs it no queue message of its own.
    const own = await runInDurableObject(stub, () => events.filter((e) => e.type === "inbox"));
    expect(own.flatMap((e) => (e.entries ?? []).map((x) => x.seq))).toEqual([]);
  });
});
