/**
 * Retention at scale (issue 19), as a module for bench/run.ts or on its own:
 *   node bench/privacy.ts [--turns 1000000] [--flat]
 * - 1M turns (and a tenth as many conversations) over 26 months for 20 tenants, seeded with
 *   generate_series into the monthly partitions (drizzle/0023); each tenant keeps 180 days;
 * - the retention purge: sweepRetention run as the cron runs it (bounded batches, whole months
 *   past RETENTION_DAYS_MAX dropped) until nothing is left to delete: total time and runs;
 * - analytics ingestion through the real consumer (consumeAnalyticsBatch, 100-event batches) while
 *   the purge runs, against ingestion alone in the same run (before and after the purge);
 * - with --flat (FLAT=1 under run.ts), the same purge of the same rows in unpartitioned copies,
 *   also while ingesting (run after the partitioned one).
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { workload } from "../local/analytics-workload.ts";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { consumeAnalyticsBatch, type QueueMessage } from "../src/analytics/consumer.ts";
import type { AnalyticsEvent } from "../src/analytics/events.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import type { Db } from "../src/db/client.ts";
import { createPartition, monthPartition, partitionsOf } from "../src/privacy/partitions.ts";
import { DAY_MS, type RetentionReport, sweepRetention } from "../src/privacy/retention.ts";
import { pct, round } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

export interface PrivacyBenchOptions {
  postgresUrl: string;
  turns: number;
  tenants: number;
  /** Also purge unpartitioned copies of the same rows (doubles the seeding). */
  flat: boolean;
  log: (line: string) => void;
}

const DEFAULTS: PrivacyBenchOptions = {
  postgresUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432",
  turns: 1_000_000,
  tenants: 20,
  flat: false,
  log: () => {},
};

const SPAN_DAYS = 790; // 26 months: the oldest two lie past RETENTION_DAYS_MAX (730)
const RETENTION_DAYS = 180;
const ENV = { RETENTION_DAYS_DEFAULT: 365, RETENTION_DAYS_MAX: 730 };
const BATCH = 100;

function connect(url: string, searchPath?: string) {
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    options: searchPath ? `-c search_path=${searchPath}` : undefined,
  });
  pool.on("error", () => {});
  return { pool, db: drizzle({ client: pool }) };
}
type Conn = ReturnType<typeof connect>;

/** `n` turns and n/10 conversations of `tenants` tenants, evenly over SPAN_DAYS back from now. */
async function seed(c: Conn, n: number, tenants: number): Promise<void> {
  await c.db.execute(sql`insert into turns (id, tenant_id, conversation_id, user_id, at, day, turn_index,
      model, input_tokens, output_tokens, cost_usd, latency_ms, outcome, tools_used, channel)
    select gen_random_uuid(), 'bench-' || (g % ${tenants}), 'c' || (g / 10), 'visitor:' || (g % 50000), at,
      (at at time zone 'UTC')::date, g % 10, 'gpt-4o-mini', 120, 60, 0.0001, 300, 'ok', '[]', 'web'
    from generate_series(0, ${n - 1}) g,
      lateral (select now() - (g::double precision / ${n}) * interval '${sql.raw(String(SPAN_DAYS))} days' as at) t`);
  const m = Math.floor(n / 10);
  await c.db.execute(sql`insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at,
      ended_at, turn_count, resolved, escalated, total_tokens, total_cost_usd, avg_response_ms, tools_used,
      channel, error_count)
    select gen_random_uuid(), 'bench-' || (g % ${tenants}), 'c' || g, 'visitor:' || (g % 50000),
      (s at time zone 'UTC')::date, s, s + interval '5 minutes', 10, true, false, 1800, 0.001, 300, '[]', 'web', 0
    from generate_series(0, ${m - 1}) g,
      lateral (select now() - (g::double precision / ${m}) * interval '${sql.raw(String(SPAN_DAYS))} days' as s) t`);
  await c.db.execute(sql`analyze turns`);
  await c.db.execute(sql`analyze conversations`);
}

/** Runs the retention sweep as the cron does until a run finds nothing left; totals and the slowest run. */
async function purge(
  c: Conn,
  log: (line: string) => void,
): Promise<{ ms: number; runs: number; slowestMs: number; turns: number; dropped: number; lastNow: number }> {
  const db = c.db as unknown as Db;
  const out = { ms: 0, runs: 0, slowestMs: 0, turns: 0, dropped: 0, lastNow: 0 };
  const t0 = performance.now();
  for (;;) {
    const r0 = performance.now();
    out.lastNow = Date.now();
    const r: RetentionReport = await sweepRetention(db, ENV, out.lastNow);
    out.slowestMs = Math.max(out.slowestMs, performance.now() - r0);
    out.runs += 1;
    log(
      `sweep run ${out.runs}: ${r.deleted.turns} turns, ${r.partitions.dropped.length} partitions dropped, ${Math.round(performance.now() - r0)} ms`,
    );
    out.turns += r.deleted.turns;
    out.dropped += r.partitions.dropped.length;
    if (r.unfinished.length === 0) break;
  }
  out.ms = performance.now() - t0;
  return out;
}

