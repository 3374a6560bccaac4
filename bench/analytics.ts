/**
 * Analytics benchmarks, as a module for bench/run.ts (`run()` returns rows) or on its own:
 *   node bench/analytics.ts [--quick]
 * - ingestion: events per second through the real consumer (consumeAnalyticsBatch: validation,
 *   tombstone check, one statement per table, idempotency, rollups) in 100-message batches, beside
 *   plain multi-row INSERTs of the same rows into copies of the same tables, interleaved in one run.
 *   The main baseline's copies of `turns` and `conversations` are partitioned like production's
 *   (same column, same partitions), so both sides pay partition routing. Until 2026-12-06 the
 *   baseline was `like ... including all` copies, which are unpartitioned; it is still reported
 *   (second row) to compare with earlier runs, as is the JSON-parameter insert (third row). The
 *   workload (local/analytics-workload.ts) holds turns, summaries, feedback and safety events only:
 *   no inbox events (in production roughly one or two per turn) and no refusals;
 * - the dashboard at 1M turns / 100k conversations for one tenant (seeded once into
 *   chatedge_bench): the query alone, the same figures computed from raw tables (the reference
 *   design's way), and the whole HTTP route through the worker under Miniflare.
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { workload } from "../local/analytics-workload.ts";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { seedAnalytics, seededCounts } from "../local/seed-analytics.ts";
import { consumeAnalyticsBatch, type QueueMessage } from "../src/analytics/consumer.ts";
import { readDashboard } from "../src/analytics/dashboard.ts";
import type { AnalyticsEvent } from "../src/analytics/events.ts";
import { conversationRow, feedbackRow, safetyRow, turnRow } from "../src/analytics/ingest.ts";
import { utcDay } from "../src/analytics/rollups.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import { conversations, feedback, safetyEvents, turns } from "../src/db/schema.ts";
import { PARTITIONED, type PartitionedTable } from "../src/privacy/partitions.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import type { Bench, BenchRow } from "./types.ts";

export interface AnalyticsBenchOptions {
  /** The server; databases chatedge_bench and chatedge_bench_ingest are made there. */
  postgresUrl: string;
  ingestConversations: number;
  ingestTurns: number;
  seedTurns: number;
  seedConversations: number;
  iterations: number;
  worker: boolean;
  log: (line: string) => void;
}

const DEFAULTS: AnalyticsBenchOptions = {
  postgresUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432",
  ingestConversations: 2_000,
  ingestTurns: 20_000,
  seedTurns: 1_000_000,
  seedConversations: 100_000,
  iterations: 100,
  worker: true,
  log: () => {},
};

const TENANT = "bench";
const BATCH = 100;

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((q / 100) * s.length) - 1)] ?? Number.NaN;
};

function connect(url: string, searchPath?: string) {
  const pool = new pg.Pool({
    connectionString: url,
    max: 1,
    options: searchPath ? `-c search_path=${searchPath}` : undefined,
  });
  pool.on("error", () => {});
  return { pool, db: drizzle({ client: pool }) };
}

/** Queue messages that acknowledge into the void, counting retries (there must be none). */
function asMessages(events: AnalyticsEvent[], counter: { retried: number }): QueueMessage[] {
  return events.map((body, i) => ({
    id: `bench-${i}`,
    body,
    attempts: 1,
    ack() {},
    retry() {
      counter.retried += 1;
    },
  }));
}

type PlainDb = ReturnType<typeof connect>["db"];

/**
 * Copies the raw tables into `schema` with their columns, keys and indexes; with `parted`, turns and
 * conversations are partitioned on the same column with the same partitions as the originals.
 */
