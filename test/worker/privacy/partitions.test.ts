import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { consumeAnalyticsBatch } from "../../../src/analytics/consumer";
import { openDb } from "../../../src/db/client";
import { loadEnv } from "../../../src/env";
import {
  createPartition,
  dropExpiredPartitions,
  ensurePartitions,
  MONTHS_AHEAD,
  monthPartition,
  partitionsOf,
} from "../../../src/privacy/partitions";
import { ANALYTICS_QUEUE_NAME, batchOf, conversationEvent, turnEvent } from "../analytics/helpers";
import { query, sql, uniqueId } from "../helpers";

const loaded = loadEnv(env);
if (!loaded.ok) throw new Error(loaded.problems.join("; "));
const testEnv = loaded.env;

async function withDb<T>(run: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
  const h = openDb(testEnv);
  try {
    return await run(h.db);
  } finally {
    await h.close();
  }
}

/** The physical table each of a tenant's turns landed in, by conversation id. */
async function turnHomes(tenantId: string): Promise<Record<string, string>> {
  const rows = await query<{ c: string; p: string }>(
    sql`select conversation_id as c, tableoid::regclass::text as p from turns where tenant_id = ${tenantId}`,
  );
  return Object.fromEntries(rows.map((r) => [r.c, r.p]));
}

async function insertTurn(tenantId: string, conversationId: string, at: Date) {
  await query(sql`insert into turns (id, tenant_id, conversation_id, user_id, at, day, turn_index, model,
      input_tokens, output_tokens, cost_usd, latency_ms, outcome, tools_used, channel)
    values (${crypto.randomUUID()}, ${tenantId}, ${conversationId}, 'visitor:v', ${at.toISOString()},
      ${at.toISOString().slice(0, 10)}, 0, 'mock', 1, 1, 0, 10, 'ok', '[]', 'web')`);
}

async function insertConversation(tenantId: string, conversationId: string, started: Date, ended: Date) {
  await query(sql`insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at, ended_at,
      turn_count, resolved, escalated, total_tokens, total_cost_usd, avg_response_ms, tools_used, channel, error_count)
    values (${crypto.randomUUID()}, ${tenantId}, ${conversationId}, 'visitor:v', ${started.toISOString().slice(0, 10)},
      ${started.toISOString()}, ${ended.toISOString()}, 1, true, false, 2, 0, 10, '[]', 'web', 0)`);
}

describe("monthly partitions of turns and conversations", () => {
  it("takes turns of this month, the next and the far future through the consumer, each in its place", async () => {
    const t = uniqueId("part");
    const now = Date.now();
    const next = monthPartition("turns", now, 1);
    const far = Date.UTC(2099, 5, 15);
    const events = [
      turnEvent(t, { conversationId: "now", at: now }),
      turnEvent(t, { conversationId: "next", at: next.from.getTime() + 3_600_000 }),
      turnEvent(t, { conversationId: "far", at: far }),
      conversationEvent(t, { conversationId: "far", startedAt: far, endedAt: far + 60_000 }),
    ];
    // The consumer's own code path, its clock past the far event (it refuses events a day ahead).
    const consume = () =>
      withDb((db) =>
        consumeAnalyticsBatch(batchOf(events).messages, db, { queue: ANALYTICS_QUEUE_NAME, now: far + 1 }),
      );
    const first = await consume();
    expect(first).toMatchObject({ acked: 4, retried: 0, turns: 3, conversations: 1 });
    expect(await turnHomes(t)).toEqual({
      now: monthPartition("turns", now).name,
      next: next.name,
      far: "turns_default",
    });
    // A redelivery hits the keys (which include the partition column): nothing twice.
    expect(await consume()).toMatchObject({ acked: 4, turns: 0, conversations: 0 });
    const [n] = await query<{ turns: number; conversations: number }>(sql`select
      (select count(*)::int from turns where tenant_id = ${t}) as turns,
      (select count(*)::int from conversations where tenant_id = ${t}) as conversations`);
    expect(n).toEqual({ turns: 3, conversations: 1 });
  });

  it("exist from this month to MONTHS_AHEAD ahead, and a month's partition takes its rows from the default", async () => {
    const months = await withDb((db) => partitionsOf(db, "turns"));
    const names = months.months.map((p) => p.name);
    for (let i = 0; i <= MONTHS_AHEAD; i++)
      expect(names).toContain(monthPartition("turns", Date.now(), i).name);
    expect(months.other).toEqual(["turns_default"]);

    // A month far ahead (its own year, no other test writes there): rows first land in the default.
    const t = uniqueId("part");
    const month = Date.UTC(2088, 2, 1);
    await insertTurn(t, "early", new Date(month + 86_400_000));
    await insertConversation(t, "early", new Date(month + 86_400_000), new Date(month + 2 * 86_400_000));
    expect(await turnHomes(t)).toEqual({ early: "turns_default" });

    const created = await withDb((db) => ensurePartitions(db, month, 0));
    expect(created).toEqual(["turns_p208803", "conversations_p208803"]);
    expect(await turnHomes(t)).toEqual({ early: "turns_p208803" });
    const [c] = await query<{ p: string }>(
      sql`select tableoid::regclass::text as p from conversations where tenant_id = ${t}`,
    );
    expect(c?.p).toBe("conversations_p208803");
    // Later inserts of that month go straight to it; a second run creates nothing.
    await insertTurn(t, "later", new Date(month + 10 * 86_400_000));
    expect((await turnHomes(t)).later).toBe("turns_p208803");
    expect(await withDb((db) => ensurePartitions(db, month, 0))).toEqual([]);
  });

  it("drops whole months past the cutoff, but keeps a conversations month with a conversation that ended after it", async () => {
    const t = uniqueId("part");
    // Months no other test uses: 2001-01 and 2001-02, the cutoff at the start of 2001-03.
    const jan = monthPartition("turns", Date.UTC(2001, 0, 1));
    const feb = monthPartition("turns", Date.UTC(2001, 1, 1));
    const cutoff = Date.UTC(2001, 2, 1);
    await withDb(async (db) => {
      for (const p of [jan, feb]) {
        await createPartition(db, "turns", p);
        await createPartition(db, "conversations", monthPartition("conversations", p.from.getTime()));
      }
    });
    await insertTurn(t, "jan", new Date(Date.UTC(2001, 0, 10)));
    await insertTurn(t, "feb", new Date(Date.UTC(2001, 1, 10)));
    // Started in January, ended after the cutoff: its month stays until the sweep has taken it.
    await insertConversation(t, "long", new Date(Date.UTC(2001, 0, 30)), new Date(Date.UTC(2001, 2, 2)));
    await insertConversation(t, "feb", new Date(Date.UTC(2001, 1, 10)), new Date(Date.UTC(2001, 1, 11)));
    // A row of a current month, which must stay.
    await insertTurn(t, "now", new Date());

    const dropped = await withDb((db) => dropExpiredPartitions(db, cutoff));
    expect(dropped.sort()).toEqual(["conversations_p200102", "turns_p200101", "turns_p200102"]);
    expect(Object.keys(await turnHomes(t))).toEqual(["now"]);
    const left = await query<{ c: string }>(
      sql`select conversation_id as c from conversations where tenant_id = ${t}`,
    );
    expect(left).toEqual([{ c: "long" }]);
    // Once that conversation is gone, its month goes too.
    await query(sql`delete from conversations where tenant_id = ${t}`);
    expect(await withDb((db) => dropExpiredPartitions(db, cutoff))).toEqual(["conversations_p200101"]);
  });
});