/** Fresh analytics events without end: each round of the workload under a tenant of its own. */
function* events(): Generator<AnalyticsEvent[]> {
  const base = [
    ...workload({
      tenantId: "x",
      conversations: 500,
      turns: 5_000,
      users: 200,
      days: 7,
      now: Date.now(),
      seed: 3,
    }),
  ].flat();
  for (let round = 0; ; round++) {
    const tenantId = `ingest-${round}`;
    const fresh = base.map((e) => ({ ...e, tenantId, id: crypto.randomUUID() }));
    for (let i = 0; i < fresh.length; i += BATCH) yield fresh.slice(i, i + BATCH);
  }
}

function asMessages(batch: AnalyticsEvent[], counter: { retried: number }): QueueMessage[] {
  return batch.map((body, i) => ({
    id: `bench-${i}`,
    body,
    attempts: 1,
    ack() {},
    retry() {
      counter.retried += 1;
    },
  }));
}

/** Ingests batches until `until()` says stop (checked between batches); events/s and batch latencies. */
async function ingest(c: Conn, source: Generator<AnalyticsEvent[]>, until: () => boolean) {
  const db = c.db as unknown as AnalyticsDb;
  const counter = { retried: 0 };
  const lat: number[] = [];
  let n = 0;
  const t0 = performance.now();
  while (!until()) {
    const batch = source.next().value as AnalyticsEvent[];
    const b0 = performance.now();
    await consumeAnalyticsBatch(asMessages(batch, counter), db, { queue: "bench" });
    lat.push(performance.now() - b0);
    n += batch.length;
  }
  if (counter.retried > 0) throw new Error(`${counter.retried} events were retried`);
  return { eps: n / ((performance.now() - t0) / 1000), lat, n };
}

const forMs = (ms: number) => {
  const end = performance.now() + ms;
  return () => performance.now() >= end;
};

/** Partitions for every month the seed covers (a fresh database has them only from this month). */
async function partitionMonths(c: Conn) {
  const db = c.db as unknown as AnalyticsDb;
  for (const table of ["turns", "conversations"] as const) {
    const have = new Set((await partitionsOf(db, table)).months.map((p) => p.name));
    for (let t = Date.now() - SPAN_DAYS * DAY_MS - 31 * DAY_MS; t <= Date.now(); t += 28 * DAY_MS) {
      const p = monthPartition(table, t);
      if (!have.has(p.name)) {
        await createPartition(db, table, p);
        have.add(p.name);
      }
    }
  }
}