async function copyTables(db: PlainDb, schema: string, parted: boolean) {
  await db.execute(sql`create schema ${sql.identifier(schema)}`);
  for (const table of ["turns", "conversations", "feedback", "safety_events"]) {
    const copy = sql`${sql.identifier(schema)}.${sql.identifier(table)}`;
    const column = PARTITIONED[table as PartitionedTable];
    const by = parted && column ? sql` partition by range (${sql.identifier(column)})` : sql``;
    await db.execute(sql`create table ${copy} (like ${sql.identifier(table)} including all)${by}`);
  }
  if (!parted) return;
  // Partitions take no parameters: the block reads the originals' bounds from the catalog itself.
  await db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('bench.copy_schema', ${schema}, true)`);
    await tx.execute(sql`
    do $$
    declare p record;
    begin
      for p in
        select c.relname as name, i.inhparent::regclass::text as parent,
          pg_get_expr(c.relpartbound, c.oid) as bound
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent in ('public.turns'::regclass, 'public.conversations'::regclass)
      loop
        execute format('create table %I.%I partition of %I.%I %s', current_setting('bench.copy_schema'),
          p.name, current_setting('bench.copy_schema'), p.parent, p.bound);
      end loop;
    end $$`);
  });
}

/** The baseline: the same rows as plain multi-row INSERTs, one per table, in one transaction. */
async function plainInsert(db: PlainDb, events: AnalyticsEvent[]) {
  const t = events.filter((e) => e.type === "turn");
  const c = events.filter((e) => e.type === "conversation");
  const f = events.filter((e) => e.type === "feedback");
  const s = events.filter((e) => e.type === "safety");
  await db.transaction(async (tx) => {
    if (t.length)
      await tx.insert(turns).values(t.map((e) => ({ ...e, at: new Date(e.at), day: utcDay(e.at) })));
    if (c.length)
      await tx.insert(conversations).values(
        c.map((e) => ({
          ...e,
          day: utcDay(e.startedAt),
          startedAt: new Date(e.startedAt),
          endedAt: new Date(e.endedAt),
          summaryCsat: e.csat,
        })),
      );
    if (f.length)
      await tx.insert(feedback).values(f.map((e) => ({ ...e, at: new Date(e.at), day: utcDay(e.at) })));
    if (s.length)
      await tx.insert(safetyEvents).values(s.map((e) => ({ ...e, at: new Date(e.at), day: utcDay(e.at) })));
  });
}

/**
 * A second baseline: the consumer's own statement shape (rows as one JSON parameter) without its
 * semantics (no ON CONFLICT, no RETURNING, no rollups, no validation): what those cost.
 */
async function plainJsonInsert(db: PlainDb, events: AnalyticsEvent[]) {
  const receivedAt = new Date().toISOString();
  const json = (rows: object[]) => JSON.stringify(rows.map((r) => ({ ...r, received_at: receivedAt })));
  const t = events.filter((e) => e.type === "turn").map(turnRow);
  const c = events.filter((e) => e.type === "conversation").map(conversationRow);
  const f = events.filter((e) => e.type === "feedback").map(feedbackRow);
  const s = events.filter((e) => e.type === "safety").map(safetyRow);
  await db.transaction(async (tx) => {
    if (t.length)
      await tx.execute(
        sql`insert into turns select * from jsonb_populate_recordset(null::turns, ${json(t)}::jsonb)`,
      );
    if (c.length)
      await tx.execute(
        sql`insert into conversations select * from jsonb_populate_recordset(null::conversations, ${json(c)}::jsonb)`,
      );
    if (f.length)
      await tx.execute(
        sql`insert into feedback select * from jsonb_populate_recordset(null::feedback, ${json(f)}::jsonb)`,
      );
    if (s.length)
      await tx.execute(
        sql`insert into safety_events select * from jsonb_populate_recordset(null::safety_events, ${json(s)}::jsonb)`,
      );
  });
}

/** Ingestion through the consumer vs plain inserts of the same rows, into a fresh database. */
async function benchIngest(o: AnalyticsBenchOptions): Promise<BenchRow[]> {
  const url = `${o.postgresUrl}/chatedge_bench_ingest`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  const consumer = connect(url);
  const plain = connect(url, "bench_plain");
  const parted = connect(url, "bench_parted");
  const plainJson = connect(url, "bench_json");
  try {
    // Copies of the raw tables (same columns, keys and indexes) for each baseline. `like ... including
    // all` of a partitioned table makes a plain one: bench_plain and bench_json keep those (the
    // baseline before partitions), bench_parted partitions turns and conversations as production does.
    for (const schema of ["bench_plain", "bench_parted", "bench_json"]) {
      await copyTables(consumer.db, schema, schema === "bench_parted");
    }
    const events = [
      ...workload({
        tenantId: "bench-ingest",
        conversations: o.ingestConversations,
        turns: o.ingestTurns,
        users: Math.ceil(o.ingestConversations / 4),
        days: 30,
        now: Date.now(),
        seed: 2,
      }),
    ].flat();
    const batches: AnalyticsEvent[][] = [];
    for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
    const counter = { retried: 0 };
    const db = consumer.db as unknown as AnalyticsDb;
    const ms = { consumer: 0, plain: 0, parted: 0, json: 0 };
    const sides: [keyof typeof ms, (b: AnalyticsEvent[]) => Promise<unknown>][] = [
      ["consumer", (b) => consumeAnalyticsBatch(asMessages(b, counter), db, { queue: "bench" })],
      ["plain", (b) => plainInsert(plain.db, b)],
      ["parted", (b) => plainInsert(parted.db, b)],
      ["json", (b) => plainJsonInsert(plainJson.db, b)],
    ];
    const rounds = 6;
    for (let r = 0; r < rounds; r++) {
      const slice = batches.slice(
        Math.floor((r * batches.length) / rounds),
        Math.floor(((r + 1) * batches.length) / rounds),
      );
      // Rotate who goes first, so no side always meets the warmest cache.
      for (let k = 0; k < sides.length; k++) {
        const [side, write] = sides[(r + k) % sides.length] as (typeof sides)[number];
        const t0 = performance.now();
        for (const b of slice) await write(b);
        ms[side] += performance.now() - t0;
      }
    }
    const t0 = performance.now();
    for (const b of batches) await consumeAnalyticsBatch(asMessages(b, counter), db, { queue: "bench" });
    const redeliveryMs = performance.now() - t0;
    if (counter.retried > 0) throw new Error(`${counter.retried} messages were retried during the bench`);
    const landed = await seededCounts(db, "bench-ingest");
    if (landed.turns !== o.ingestTurns)
      throw new Error(`ingested ${landed.turns} turns, expected ${o.ingestTurns}`);
    const eps = (t: number) => events.length / (t / 1000);
    o.log(`ingest: ${events.length} events in ${batches.length} batches of ${BATCH}`);
    return [
      {
        name: "analytics ingest",
        metric: `events/s: consumer vs plain multi-row INSERT ... VALUES into partitioned copies (${events.length} events, batches of ${BATCH})`,
        value: eps(ms.consumer),
        baseline: eps(ms.parted),
        ratio: ms.parted / ms.consumer,
      },
      {
        name: "analytics ingest",
        metric:
          "events/s: consumer vs the same plain INSERT into unpartitioned copies (the baseline before 0023)",
        value: eps(ms.consumer),
        baseline: eps(ms.plain),
        ratio: ms.plain / ms.consumer,
      },
      {
        name: "analytics ingest",
        metric: "events/s: consumer vs the same JSON-parameter INSERT without conflict handling or rollups",
        value: eps(ms.consumer),
        baseline: eps(ms.json),
        ratio: ms.json / ms.consumer,
      },
      {
        name: "analytics ingest redelivery",
        metric:
          "events/s: every batch delivered again (all duplicates, nothing written) vs plain VALUES, partitioned",
        value: eps(redeliveryMs),
        baseline: eps(ms.parted),
        ratio: ms.parted / redeliveryMs,
      },
    ];
  } finally {
    await consumer.pool.end();
    await plain.pool.end();
    await parted.pool.end();
    await plainJson.pool.end();
  }
}

