/**
 * Packed analytics events (src/analytics/pack.ts): the producer's batch travels as one queue
 * message; the worker's real queue handlers open it, write, dead-letter and retry per event, and
 * answer the pack by what its events got.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../../src/analytics/consumer";
import { isPack, PACK_MAX_BYTES, packEvents, unpackMessages } from "../../../src/analytics/pack";
import { refusalEvents, sendPacked } from "../../../src/analytics/producer";
import { PartialWrite } from "../../../src/batcher";
import { eventually } from "../eventually";
import { query, sql, uniqueId } from "../helpers";
import { batchOf, conversationEvent, countRows, deliver, dlqBatch, turnEvent } from "./helpers";

const POSTGRES_DOWN = {
  DATABASE_URL: `postgres://postgres@127.0.0.1:1/${new URL(env.DATABASE_URL).pathname.slice(1)}`,
};

const letters = (tenantId: string) =>
  query<{ message_id: string; reason: string; event_id: string | null }>(
    sql`select message_id, reason, event_id from dead_letters where tenant_id = ${tenantId} order by message_id`,
  );

describe("packEvents", () => {
  it("puts a batch in one pack, and splits one heavier than a queue message takes", () => {
    const t = uniqueId("pk");
    const events = Array.from({ length: 100 }, () => turnEvent(t));
    expect(packEvents(events)).toEqual([{ pack: 1, events }]);
    expect(packEvents([])).toEqual([]);

    // About 2 KB each, 100 of them: over the limit, so split; each pack under it, order kept.
    const heavy = Array.from({ length: 100 }, () => turnEvent(t, { error: "é".repeat(1_000) }));
    const packs = packEvents(heavy);
    expect(packs.length).toBeGreaterThan(1);
    expect(packs.flatMap((p) => p.events)).toEqual(heavy);
    for (const p of packs)
      expect(new TextEncoder().encode(JSON.stringify(p)).length).toBeLessThan(PACK_MAX_BYTES);
    // An event heavier than a pack may be travels alone.
    const huge = turnEvent(t, { error: "x".repeat(PACK_MAX_BYTES) });
    expect(packEvents([turnEvent(t), huge, turnEvent(t)]).map((p) => p.events.length)).toEqual([1, 1, 1]);
  });
});

describe("sendPacked", () => {
  it("a pack the queue refuses holds back no other: only its events are tried again", async () => {
    const t = uniqueId("pk");
    // Over what one queue message holds (128 KB), and so over what a pack may weigh: it goes alone,
    // between the two others, and the queue refuses it.
    const huge = turnEvent(t, { error: "x".repeat(130_000) });
    const [first, last] = [turnEvent(t), turnEvent(t)];
    expect(packEvents([first, huge, last]).map((p) => p.events)).toEqual([[first], [huge], [last]]);
    const failure = await sendPacked(env.ANALYTICS_QUEUE, [first, huge, last]).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PartialWrite);
    expect((failure as PartialWrite<unknown>).rest).toEqual([huge]);
    // The pack after the refused one went too (before, the first failure ended the send): the
    // worker's consumer wrote both events.
    await eventually(async () => expect(await countRows("turns", t)).toBe(2));
  });

  it("a refusals' flush tried again keeps its counts: its events come back as the next attempt's items", () => {
    const t = uniqueId("pk");
    const refusals = [
      ...Array.from({ length: 500 }, (_, i) => ({ tenantId: t, reason: "user" as const, at: 1_000 + i })),
      ...Array.from({ length: 3 }, () => ({ tenantId: t, reason: "tenant" as const, at: 2_000 })),
    ];
    const events = refusalEvents(refusals);
    expect(events.map((e) => [e.reason, e.count, e.at])).toEqual([
      ["user", 500, 1_000],
      ["tenant", 3, 2_000],
    ]);
    // What a PartialWrite hands back is these events; counted again, they are the same counts.
    expect(refusalEvents(events).map((e) => [e.reason, e.count, e.at])).toEqual([
      ["user", 500, 1_000],
      ["tenant", 3, 2_000],
    ]);
  });
});

describe("unpackMessages", () => {
  const message = (id: string, body: unknown) => {
    const seen: string[] = [];
    return {
      seen,
      msg: {
        id,
        body,
        attempts: 3,
        ack: () => seen.push("ack"),
        retry: (o?: { delaySeconds?: number }) => seen.push(`retry ${o?.delaySeconds}`),
      },
    };
  };

  it("names each event after its pack and answers the pack by what its events got", () => {
    const t = uniqueId("pk");
    const [a, b, c] = [turnEvent(t), turnEvent(t), conversationEvent(t)];
    const acked = message("m1", { pack: 1, events: [a, b] });
    const retried = message("m2", { pack: 1, events: [c, a] });
    const unanswered = message("m3", { pack: 1, events: [b] });
    const single = message("m4", c);
    const out = unpackMessages([acked.msg, retried.msg, unanswered.msg, single.msg]);
    expect(out.messages.map((m) => [m.id, m.attempts])).toEqual([
      ["m1:0", 3],
      ["m1:1", 3],
      ["m2:0", 3],
      ["m2:1", 3],
      ["m3:0", 3],
      ["m4", 3],
    ]);
    expect(out.messages.map((m) => m.body)).toEqual([a, b, c, a, b, c]);
    const [m10, m11, m20, m21] = out.messages;
    m10?.ack();
    m11?.ack();
    m20?.ack();
    m21?.retry({ delaySeconds: 8 });
    out.settle();
    expect(acked.seen).toEqual(["ack"]);
    expect(retried.seen).toEqual(["retry 8"]);
    // Left to the queue's own rule, as an unanswered message is; a single event is its own message.
    expect(unanswered.seen).toEqual([]);
    expect(single.seen).toEqual([]);
    expect(isPack(c)).toBe(false);
  });
});

describe("the analytics queue handler with packs", () => {
  it("writes every event of a pack once, dead-letters a bad one, and acks the pack", async () => {
    const t = uniqueId("pk");
    const good = Array.from({ length: 30 }, (_, i) => turnEvent(t, { userId: `u-${i}` }));
    const bad = { ...turnEvent(t), latencyMs: -5 };
    const batch = batchOf([{ pack: 1, events: [...good.slice(0, 10), bad, ...good.slice(10)] }], {
      ids: [`p-${t}`],
    });
    const res = await deliver(batch);
    expect(res.retryMessages).toEqual([]);
    expect(res.explicitAcks).toEqual([`p-${t}`]);
    expect(await countRows("turns", t)).toBe(30);
    expect((await letters(t)).map((l) => [l.message_id, l.reason, l.event_id])).toEqual([
      [`p-${t}:10`, "invalid", bad.id],
    ]);
    // The same pack again (a redelivery): nothing is written twice.
    await deliver(
      batchOf([{ pack: 1, events: [...good.slice(0, 10), bad, ...good.slice(10)] }], { ids: [`p-${t}`] }),
    );
    expect(await countRows("turns", t)).toBe(30);
    expect(await letters(t)).toHaveLength(1);
  });

  it("retries the whole pack with backoff while Postgres is down", async () => {
    const t = uniqueId("pk");
    const res = await deliver(
      batchOf([{ pack: 1, events: [turnEvent(t), turnEvent(t)] }], { attempts: 2 }),
      POSTGRES_DOWN,
    );
    expect(res.explicitAcks).toEqual([]);
    expect(res.retryMessages).toHaveLength(1);
    expect(Object.values(res.delays)).toEqual([retryDelaySeconds(2)]);
    expect(await countRows("turns", t)).toBe(0);
  });

  it("stores a pack that ran out of retries as one dead letter per event", async () => {
    const t = uniqueId("pk");
    const events = [turnEvent(t), conversationEvent(t)];
    const res = await deliver(dlqBatch([{ pack: 1, events }], { ids: [`d-${t}`] }));
    expect(res.explicitAcks).toEqual([`d-${t}`]);
    expect((await letters(t)).map((l) => [l.message_id, l.reason, l.event_id])).toEqual([
      [`d-${t}:0`, "exhausted", events[0]?.id],
      [`d-${t}:1`, "exhausted", events[1]?.id],
    ]);
  });
});
