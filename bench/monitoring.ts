/**
 * Monitoring at scale, as a module for bench/run.ts or on its own: `node bench/monitoring.ts`.
 * 1,000 tenants with 8 days of hourly rollups (and 15 of daily users) are seeded into a fresh
 * database, chatedge_bench_monitoring; then, through the same code the worker runs (node-postgres
 * under drizzle in place of the Neon driver):
 * - a whole Prometheus scrape (`renderMetrics`: every tenant's nine windows, the platform, counters,
 *   alerts, queue lag), beside the floor of any scrape: reading the counters alone;
 * - one alert evaluation of every tenant (`evaluateAlerts`, no notifications queue);
 * - one tenant's monitoring JSON, beside that tenant's 7-day dashboard (the query an operator
 *   already waits for).
 */
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { insertTenants } from "../local/seed-tenants.ts";
import { readDashboard } from "../src/analytics/dashboard.ts";
import { HISTOGRAM_BOUNDS_SECONDS } from "../src/analytics/latency.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import { evaluateAlerts } from "../src/monitoring/evaluate.ts";
import { renderMetrics } from "../src/monitoring/prometheus.ts";
import { tenantMonitoring } from "../src/monitoring/service.ts";
import { pct, round } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const TENANTS = 1_000;
const HOURS = 8 * 24;
const DAYS = 15;
// The bench times evaluation, not delivery: the notices it produces are dropped.
const dropNotices = { sendBatch: async () => {} };

async function seed(pool: pg.Pool, db: AnalyticsDb, now: number): Promise<void> {
  const hour = new Date(Math.floor(now / 3_600_000) * 3_600_000).toISOString();
  const today = new Date(now).toISOString().slice(0, 10);
  await insertTenants(
    pool,
    Array.from({ length: TENANTS }, (_, i) => ({
      id: `bench-${String(i + 1).padStart(4, "0")}`,
      name: `Bench ${i + 1}`,
      systemPrompt: "You help.",
      escalationEmail: "ops@bench.example",
    })),
  );
  // Every tenant answers 20..80 turns an hour (latencies 1 to 3.5 s), some fail, now and then a violation.
  await db.execute(sql`
    insert into tenant_hourly (tenant_id, hour, turns, answered, errors, blocked, input_tokens, output_tokens,
      cost_usd, latency_sum_ms, conversations, resolved, escalated, csat_sum, csat_count,
      conversation_cost_usd, safety_events, refused_user, refused_tenant)
    select t.id, ${hour}::timestamptz - h * interval '1 hour', n, n, n / 25, 1, n * 300, n * 120,
      n * 0.0004, n * (800 + random() * 4000), n / 4, n / 5, n / 30, (n / 6) * 4, n / 6, (n / 4) * 0.02,
      (random() * 3)::int, (random() * 5)::int, (random() * 2)::int
    from tenants t, generate_series(0, ${HOURS - 1}) h, lateral (select 20 + (random() * 60)::int as n) x`);
  await db.execute(sql`
    insert into tenant_latency_hourly (tenant_id, hour, bucket, count)
    select t.id, ${hour}::timestamptz - h * interval '1 hour', 190 + b * 7, 1 + (random() * 9)::int
    from tenants t, generate_series(0, ${HOURS - 1}) h, generate_series(0, 7) b`);
  await db.execute(sql`
    insert into tenant_daily (tenant_id, day, turns, answered, active_users)
    select t.id, ${today}::date - d, 1000, 1000, 50 + (random() * 50)::int
    from tenants t, generate_series(0, ${DAYS - 1}) d`);
  await db.execute(sql`
    insert into tenant_totals (tenant_id, turns, answered, errors, input_tokens, output_tokens, cost_usd,
      latency_sum_ms, conversations, resolved)
    select tenant_id, sum(turns), sum(answered), sum(errors), sum(input_tokens), sum(output_tokens),
      sum(cost_usd), sum(latency_sum_ms), sum(conversations), sum(resolved)
    from tenant_hourly group by tenant_id`);
  // Every Prometheus bucket of every tenant holds turns (16 rows a tenant).
  await db.execute(sql`
    insert into tenant_latency_totals (tenant_id, le, count)
    select t.id, le, 1 + (random() * 1000)::int
    from tenants t, unnest(${`{${[...HISTOGRAM_BOUNDS_SECONDS, "Infinity"].join(",")}}`}::float8[]) le`);
  await db.execute(sql`analyze`);
}

async function timed(runs: number, f: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return ms;
}

export async function run(log: (m: string) => void = () => {}): Promise<BenchRow[]> {
  const url = `${process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432"}/chatedge_bench_monitoring`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => {});
  const db = drizzle({ client: pool }) as unknown as AnalyticsDb;
  try {
    const now = Date.now();
    log(`seeding ${TENANTS} tenants x ${HOURS} hours`);
    await seed(pool, db, now);
    const scrapeBytes = (await renderMetrics(db, now)).length;
    // Interleaved, so both sides see the same machine.
    const scrape: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < 10; i++) {
      scrape.push(...(await timed(1, () => renderMetrics(db, now))));
      floor.push(
        ...(await timed(1, async () => db.execute(sql`select * from tenant_totals order by tenant_id`))),
      );
    }
    const evaluation = await timed(5, () => evaluateAlerts({ NOTIFY_QUEUE: dropNotices }, db, now));
    const one: number[] = [];
    const dash: number[] = [];
    for (let i = 0; i < 30; i++) {
      one.push(...(await timed(1, () => tenantMonitoring(db, "bench-0001", now))));
      dash.push(...(await timed(1, () => readDashboard(db, "bench-0001", 7, now))));
    }
    const fired = await db.execute(sql`select count(*)::int as n from alerts where state = 'firing'`);
    log(`scrape ${Math.round(scrapeBytes / 1024)} KiB; ${fired.rows[0]?.n} alerts firing after evaluation`);
    const row = (name: string, metric: string, v: number[], b: number[] | null): BenchRow => {
      const value = round(pct(v, 0.5), 1);
      const baseline = b ? round(pct(b, 0.5), 1) : null;
      return { name, metric, value, baseline, ratio: baseline === null ? null : round(baseline / value, 3) };
    };
    return [
      row(
        "monitoring scrape",
        `p50 ms, /admin/metrics body for ${TENANTS} tenants (${Math.round(scrapeBytes / 1024)} KiB) vs reading the counters alone`,
        scrape,
        floor,
      ),
      row(
        "monitoring evaluation",
        `p50 ms, every rule of ${TENANTS} tenants evaluated once`,
        evaluation,
        null,
      ),
      row(
        "monitoring tenant JSON",
        "p50 ms, one tenant's monitoring (9 windows, volume, alerts) vs its 7-day dashboard query",
        one,
        dash,
      ),
    ];
  } finally {
    await pool.end();
  }
}

export const monitoringBench: Bench = {
  name: "monitoring",
  async run(log) {
    return { rows: await run(log), notes: { tenants: TENANTS, hours: HOURS, days: DAYS } };
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await run((m) => console.error(m));
  console.table(rows);
}