/** The totals computed from raw rows, as the reference design did (exact percentiles). */
async function rawTotals(db: PlainDb, tenant: string, from: string, to: string) {
  return db.execute(sql`
    with c as (
      select count(*) as conversations, avg(turn_count) as avg_turns,
        avg(resolved::int) * 100 as resolution, avg(escalated::int) * 100 as escalation, avg(csat) as csat,
        sum(total_cost_usd) / nullif(count(*), 0) as cost_per_conversation
      from conversations where tenant_id = ${tenant} and day between ${from}::date and ${to}::date
    ),
    t as (
      select count(*) as turns, sum(input_tokens + output_tokens) as tokens, sum(cost_usd) as cost,
        avg(latency_ms) filter (where outcome in ('ok', 'error')) as avg_latency,
        percentile_disc(0.5) within group (order by latency_ms) filter (where outcome in ('ok', 'error')) as p50,
        percentile_disc(0.99) within group (order by latency_ms) filter (where outcome in ('ok', 'error')) as p99,
        count(*) filter (where outcome = 'error') as errors, count(distinct (day, user_id)) as user_days
      from turns where tenant_id = ${tenant} and day between ${from}::date and ${to}::date
    ),
    s as (select count(*) as safety from safety_events where tenant_id = ${tenant} and day between ${from}::date and ${to}::date)
    select * from c, t, s`);
}