export async function runPrivacyBench(
  o: PrivacyBenchOptions,
): Promise<{ rows: BenchRow[]; notes: Record<string, unknown> }> {
  const url = `${o.postgresUrl}/chatedge_bench_privacy`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  const main = connect(url);
  const ingester = connect(url);
  const flat = connect(url, "bench_flat,public");
  try {
    const tenants = Array.from({ length: o.tenants }, (_, i) => `bench-${i}`);
    for (const id of tenants)
      await main.db.execute(sql`insert into tenants (id, name, system_prompt, retention_days)
        values (${id}, ${id}, 'bench', ${RETENTION_DAYS})`);
    await partitionMonths(main);
    let t0 = performance.now();
    await seed(main, o.turns, o.tenants);
    const seedMs = performance.now() - t0;
    o.log(`seeded ${o.turns} turns and ${o.turns / 10} conversations in ${Math.round(seedMs)} ms`);
    const [{ past }] = (
      await main.db.execute(sql`select count(*)::int as past from turns
        where at < now() - interval '${sql.raw(String(RETENTION_DAYS))} days'`)
    ).rows as [{ past: number }];

    if (o.flat) {
      await main.db.execute(sql`create schema bench_flat`);
      for (const table of ["turns", "conversations"])
        await main.db.execute(
          sql`create table ${sql.identifier("bench_flat")}.${sql.identifier(table)} (like public.${sql.identifier(table)} including all)`,
        );
      t0 = performance.now();
      await seed(flat, o.turns, o.tenants);
      o.log(`seeded the unpartitioned copies in ${Math.round(performance.now() - t0)} ms`);
    }

    // Ingestion alone (before), while each purge runs, alone again (after): the same consumer path.
    const source = events();
    await ingest(ingester, source, forMs(2_000)); // warm-up
    const before = await ingest(ingester, source, forMs(8_000));
    const whilePurging = async (c: Conn) => {
      let purging = true;
      const [done, during] = await Promise.all([
        purge(c, o.log).finally(() => {
          purging = false;
        }),
        ingest(ingester, source, () => !purging),
      ]);
      return { ...done, during };
    };
    const purged = await whilePurging(main);
    o.log(
      `purged ${purged.turns} turns row by row and ${purged.dropped} whole partitions in ${purged.runs} runs`,
    );
    const flatPurge = o.flat ? await whilePurging(flat) : undefined;
    const after = await ingest(ingester, source, forMs(8_000));
    // As of each purge's last run: rows keep ageing past the cutoff while the bench runs.
    for (const [c, p] of flatPurge
      ? [[main, purged] as const, [flat, flatPurge] as const]
      : [[main, purged] as const]) {
      const cutoff = new Date(p.lastNow - RETENTION_DAYS * DAY_MS).toISOString();
      const [{ left }] = (
        await c.db.execute(sql`select count(*)::int as left from turns
          where tenant_id like 'bench-%' and at < ${cutoff}`)
      ).rows as [{ left: number }];
      if (left !== 0) throw new Error(`${left} turns past retention left after the purge`);
    }
    const during = purged.during;
    const aloneEps = (before.eps + after.eps) / 2;
    const aloneLat = [...before.lat, ...after.lat];

    const rows: BenchRow[] = [
      {
        name: "retention purge",
        metric: `seconds until ${past} of ${o.turns} turns (and their conversations) past a 180-day retention are gone, cron runs back to back${flatPurge ? ": partitioned vs unpartitioned" : ""}`,
        value: purged.ms / 1000,
        baseline: flatPurge ? flatPurge.ms / 1000 : null,
        ratio: flatPurge ? flatPurge.ms / purged.ms : null,
      },
      {
        name: "retention purge",
        metric: "ms of the slowest single cron run of the sweep",
        value: purged.slowestMs,
        baseline: flatPurge ? flatPurge.slowestMs : null,
        ratio: flatPurge ? flatPurge.slowestMs / purged.slowestMs : null,
      },
      {
        name: "ingest during purge",
        metric: "events/s through the consumer while the purge runs vs alone (before and after)",
        value: during.eps,
        baseline: aloneEps,
        ratio: during.eps / aloneEps,
      },
      ...(flatPurge
        ? [
            {
              name: "ingest during purge",
              metric:
                "events/s through the consumer while the purge runs: partitioned vs unpartitioned tables",
              value: during.eps,
              baseline: flatPurge.during.eps,
              ratio: during.eps / flatPurge.during.eps,
            },
          ]
        : []),
      {
        name: "ingest during purge",
        metric: "p99 ms per 100-event batch while the purge runs vs alone",
        value: pct(during.lat, 0.99),
        baseline: pct(aloneLat, 0.99),
        ratio: pct(aloneLat, 0.99) / pct(during.lat, 0.99),
      },
    ];
    return {
      rows,
      notes: {
        seed_ms: Math.round(seedMs),
        past_retention: past,
        purge: {
          ...purged,
          during: undefined,
          ms: Math.round(purged.ms),
          slowestMs: Math.round(purged.slowestMs),
        },
        flat_purge: flatPurge && {
          ...flatPurge,
          during: { eps: round(flatPurge.during.eps, 0), p99_ms: round(pct(flatPurge.during.lat, 0.99), 0) },
          ms: Math.round(flatPurge.ms),
          slowestMs: Math.round(flatPurge.slowestMs),
        },
        ingest: {
          before: round(before.eps, 0),
          during: round(during.eps, 0),
          after: round(after.eps, 0),
          during_events: during.n,
          during_max_batch_ms: Math.round(Math.max(...during.lat)),
          alone_max_batch_ms: Math.round(Math.max(...aloneLat)),
        },
      },
    };
  } finally {
    await Promise.all([main.pool.end(), ingester.pool.end(), flat.pool.end()]);
  }
}

export const privacyBench: Bench = {
  name: "privacy",
  run: (log) => runPrivacyBench({ ...DEFAULTS, flat: process.env.FLAT === "1", log }),
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: { turns: { type: "string" }, flat: { type: "boolean" } },
  });
  const out = await runPrivacyBench({
    ...DEFAULTS,
    turns: values.turns ? Number(values.turns) : DEFAULTS.turns,
    flat: values.flat ?? false,
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify(out, null, 2));
}
