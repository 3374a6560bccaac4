import { describe, expect, it } from "vitest";
import { consumeAnalyticsBatch, type QueueMessage, retryDelaySeconds } from "../../../src/analytics/consumer";
import { query, sql, uniqueId } from "../helpers";
import {
  ANALYTICS_QUEUE_NAME,
  batchOf,
  conversationEvent,
  countRows,
  dailyRows,
  dayTime,
  deliver,
  feedbackEvent,
  histogram,
  recordingDb,
  safetyEvent,
  turnEvent,
} from "./helpers";

/** Messages as plain objects, recording what the consumer answered. */
function messages(bodies: unknown[], attempts = 1) {
  return bodies.map((body, i) => {
    const m = {
      id: `m-${i}`,
      body,
      attempts,
      acked: false,
      retryDelay: undefined as number | undefined,
      ack() {
        m.acked = true;
      },
      retry(o?: { delaySeconds?: number }) {
        m.retryDelay = o?.delaySeconds ?? 0;
      },
    } satisfies QueueMessage & Record<string, unknown>;
    return m;
  });
}

describe("analytics consumer: batch writes", () => {
  it("writes a batch with one multi-row statement per table, then one for all rollups", async () => {
    const t = uniqueId("an");
    const bodies = [
      ...Array.from({ length: 40 }, (_, i) =>
        turnEvent(t, { conversationId: `c-${i % 10}`, userId: `u-${i % 7}`, turnIndex: i }),
      ),
      ...Array.from({ length: 10 }, (_, i) => conversationEvent(t, { conversationId: `c-${i}` })),
      ...Array.from({ length: 5 }, (_, i) => feedbackEvent(t, { conversationId: `c-${i}`, csat: 4 })),
      ...Array.from({ length: 3 }, () => safetyEvent(t)),
    ];
    const rec = recordingDb();
    try {
      const msgs = messages(bodies);
      const report = await consumeAnalyticsBatch(msgs, rec.db, { queue: ANALYTICS_QUEUE_NAME });
      expect(msgs.every((m) => m.acked && m.retryDelay === undefined)).toBe(true);
      expect(report).toMatchObject({
        messages: 58,
        acked: 58,
        retried: 0,
        transactions: 1,
        turns: 40,
        conversations: 10,
        feedback: 5,
        safety: 3,
        duplicates: 0,
        csatUpdates: 5,
      });
      const kinds = rec.statements.map((s) => {
        const q = s.replace(/\s+/g, " ").trim();
        if (/^(begin|commit)/.test(q)) return q.split(" ")[0];
        if (q.includes("pg_advisory_xact_lock")) return "lock";
        if (q.startsWith("with queue_wait")) return "rollups";
        const m = /insert into (\w+)/.exec(q);
        return m ? m[1] : q.slice(0, 40);
      });
      expect(kinds).toEqual([
        // Tombstones of erased visitors (src/privacy/erasure.ts): their late events are dropped.
        "select subject_hash, (extract(epoch from",
        "begin",
        "lock",
        "turns",
        "conversations",
        "feedback",
        "safety_events",
        "rollups",
        "commit",
      ]);
    } finally {
      await rec.close();
    }
    expect(await countRows("turns", t)).toBe(40);
    expect(await countRows("tenant_daily_users", t)).toBe(7);
    const [day] = await dailyRows(t);
    expect(day).toMatchObject({
      turns: 40,
      answered: 40,
      errors: 0,
      input_tokens: 4000,
      output_tokens: 2000,
      active_users: 7,
      conversations: 10,
      conversation_turns: 20,
      resolved: 10,
      escalated: 0,
      csat_sum: 20,
      csat_count: 5,
      conversation_tokens: 3000,
      safety_events: 3,
    });
    expect(day?.cost_usd).toBeCloseTo(0.004, 12);
    expect(day?.latency_sum_ms).toBe(32_000);
    // 800 ms: 2^9 <= 800 < 2^10, so e = 4 and the bucket is 32·4 + (800 >> 4) = 178.
    expect(Object.values(await histogram(t))).toEqual([{ 178: 40 }]);
  });

  it("writes nothing twice when a batch is redelivered, whole or mixed into another batch", async () => {
    const t = uniqueId("an");
    const events = [
      turnEvent(t, { latencyMs: 120, outcome: "ok" }),
      turnEvent(t, { latencyMs: 5_000, outcome: "error", error: "timeout", userId: "u-2" }),
      turnEvent(t, { outcome: "blocked", latencyMs: 3, at: dayTime(1) }),
      turnEvent(t, { outcome: "refused", latencyMs: 1, at: dayTime(1) }),
      conversationEvent(t, { csat: 3 }),
      feedbackEvent(t, { csat: 5 }),
      safetyEvent(t, { at: dayTime(1) }),
    ];
    const first = await deliver(batchOf(events));
    expect(first.explicitAcks).toHaveLength(7);
    const rollups = await dailyRows(t);
    expect(rollups).toHaveLength(2);
    expect(rollups[0]).toMatchObject({ turns: 2, answered: 0, blocked: 1, refused: 1, safety_events: 1 });
    expect(rollups[1]).toMatchObject({
      turns: 2,
      answered: 2,
      errors: 1,
      active_users: 2,
      csat_sum: 5,
      csat_count: 1,
    });

    const again = await deliver(batchOf(events, { attempts: 2 }));
    expect(again.explicitAcks).toHaveLength(7);
    expect(again.retryMessages).toEqual([]);
    const mixed = await deliver(batchOf([...events.slice(0, 3), turnEvent(t, { userId: "u-3" })]));
    expect(mixed.explicitAcks).toHaveLength(4);

    expect(await countRows("turns", t)).toBe(5);
    expect(await countRows("conversations", t)).toBe(1);
    expect(await countRows("feedback", t)).toBe(1);
    expect(await countRows("safety_events", t)).toBe(1);
    const after = await dailyRows(t);
    expect(after[0]).toEqual(rollups[0]);
    expect(after[1]).toEqual({
      ...rollups[1],
      turns: 3,
      answered: 3,
      active_users: 3,
      input_tokens: 300,
      output_tokens: 150,
      cost_usd: after[1]?.cost_usd,
      latency_sum_ms: 120 + 5_000 + 800,
    });
    expect(after[1]?.cost_usd).toBeCloseTo(0.0003, 12);
    // Only answered turns (ok, error) have a response time: 120 ms -> 92, 5000 ms -> 263, 800 ms -> 178.
    expect(Object.values(await histogram(t))).toEqual([{ 92: 1, 178: 1, 263: 1 }]);
  });

  it("counts disconnects and hand-overs as their own outcomes, and stores the model called", async () => {
    const t = uniqueId("an");
    const events = [
      turnEvent(t, { latencyMs: 120, model: "claude-haiku", calledModel: "claude-haiku-4-5" }),
      turnEvent(t, { latencyMs: 900, outcome: "error", error: "timeout", userId: "u-2" }),
      turnEvent(t, {
        latencyMs: 4_000,
        outcome: "disconnected",
        error: "client disconnected",
        userId: "u-3",
        inputTokens: 40,
        outputTokens: 7,
        costUsd: 0.00001,
      }),
      turnEvent(t, {
        outcome: "human",
        calledModel: null,
        latencyMs: 0,
        firstTokenMs: null,
        inputTokens: 0,
        outputTokens: 0,
        costUsd: 0,
        userId: "u-4",
      }),
    ];
    // An event produced before `calledModel` existed (a replayed dead letter) still validates.
    const { calledModel: _, ...older } = turnEvent(t, { userId: "u-5" });
    const res = await deliver(batchOf([...events, older]));
    expect(res.explicitAcks).toHaveLength(5);
    const rows = await query<{
      user_id: string;
      outcome: string;
      model: string;
      called_model: string | null;
    }>(sql`select user_id, outcome, model, called_model from turns where tenant_id = ${t} order by user_id`);
    expect(rows).toEqual([
      { user_id: "u-1", outcome: "ok", model: "claude-haiku", called_model: "claude-haiku-4-5" },
      { user_id: "u-2", outcome: "error", model: "gpt-4o-mini", called_model: "gpt-4o-mini" },
      { user_id: "u-3", outcome: "disconnected", model: "gpt-4o-mini", called_model: "gpt-4o-mini" },
      { user_id: "u-4", outcome: "human", model: "gpt-4o-mini", called_model: null },
      { user_id: "u-5", outcome: "ok", model: "gpt-4o-mini", called_model: null },
    ]);
    // Every message is a turn and its user active; only ok and error turns are answered (latency,
    // error rate); the disconnect still counts its tokens and cost.
    const [day] = await dailyRows(t);
    expect(day).toMatchObject({
      turns: 5,
      answered: 3,
      errors: 1,
      disconnected: 1,
      human: 1,
      blocked: 0,
      active_users: 5,
      input_tokens: 340,
      output_tokens: 157,
      latency_sum_ms: 120 + 900 + 800,
    });
    const [totals] = await query<Record<string, number>>(
      sql`select turns::int, answered::int, errors::int, disconnected::int, human::int
          from tenant_totals where tenant_id = ${t}`,
    );
    expect(totals).toEqual({ turns: 5, answered: 3, errors: 1, disconnected: 1, human: 1 });
  });

  it("keeps the first of an event repeated inside one batch, whatever the case of its id", async () => {
    const t = uniqueId("an");
    const e = turnEvent(t);
    const shouting = { ...e, id: e.id.toUpperCase() };
    const res = await deliver(batchOf([e, e, shouting]));
    expect(res.explicitAcks).toHaveLength(3);
    await deliver(batchOf([shouting]));
    expect(await countRows("turns", t)).toBe(1);
    expect((await dailyRows(t))[0]).toMatchObject({ turns: 1, active_users: 1 });
    const t2 = uniqueId("an");
    const upper = turnEvent(t2);
    await deliver(batchOf([{ ...upper, id: upper.id.toUpperCase() }]));
    expect((await dailyRows(t2))[0]).toMatchObject({ turns: 1, active_users: 1 });
  });

  it("backs off exponentially by attempt, capped at ten minutes", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 50].map(retryDelaySeconds)).toEqual([
      2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600,
    ]);
  });
});

