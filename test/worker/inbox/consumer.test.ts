import { describe, expect, it } from "vitest";
import { consumeAnalyticsBatch, type QueueMessage } from "../../../src/analytics/consumer";
import { writeTombstone } from "../../../src/privacy/erasure";
import { batchOf, deliver, recordingDb } from "../analytics/helpers";
import { admin, createTenant, query, sql } from "../helpers";
import { entries, entryRows, inboxEvent, inboxRows } from "./helpers";

/** Delivers bodies through the worker's real queue handler and checks every message was acked. */
async function consume(bodies: unknown[]) {
  const batch = batchOf(bodies);
  const res = await deliver(batch);
  expect(res.retryMessages).toEqual([]);
  expect(res.explicitAcks.sort()).toEqual(batch.messages.map((m) => m.id).sort());
}

describe("inbox consumer: the index of conversations", () => {
  it("keeps the newest version of a conversation and every entry once, whatever the order", async () => {
    const { tenant_id: t } = await createTenant();
    await consume([inboxEvent(t, { version: 0 })]);
    expect(await inboxRows(t)).toEqual([
      { conversation_id: "c-1", status: "open", version: 0, csat: null, holder_name: null, turn_count: 0 },
    ]);
    const v4 = inboxEvent(t, { version: 4, status: "waiting", turnCount: 2, entries: entries(3, 4) });
    const v2 = inboxEvent(t, { version: 2, turnCount: 1, entries: entries(1, 2) });
    // v4 first, then the late v2: the row stays at v4, v2's entries still land.
    await consume([v4]);
    await consume([v2]);
    expect(await inboxRows(t)).toEqual([
      { conversation_id: "c-1", status: "waiting", version: 4, csat: null, holder_name: null, turn_count: 2 },
    ]);
    expect((await entryRows(t)).map((e) => [e.seq, e.role, e.content])).toEqual([
      [1, "user", "message 1"],
      [2, "assistant", "message 2"],
      [3, "user", "message 3"],
      [4, "assistant", "message 4"],
    ]);
    // A redelivery of both (same ids, a new delivery) changes nothing and adds no entry.
    await consume([v4, v2]);
    expect(await entryRows(t)).toHaveLength(4);
    expect((await inboxRows(t))[0]?.version).toBe(4);
  });

  it("several events of one conversation in one batch become its newest row; a later event of the same version wins", async () => {
    const { tenant_id: t } = await createTenant();
    const taken = inboxEvent(t, {
      version: 3,
      status: "human",
      holder: { operatorId: "op-1", name: "Anna" },
      entries: [{ seq: 3, role: "system", author: null, content: "Anna joined", at: Date.now() - 5_000 }],
    });
    await consume([
      inboxEvent(t, { version: 2, entries: entries(1, 2) }),
      taken,
      inboxEvent(t, { version: 1, entries: entries(1, 1) }),
      inboxEvent(t, { conversationId: "c-2", version: 1, entries: entries(1, 1) }),
    ]);
    expect(await inboxRows(t)).toEqual([
      { conversation_id: "c-1", status: "human", version: 3, csat: null, holder_name: "Anna", turn_count: 0 },
      { conversation_id: "c-2", status: "open", version: 1, csat: null, holder_name: null, turn_count: 0 },
    ]);
    expect((await entryRows(t)).map((e) => `${e.conversation_id}#${e.seq}`)).toEqual([
      "c-1#1",
      "c-1#2",
      "c-1#3",
      "c-2#1",
    ]);
    // Feedback after the end adds no entry: same version, later time, and it is the row's now.
    await consume([inboxEvent(t, { version: 3, status: "resolved", csat: 5, at: taken.at + 60_000 })]);
    // An event of that version from before it does not undo it.
    await consume([inboxEvent(t, { version: 3, status: "human", at: taken.at + 1 })]);
    const [row] = await inboxRows(t);
    expect(row).toMatchObject({ status: "resolved", csat: 5, version: 3, holder_name: null });
  });

  it("drops the events of an erased visitor and of a tenant that is gone; acks them all", async () => {
    const { tenant_id: t } = await createTenant();
    await writeTombstone({ execute: (q) => query(q).then((rows) => ({ rows })) }, t, "visitor:gone");
    await consume([
      inboxEvent(t, { userId: "visitor:gone", version: 1, entries: entries(1, 1) }),
      inboxEvent(t, { conversationId: "c-kept", version: 1, entries: entries(1, 1) }),
    ]);
    expect((await inboxRows(t)).map((r) => r.conversation_id)).toEqual(["c-kept"]);
    expect((await entryRows(t)).map((r) => r.conversation_id)).toEqual(["c-kept"]);

    // A deactivated tenant's data is kept (until a purge): its in-flight events still land.
    expect((await admin("DELETE", `/tenants/${t}`)).status).toBe(200);
    await consume([inboxEvent(t, { conversationId: "c-late", version: 1, entries: entries(1, 1) })]);
    expect((await inboxRows(t)).map((r) => r.conversation_id)).toEqual(["c-kept", "c-late"]);

    const never = `never-${t}`;
    await consume([inboxEvent(never, { version: 1, entries: entries(1, 1) })]);
    expect(await inboxRows(never)).toEqual([]);
    expect(await entryRows(never)).toEqual([]);
  });

  it("redacts built-in PII the producer left and drops NUL, so no entry is lost to either", async () => {
    const { tenant_id: t } = await createTenant();
    await consume([
      inboxEvent(t, {
        version: 2,
        entries: [
          { seq: 1, role: "user", author: null, content: "mail me at jane.doe@example.com", at: Date.now() },
          { seq: 2, role: "operator", author: "An\u0000na", content: "ok\u0000 done", at: Date.now() },
        ],
      }),
    ]);
    expect((await entryRows(t)).map((e) => e.content)).toEqual(["mail me at [email]", "ok done"]);
    const [author] = await query<{ author: string }>(
      sql`select author from inbox_entries where tenant_id = ${t} and seq = 2`,
    );
    expect(author?.author).toBe("Anna");
  });

  it("writes one statement per inbox table in the batch's one transaction and reports what changed", async () => {
    const { tenant_id: t } = await createTenant();
    const bodies = Array.from({ length: 10 }, (_, i) =>
      inboxEvent(t, { conversationId: `c-${i % 5}`, version: i, entries: entries(i + 1, i + 1) }),
    );
    const rec = recordingDb();
    try {
      const msgs: QueueMessage[] = bodies.map((body, i) => ({
        id: `m-${i}`,
        body,
        attempts: 1,
        ack() {},
        retry() {},
      }));
      const report = await consumeAnalyticsBatch(msgs, rec.db, { queue: "chatedge-analytics" });
      expect(report).toMatchObject({ messages: 10, acked: 10, transactions: 1, inbox: 10, duplicates: 0 });
      const inserts = rec.statements.map((s) => /insert into (\w+)/.exec(s)?.[1]).filter(Boolean);
      // The last is the rollups' statement: inbox events add nothing to it but the queue's wait.
      expect(inserts).toEqual(["inbox_conversations", "inbox_entries", "queue_lag"]);
      // Again: nothing new, all counted as duplicates.
      const again = await consumeAnalyticsBatch(msgs, rec.db, { queue: "chatedge-analytics" });
      expect(again).toMatchObject({ acked: 10, inbox: 0, duplicates: 10 });
    } finally {
      await rec.close();
    }
    expect(await inboxRows(t)).toHaveLength(5);
    expect(await entryRows(t)).toHaveLength(10);
  });

  it("refuses an inbox event that breaks the contract into dead letters, writing nothing", async () => {
    const { tenant_id: t } = await createTenant();
    const bad = { ...inboxEvent(t, { version: 1 }), status: "escalated" };
    const negative = inboxEvent(t, {
      conversationId: "c-2",
      version: 1,
      entries: [{ ...entries(1, 1)[0], seq: 0 } as never],
    });
    await consume([bad, negative]);
    expect(await inboxRows(t)).toEqual([]);
    const letters = await query<{ error: string }>(
      sql`select error from dead_letters where tenant_id = ${t} order by id`,
    );
    expect(letters.map((l) => l.error.split(":")[0])).toEqual(["invalid event", "invalid event"]);
  });
});
