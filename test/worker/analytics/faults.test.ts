import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../../src/analytics/consumer";
import { query, sql, uniqueId } from "../helpers";
import {
  ANALYTICS_QUEUE_NAME,
  batchOf,
  conversationEvent,
  countRows,
  dailyRows,
  deliver,
  dlqBatch,
  feedbackEvent,
  safetyEvent,
  turnEvent,
} from "./helpers";

const deadLetters = (tenantId: string) =>
  query<{ message_id: string; queue: string; reason: string; error: string; body: string; event_id: string }>(
    sql`select message_id, queue, reason, error, body, event_id from dead_letters
        where tenant_id = ${tenantId} order by id`,
  );

/** Postgres unreachable: the relay refuses any target but the real server. */
const POSTGRES_DOWN = {
  DATABASE_URL: `postgres://postgres@127.0.0.1:1/${new URL(env.DATABASE_URL).pathname.slice(1)}`,
};

describe("analytics consumer: poison messages", () => {
  it("dead-letters messages that break the contract and writes the rest of the batch", async () => {
    const t = uniqueId("an");
    const good = Array.from({ length: 20 }, (_, i) => turnEvent(t, { userId: `u-${i}` }));
    const badSchema = { ...turnEvent(t), latencyMs: -5 };
    const notAnEvent = "hello";
    const future = turnEvent(t, { at: Date.now() + 3 * 86_400_000 });
    const batch = batchOf([...good.slice(0, 10), badSchema, notAnEvent, future, ...good.slice(10)]);
    const ids = batch.messages.map((m) => m.id);
    const res = await deliver(batch);
    expect(res.retryMessages).toEqual([]);
    expect(res.explicitAcks.sort()).toEqual([...ids].sort());
    expect(await countRows("turns", t)).toBe(20);
    expect((await dailyRows(t))[0]).toMatchObject({ turns: 20, active_users: 20 });
    const letters = await deadLetters(t);
    expect(letters.map((l) => [l.message_id, l.reason])).toEqual([
      [ids[10], "invalid"],
      [ids[12], "invalid"],
    ]);
    expect(letters[0]?.error).toContain("latencyMs");
    expect(JSON.parse(letters[0]?.body ?? "")).toEqual(badSchema);
    expect(letters[1]?.error).toContain("future");
    const [bare] = await query<{ body: string; reason: string }>(
      sql`select body, reason from dead_letters where message_id = ${ids[11]}`,
    );
    expect(bare).toEqual({ body: '"hello"', reason: "invalid" });
  });

  it("isolates an event Postgres refuses by halving the batch, and writes every other event", async () => {
    const t = uniqueId("an");
    // Valid by the contract, but Postgres text cannot hold NUL: the statement carrying it fails.
    const poison = turnEvent(t, { userId: "bad\u0000user" });
    const tooManyTurns = conversationEvent(t, { conversationId: "c-big", turnCount: 2 ** 31 });
    const good = [
      ...Array.from({ length: 30 }, (_, i) => turnEvent(t, { userId: `u-${i % 5}` })),
      conversationEvent(t, { conversationId: "c-ok" }),
      feedbackEvent(t, { conversationId: "c-ok", csat: 3 }),
      safetyEvent(t),
    ];
    const batch = batchOf([
      ...good.slice(0, 17),
      poison,
      ...good.slice(17, 31),
      tooManyTurns,
      ...good.slice(31),
    ]);
    const res = await deliver(batch);
    expect(res.retryMessages).toEqual([]);
    expect(res.explicitAcks).toHaveLength(35);
    expect(await countRows("turns", t)).toBe(30);
    expect(await countRows("conversations", t)).toBe(1);
    expect(await countRows("feedback", t)).toBe(1);
    expect(await countRows("safety_events", t)).toBe(1);
    expect((await dailyRows(t))[0]).toMatchObject({
      turns: 30,
      active_users: 5,
      conversations: 1,
      csat_sum: 3,
      csat_count: 1,
      safety_events: 1,
    });
    const letters = await deadLetters(t);
    expect(letters.map((l) => [l.event_id, l.reason])).toEqual([
      [poison.id, "rejected"],
      [tooManyTurns.id, "rejected"],
    ]);
    expect(letters[1]?.error).toContain("out of range");
    expect(JSON.parse(letters[0]?.body ?? "")).toEqual(poison);
  });
});