describe("analytics consumer: CSAT from feedback", () => {
  const read = async (t: string) => {
    const [d] = await dailyRows(t);
    return { csat_sum: d?.csat_sum, csat_count: d?.csat_count };
  };

  it("updates the conversation's CSAT once when feedback arrives after it", async () => {
    const t = uniqueId("an");
    await deliver(batchOf([conversationEvent(t, { csat: null })]));
    expect(await read(t)).toEqual({ csat_sum: 0, csat_count: 0 });
    const fb = feedbackEvent(t, { csat: 2 });
    await deliver(batchOf([fb]));
    await deliver(batchOf([fb], { attempts: 2 }));
    expect(await read(t)).toEqual({ csat_sum: 2, csat_count: 1 });
    const [row] = await query<{ csat: number; summary_csat: number | null }>(
      sql`select csat, summary_csat from conversations where tenant_id = ${t}`,
    );
    expect(row).toEqual({ csat: 2, summary_csat: null });
  });

  it("takes the feedback when the conversation arrives after it", async () => {
    const t = uniqueId("an");
    await deliver(batchOf([feedbackEvent(t, { csat: 4 })]));
    expect(await dailyRows(t)).toEqual([]);
    const conv = conversationEvent(t, { csat: null });
    await deliver(batchOf([conv]));
    await deliver(batchOf([conv]));
    expect(await read(t)).toEqual({ csat_sum: 4, csat_count: 1 });
  });

  it("counts a rating once when the summary and a feedback event carry it", async () => {
    const t = uniqueId("an");
    await deliver(batchOf([feedbackEvent(t, { csat: 5 }), conversationEvent(t, { csat: 5 })]));
    expect(await read(t)).toEqual({ csat_sum: 5, csat_count: 1 });
  });

  it("lets the latest feedback win, in whatever order the events arrive", async () => {
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 2, 0],
      [0, 2, 1],
    ];
    for (const order of orders) {
      const t = uniqueId("an");
      const events = [
        conversationEvent(t, { csat: 3 }),
        feedbackEvent(t, { csat: 1, at: dayTime(0, 100_000) }),
        feedbackEvent(t, { csat: 4, at: dayTime(0, 200_000) }),
      ];
      for (const i of order) await deliver(batchOf([events[i]]));
      expect(await read(t)).toEqual({ csat_sum: 4, csat_count: 1 });
    }
  });

  it("replaces the summary's own rating with later feedback", async () => {
    const t = uniqueId("an");
    await deliver(batchOf([conversationEvent(t, { csat: 5 })]));
    await deliver(batchOf([feedbackEvent(t, { csat: 2 })]));
    expect(await read(t)).toEqual({ csat_sum: 2, csat_count: 1 });
  });
});