async function timeIt(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

/** The dashboard at the seeded size: query, raw baseline, and the route through the worker. */
async function benchDashboard(o: AnalyticsBenchOptions): Promise<BenchRow[]> {
  const url = `${o.postgresUrl}/chatedge_bench`;
  const conn = connect(url);
  const rows: BenchRow[] = [];
  try {
    await migrateDatabase(url).catch(() => {});
    const have = await seededCounts(conn.db as unknown as AnalyticsDb, TENANT).catch(() => ({
      turns: 0,
      conversations: 0,
    }));
    if (have.turns !== o.seedTurns || have.conversations !== o.seedConversations) {
      o.log(
        `seeding ${TENANT}: ${o.seedTurns} turns, ${o.seedConversations} conversations (once; reused by later runs)`,
      );
      await seedAnalytics({
        databaseUrl: url,
        tenant: TENANT,
        turns: o.seedTurns,
        conversations: o.seedConversations,
        days: 90,
        users: 20_000,
        seed: 1,
        fresh: true,
        log: o.log,
      });
    }
    const db = conn.db as unknown as AnalyticsDb;
    const size = `${o.seedTurns / 1000}k turns / ${o.seedConversations / 1000}k conversations`;
    for (const days of [30, 365]) {
      const w = await readDashboard(db, TENANT, days);
      if (!w) throw new Error(`tenant ${TENANT} missing`);
      await timeIt(5, () => readDashboard(db, TENANT, days));
      const q = await timeIt(o.iterations, () => readDashboard(db, TENANT, days));
      const raw = await timeIt(days === 365 ? 5 : 3, () => rawTotals(conn.db, TENANT, w.from, w.to));
      o.log(
        `dashboard days=${days}: ${w.totals.total_turns} turns, ${w.totals.total_conversations} conversations`,
      );
      rows.push(
        {
          name: `analytics dashboard query days=${days}`,
          metric: `p50 ms at ${size}, rollups vs totals from raw rows`,
          value: pct(q, 50),
          baseline: pct(raw, 50),
          ratio: pct(raw, 50) / pct(q, 50),
        },
        {
          name: `analytics dashboard query days=${days}`,
          metric: "p99 ms",
          value: pct(q, 99),
          baseline: null,
          ratio: null,
        },
      );
    }
  } finally {
    await conn.pool.end();
  }
  if (!o.worker) return rows;
  const worker = await startBenchWorker(url);
  try {
    for (const days of [30, 365]) {
      const get = async () => {
        const res = await fetch(`${worker.url}/admin/tenants/${TENANT}/analytics/dashboard?days=${days}`, {
          headers: { authorization: `Bearer ${worker.adminToken}` },
        });
        if (res.status !== 200) throw new Error(`dashboard answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      };
      await timeIt(5, get);
      const t = await timeIt(o.iterations, get);
      const name = `analytics dashboard HTTP days=${days}`;
      const how = "through the worker (Miniflare, relay, Neon driver, a new connection per request)";
      rows.push(
        { name, metric: `p50 ms ${how}`, value: pct(t, 50), baseline: null, ratio: null },
        { name, metric: "p99 ms", value: pct(t, 99), baseline: null, ratio: null },
      );
    }
  } finally {
    await worker.stop();
  }
  return rows;
}

/** Runs every analytics benchmark and returns its rows. */
export async function run(opts: Partial<AnalyticsBenchOptions> = {}): Promise<BenchRow[]> {
  const o = { ...DEFAULTS, ...opts };
  return [...(await benchIngest(o)), ...(await benchDashboard(o))];
}

/** The analytics benchmark for bench/run.ts. */
export const analyticsBench: Bench = {
  name: "analytics",
  async run(log) {
    const rows = await run({ log });
    return {
      rows,
      notes: {
        ingest: `${DEFAULTS.ingestConversations} conversations, ${DEFAULTS.ingestTurns} turns, fresh database chatedge_bench_ingest`,
        dashboard: `${DEFAULTS.seedTurns} turns, ${DEFAULTS.seedConversations} conversations over 90 days, tenant ${TENANT} in chatedge_bench`,
        iterations: DEFAULTS.iterations,
      },
    };
  },
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, "no-worker": { type: "boolean" } },
  });
  const rows = await run({
    log: (l) => console.error(l),
    worker: !values["no-worker"],
    ...(values.quick ? { ingestConversations: 500, ingestTurns: 5_000, iterations: 30 } : {}),
  });
  const fmt = (n: number | null) => (n === null ? "-" : n >= 100 ? n.toFixed(0) : n.toFixed(2));
  console.log("name | metric | value | baseline | ratio");
  for (const r of rows)
    console.log(`${r.name} | ${r.metric} | ${fmt(r.value)} | ${fmt(r.baseline)} | ${fmt(r.ratio)}`);
}
