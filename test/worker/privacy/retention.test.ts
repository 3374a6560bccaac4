import {
  createExecutionContext,
  createScheduledController,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../../src/chat/conversation-do";
import { openDb } from "../../../src/db/client";
import { loadEnv } from "../../../src/env";
import worker from "../../../src/index";
import { DAY_MS, retentionDaysOf, sweepRetention } from "../../../src/privacy/retention";
import { dayTime } from "../analytics/helpers";
import { chatTenant } from "../chat/helpers";
import { admin, query, send, sql } from "../helpers";

const loaded = loadEnv(env);
if (!loaded.ok) throw new Error(loaded.problems.join("; "));
const testEnv = loaded.env;

/** Rows of every per-event table, dated `daysAgo`, written as the consumer and the outbox would. */
async function seed(tenantId: string, daysAgo: number, tag: string) {
  const at = new Date(dayTime(daysAgo)).toISOString();
  const day = at.slice(0, 10);
  const h = openDb(testEnv);
  const query = (q: ReturnType<typeof sql>) => h.db.execute(q);
  try {
    await seedRows(query, tenantId, at, day, tag);
  } finally {
    await h.close();
  }
}

async function seedRows(
  query: (q: ReturnType<typeof sql>) => Promise<unknown>,
  tenantId: string,
  at: string,
  day: string,
  tag: string,
) {
  await query(sql`insert into turns (id, tenant_id, conversation_id, user_id, at, day, turn_index, model,
      input_tokens, output_tokens, cost_usd, latency_ms, outcome, tools_used, channel)
    values (${crypto.randomUUID()}, ${tenantId}, ${`conv-${tag}`}, 'visitor', ${at}, ${day}, 0, 'mock', 1, 1, 0, 10, 'ok', '[]', 'web')`);
  await query(sql`insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at, ended_at,
      turn_count, resolved, escalated, total_tokens, total_cost_usd, avg_response_ms, tools_used, channel, error_count)
    values (${crypto.randomUUID()}, ${tenantId}, ${`conv-${tag}`}, 'visitor', ${day}, ${at}, ${at}, 1, true, false, 2, 0, 10, '[]', 'web', 0)`);
  await query(sql`insert into feedback (id, tenant_id, conversation_id, user_id, at, day, csat, comment)
    values (${crypto.randomUUID()}, ${tenantId}, ${`conv-${tag}`}, 'visitor', ${at}, ${day}, 5, 'great')`);
  await query(sql`insert into safety_events (id, tenant_id, conversation_id, user_id, at, day, direction, topic)
    values (${crypto.randomUUID()}, ${tenantId}, ${`conv-${tag}`}, 'visitor', ${at}, ${day}, 'input', 'weapons')`);
  await query(
    sql`insert into tenant_daily_users (tenant_id, day, user_id) values (${tenantId}, ${day}, 'visitor')`,
  );
  await query(sql`insert into tenant_daily (tenant_id, day, turns) values (${tenantId}, ${day}, 1)`);
  await query(sql`insert into notifications (id, tenant_id, kind, channel, recipient, subject, body, status, created_at)
    values (${crypto.randomUUID()}, ${tenantId}, 'escalation', 'email', 'desk@shop.example', 's', 'transcript', 'sent', ${at})`);
  await query(sql`insert into dead_letters (message_id, queue, reason, error, body, tenant_id, attempts, created_at)
    values (${`m-${tenantId}-${tag}`}, 'q', 'invalid', 'e', '{}', ${tenantId}, 1, ${at})`);
  await query(sql`insert into audit_log (tenant_id, actor, action, target, request_id, created_at)
    values (${tenantId}, 'admin', 'tenant.update', ${tenantId}, 'req', ${at})`);
  await query(sql`insert into knowledge_unanswered (tenant_id, question, normalized, at)
    values (${tenantId}, 'do you ship to mars?', 'do you ship to mars', ${at})`);
}

const TABLES = [
  "turns",
  "conversations",
  "feedback",
  "safety_events",
  "tenant_daily_users",
  "notifications",
  "dead_letters",
  "audit_log",
  "knowledge_unanswered",
  "tenant_daily",
] as const;

/** Rows per table of a tenant. */
async function counts(tenantId: string): Promise<Record<string, number>> {
  const parts = TABLES.map(
    (t) => sql`select ${t} as t, count(*)::int as n from ${sql.raw(t)} where tenant_id = ${tenantId}`,
  );
  const rows = await query<{ t: string; n: number }>(sql.join(parts, sql` union all `));
  return Object.fromEntries(rows.map((r) => [r.t, r.n]));
}

/** The counts with `n` fewer rows in every per-event table; the rollup (tenant_daily) as it was. */
const minus = (c: Record<string, number>, n: number) =>
  Object.fromEntries(Object.entries(c).map(([t, v]) => [t, t === "tenant_daily" ? v : v - n]));

describe("retention in Postgres", () => {
  it("deletes per-event rows past each tenant's window in bounded batches and keeps the rollups", async () => {
    const short = await chatTenant({ retention_days: 30 });
    const long = await chatTenant();
    for (const t of [short.id, long.id]) {
      await seed(t, 40, "old-a");
      await seed(t, 35, "old-b");
      await seed(t, 5, "new");
    }
    const before = { short: await counts(short.id), long: await counts(long.id) };

    const h = openDb(testEnv);
    try {
      // Two rows per statement, at most one statement per table: a run leaves work for the next.
      const first = await sweepRetention(h.db, testEnv, Date.now(), { batch: 1, maxBatches: 1 });
      expect(first.unfinished).toContain("turns");
      expect(first.deleted.turns).toBe(1);
      let runs = 1;
      for (; runs < 20; runs++) {
        const r = await sweepRetention(h.db, testEnv, Date.now(), { batch: 1, maxBatches: 1 });
        if (r.unfinished.length === 0) break;
      }
      expect(runs).toBeLessThan(20);
    } finally {
      await h.close();
    }
    // The 30-day tenant loses its two old rows of every per-event table; the rollups keep all days.
    expect(await counts(short.id)).toEqual(minus(before.short, 2));
    // The default (365 days) keeps everything.
    expect(await counts(long.id)).toEqual(before.long);
  });

  it("runs from the cron trigger at the scheduled time", async () => {
    const t = await chatTenant({ retention_days: 7 });
    await seed(t.id, 9, "old");
    await seed(t.id, 2, "new");
    const before = await counts(t.id);
    // Erasure tombstones: one past TOMBSTONE_DAYS (14), one fresh.
    const [old, fresh] = [`old-${t.id}`, `fresh-${t.id}`];
    await query(sql`insert into erasures (subject_hash, tenant_id, erased_at)
      values (${old}, ${t.id}, ${new Date(dayTime(15)).toISOString()}), (${fresh}, ${t.id}, now())`);
    const ctx = createExecutionContext();
    const controller = createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" });
    await worker.scheduled(controller, env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await counts(t.id)).toEqual(minus(before, 1));
    const left = await query<{ subject_hash: string }>(
      sql`select subject_hash from erasures where tenant_id = ${t.id}`,
    );
    expect(left.map((r) => r.subject_hash)).toEqual([fresh]);
  });

  it("caps a tenant's retention at the platform maximum", () => {
    expect(retentionDaysOf({ RETENTION_DAYS_DEFAULT: 365, RETENTION_DAYS_MAX: 730 }, null)).toBe(365);
    expect(retentionDaysOf({ RETENTION_DAYS_DEFAULT: 365, RETENTION_DAYS_MAX: 730 }, 30)).toBe(30);
    expect(retentionDaysOf({ RETENTION_DAYS_DEFAULT: 365, RETENTION_DAYS_MAX: 730 }, 3650)).toBe(730);
    expect(retentionDaysOf({ RETENTION_DAYS_DEFAULT: 900, RETENTION_DAYS_MAX: 730 }, null)).toBe(730);
  });

  it("refuses a retention outside 1-3650 days and changes nothing", async () => {
    const t = await chatTenant({ retention_days: 30 });
    for (const bad of [0, -1, 3651, 1.5, "30"]) {
      const res = await admin("PATCH", `/tenants/${t.id}`, { retention_days: bad });
      expect(res.status).toBe(400);
    }
    const [row] = await query<{ retention_days: number }>(
      sql`select retention_days from tenants where id = ${t.id}`,
    );
    expect(row?.retention_days).toBe(30);
  });
});

type Stub = DurableObjectStub<Conversation>;

async function tables(stub: Stub): Promise<string[]> {
  return runInDurableObject(stub, (_o, state) =>
    state.storage.sql
      .exec<{ name: string }>(
        "select name from sqlite_master where type = 'table' and name not like '\\_%' escape '\\'",
      )
      .toArray()
      .map((r) => r.name),
  );
}

describe("retention of transcripts in Durable Objects", () => {
  it("deletes an ended conversation's storage by alarm once its last activity is older than the retention", async () => {
    const { id, key } = await chatTenant({ retention_days: 2 });
    const conv = ((await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string }).id;
    await send("POST", `/v1/conversations/${conv}/messages`, key, { content: "my order is late" });
    const stub = env.CONVERSATION.getByName(`${id}:${conv}`) as Stub;
    const last = await runInDurableObject(stub, (o: Conversation) => {
      o.clock.set(Date.now());
      return o.clock.now();
    });
    expect((await send("POST", `/v1/conversations/${conv}/end`, key, { resolved: true })).status).toBe(200);
    const alarm = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThanOrEqual(last + 2 * DAY_MS - 60_000);

    // Early (a day later): the alarm re-arms and the transcript stays.
    await runInDurableObject(stub, (o: Conversation) => o.clock.advance(DAY_MS));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await tables(stub)).toEqual(expect.arrayContaining(["meta", "messages"]));
    expect((await send("GET", `/v1/conversations/${conv}`, key)).status).toBe(200);

    // Past the retention: everything the object stored is gone, and no alarm is left.
    await runInDurableObject(stub, (o: Conversation) => o.clock.advance(DAY_MS + 1));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await tables(stub)).toEqual([]);
    expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBeNull();
    expect((await send("GET", `/v1/conversations/${conv}`, key)).status).toBe(404);
  });

  it("expires a conversation the sweep deletes when its tenant shortened the retention", async () => {
    const { id, key } = await chatTenant({ retention_days: 365 });
    const conv = ((await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string }).id;
    const stub = env.CONVERSATION.getByName(`${id}:${conv}`) as Stub;
    // Its last activity was 40 days ago.
    await runInDurableObject(stub, (o: Conversation) => o.clock.set(dayTime(40)));
    await send("POST", `/v1/conversations/${conv}/messages`, key, { content: "hello there" });
    await send("POST", `/v1/conversations/${conv}/end`, key, { resolved: true });
    // The summary row, dated with the conversation (the consumer's own copy, if it came, is replaced).
    const at = new Date(dayTime(40)).toISOString();
    await query(sql`delete from conversations where tenant_id = ${id} and conversation_id = ${conv}`);
    await query(sql`insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at, ended_at,
        turn_count, resolved, escalated, total_tokens, total_cost_usd, avg_response_ms, tools_used, channel, error_count)
      values (${crypto.randomUUID()}, ${id}, ${conv}, 'visitor', ${at.slice(0, 10)}, ${at}, ${at}, 1, true, false, 2, 0, 10, '[]', 'web', 0)`);
    expect((await admin("PATCH", `/tenants/${id}`, { retention_days: 30 })).status).toBe(200);

    const h = openDb(testEnv);
    try {
      const r = await sweepRetention(h.db, { ...testEnv }, Date.now());
      expect(r.transcripts).toBeGreaterThanOrEqual(1);
    } finally {
      await h.close();
    }
    expect(await tables(stub)).toEqual([]);
    expect((await send("GET", `/v1/conversations/${conv}`, key)).status).toBe(404);
  });
});