describe("analytics consumer: Postgres down", () => {
  it("retries every message with backoff, acks none, then writes each exactly once after recovery", async () => {
    const t = uniqueId("an");
    const events = [
      ...Array.from({ length: 25 }, (_, i) => turnEvent(t, { userId: `u-${i % 4}`, latencyMs: 100 + i })),
      conversationEvent(t, { csat: 4 }),
      feedbackEvent(t, { csat: 2 }),
      safetyEvent(t),
      { not: "an event" },
    ];
    const ids = events.map((_, i) => `down-${t}-${i}`);
    for (const attempts of [1, 2, 3]) {
      const res = await deliver(batchOf(events, { attempts, ids }), POSTGRES_DOWN);
      expect(res.explicitAcks).toEqual([]);
      expect(res.retryMessages.map((r) => r.msgId).sort()).toEqual([...ids].sort());
      expect(res.delays).toEqual(Object.fromEntries(ids.map((id) => [id, retryDelaySeconds(attempts)])));
    }
    expect(await countRows("turns", t)).toBe(0);
    expect(await dailyRows(t)).toEqual([]);

    const recovered = await deliver(batchOf(events, { attempts: 4, ids }));
    expect(recovered.retryMessages).toEqual([]);
    expect(recovered.explicitAcks.sort()).toEqual([...ids].sort());
    // A copy of the batch still in flight from before the outage lands on top: nothing changes.
    await deliver(batchOf(events, { attempts: 4 }));
    expect(await countRows("turns", t)).toBe(25);
    expect(await countRows("conversations", t)).toBe(1);
    expect(await countRows("feedback", t)).toBe(1);
    expect(await countRows("safety_events", t)).toBe(1);
    expect((await dailyRows(t))[0]).toMatchObject({
      turns: 25,
      answered: 25,
      active_users: 4,
      latency_sum_ms: 25 * 100 + 300,
      conversations: 1,
      csat_sum: 2,
      csat_count: 1,
      safety_events: 1,
    });
    const [dl] = await query<{ n: number }>(
      sql`select count(*)::int as n from dead_letters where message_id = ${ids[28]}`,
    );
    expect(dl?.n).toBe(1);
  });
});

describe("analytics dead-letter queue", () => {
  it("stores what ran out of retries, once per message, keeping the body for replay", async () => {
    const t = uniqueId("an");
    const events = [turnEvent(t), conversationEvent(t)];
    const ids = [`dlq-${t}-0`, `dlq-${t}-1`];
    const res = await deliver(dlqBatch(events, { ids }));
    expect(res.explicitAcks.sort()).toEqual([...ids].sort());
    await deliver(dlqBatch(events, { ids, attempts: 2 }));
    const letters = await deadLetters(t);
    expect(letters).toHaveLength(2);
    expect(letters.map((l) => [l.queue, l.reason, l.event_id])).toEqual([
      [ANALYTICS_QUEUE_NAME, "exhausted", events[0]?.id],
      [ANALYTICS_QUEUE_NAME, "exhausted", events[1]?.id],
    ]);
    expect(letters[0]?.error).toBe("delivery to chatedge-analytics failed 11 times");
    expect(letters.map((l) => JSON.parse(l.body))).toEqual(events);
  });

  it("retries its batch with backoff while Postgres is down", async () => {
    const t = uniqueId("an");
    const res = await deliver(dlqBatch([turnEvent(t)], { attempts: 3 }), POSTGRES_DOWN);
    expect(res.explicitAcks).toEqual([]);
    expect(res.retryMessages).toHaveLength(1);
    expect(Object.values(res.delays)).toEqual([8]);
  });
});
