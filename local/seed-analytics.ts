/**
 * Seeds one tenant with a synthetic analytics history (local/analytics-workload.ts) through the
 * analytics consumer's own write path (src/analytics/ingest.ts): big multi-row inserts, one
 * statement per table per chunk, and the rollups written by the same SQL the consumer runs, so
 * the dashboard reads exactly what production would have built.
 *
 * Usage: node local/seed-analytics.ts --database-url postgres://postgres@127.0.0.1:5432/chatedge_bench \
 *   --tenant bench --turns 1000000 --conversations 100000 [--days 90] [--users 20000] [--seed 1] [--fresh]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { AnalyticsEvent } from "../src/analytics/events.ts";
import { writeEvents } from "../src/analytics/ingest.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import { workload } from "./analytics-workload.ts";
import { ensureDatabase, migrateDatabase } from "./migrate.ts";
import { insertTenants } from "./seed-tenants.ts";

export interface SeedOptions {
  databaseUrl: string;
  tenant: string;
  turns: number;
  conversations: number;
  days: number;
  users: number;
  seed: number;
  fresh: boolean;
  now?: number;
  log?: (line: string) => void;
}

// Conversations per transaction: each takes an advisory lock, and the lock table is shared and finite.
const CONVERSATIONS_PER_WRITE = 1_000;

/** Removes a tenant's analytics rows (raw events, rollups, dead letters). */
export async function clearTenantAnalytics(db: AnalyticsDb, tenant: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`delete from turns where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from conversations where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from feedback where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from safety_events where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from tenant_daily where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from tenant_daily_users where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from tenant_latency_daily where tenant_id = ${tenant}`);
    await tx.execute(sql`delete from dead_letters where tenant_id = ${tenant}`);
  });
}

/** How many turns and conversations the tenant's rollups hold. */
export async function seededCounts(db: AnalyticsDb, tenant: string) {
  const res = await db.execute(sql`
    select coalesce(sum(turns), 0)::bigint::text as turns, coalesce(sum(conversations), 0)::bigint::text as conversations
    from tenant_daily where tenant_id = ${tenant}`);
  const r = res.rows[0] ?? {};
  return { turns: Number(r.turns ?? 0), conversations: Number(r.conversations ?? 0) };
}

/** Seeds the tenant; returns how long it took and how many events were written. */
export async function seedAnalytics(o: SeedOptions): Promise<{ events: number; ms: number }> {
  const log = o.log ?? (() => {});
  await ensureDatabase(o.databaseUrl);
  await migrateDatabase(o.databaseUrl);
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 1 });
  pool.on("error", () => {});
  const db = drizzle({ client: pool }) as unknown as AnalyticsDb;
  try {
    await insertTenants(pool, [{ id: o.tenant, name: `Seeded ${o.tenant}`, systemPrompt: "You help." }]);
    if (o.fresh) await clearTenantAnalytics(db, o.tenant);
    const started = performance.now();
    let events = 0;
    let chunk: AnalyticsEvent[] = [];
    let conversations = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      await writeEvents(db, chunk);
      events += chunk.length;
      chunk = [];
    };
    const gen = workload({
      tenantId: o.tenant,
      conversations: o.conversations,
      turns: o.turns,
      users: o.users,
      days: o.days,
      now: o.now ?? Date.now(),
      seed: o.seed,
    });
    for (const conversation of gen) {
      for (const e of conversation) chunk.push(e);
      conversations += 1;
      if (conversations % CONVERSATIONS_PER_WRITE === 0) {
        await flush();
        if (conversations % (CONVERSATIONS_PER_WRITE * 10) === 0) {
          const s = (performance.now() - started) / 1000;
          log(`  ${conversations} conversations, ${events} events, ${Math.round(events / s)} events/s`);
        }
      }
    }
    await flush();
    await db.execute(sql`analyze`);
    return { events, ms: performance.now() - started };
  } finally {
    await pool.end();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      "database-url": { type: "string", default: process.env.DATABASE_URL },
      tenant: { type: "string", default: "bench" },
      turns: { type: "string", default: "1000000" },
      conversations: { type: "string", default: "100000" },
      days: { type: "string", default: "90" },
      users: { type: "string", default: "20000" },
      seed: { type: "string", default: "1" },
      fresh: { type: "boolean", default: false },
    },
  });
  const url = values["database-url"];
  if (!url) {
    console.error(
      "--database-url (or DATABASE_URL) is required, e.g. postgres://postgres@127.0.0.1:5432/chatedge_bench",
    );
    process.exit(2);
  }
  const opts: SeedOptions = {
    databaseUrl: url,
    tenant: values.tenant ?? "bench",
    turns: Number(values.turns),
    conversations: Number(values.conversations),
    days: Number(values.days),
    users: Number(values.users),
    seed: Number(values.seed),
    fresh: values.fresh ?? false,
    log: (line) => console.log(line),
  };
  if (![opts.turns, opts.conversations, opts.days, opts.users].every((n) => Number.isInteger(n) && n > 0)) {
    console.error("--turns, --conversations, --days and --users must be positive integers");
    process.exit(2);
  }
  if (opts.turns < opts.conversations) {
    console.error("--turns must be at least --conversations (every conversation has a turn)");
    process.exit(2);
  }
  console.log(
    `seeding ${opts.tenant}: ${opts.turns} turns, ${opts.conversations} conversations over ${opts.days} days`,
  );
  const { events, ms } = await seedAnalytics(opts);
  console.log(
    `seeded ${events} events in ${(ms / 1000).toFixed(1)} s (${Math.round(events / (ms / 1000))} events/s)`,
  );
}
