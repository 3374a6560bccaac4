/**
 * Monthly partitions of `turns` (by `at`) and `conversations` (by `started_at`), docs/privacy.md.
 * drizzle/0023 made them; the cron keeps them: each run creates the partitions of this month and the
 * next MONTHS_AHEAD that are missing (a row the default partition already holds for such a month
 * moves in), and drops whole partitions past the platform's maximum retention, which no tenant may
 * keep, instead of deleting their rows one batch at a time. A partition is named `<table>_pYYYYMM`
 * (UTC months); `<table>_default` takes any row no month partition covers, so no insert fails.
 */
import { sql } from "drizzle-orm";
import { type AnalyticsDb, type SqlExecutor, sqlState } from "../analytics/sql.ts";

/** The partitioned tables and their range column. */
export const PARTITIONED = { turns: "at", conversations: "started_at" } as const;

export type PartitionedTable = keyof typeof PARTITIONED;

/** Months created ahead of the current one: the cron may stop for weeks without inserts landing in the default. */
export const MONTHS_AHEAD = 3;

// A DDL statement waits at most this long for its lock, then gives up until the next run: a long
// query on the table must not make ingestion queue up behind the waiting DDL.
const LOCK_TIMEOUT = "2s";
const LOCK_NOT_AVAILABLE = "55P03";
// lock_not_available, duplicate_table, unique_violation (a catalog row), invalid_object_definition (overlap).
const SKIPPABLE = new Set([LOCK_NOT_AVAILABLE, "42P07", "23505", "42P17"]);

/** One monthly partition: its name and UTC range [from, to). */
export interface MonthPartition {
  name: string;
  from: Date;
  to: Date;
}

/** The UTC month `offset` months after the one holding `ms`, as a partition of `table`. */
export function monthPartition(table: PartitionedTable, ms: number, offset = 0): MonthPartition {
  const d = new Date(ms);
  const from = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
  const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
  const month = `${from.getUTCFullYear()}${String(from.getUTCMonth() + 1).padStart(2, "0")}`;
  return { name: `${table}_p${month}`, from, to };
}

/**
 * The physical tables under `table`: its month partitions (oldest first) and the default one; with
 * `partitioned` false (a database migrated before 0023, a plain copy on the search path), none.
 */
export async function partitionsOf(
  db: SqlExecutor,
  table: PartitionedTable,
): Promise<{ partitioned: boolean; months: MonthPartition[]; other: string[] }> {
  const { rows } = await db.execute(sql`select c.relname as name, p.relkind as kind from pg_class p
    left join pg_inherits i on i.inhparent = p.oid
    left join pg_class c on c.oid = i.inhrelid
    where p.oid = (quote_ident(${table}))::regclass order by c.relname`);
  const partitioned = rows[0]?.kind === "p";
  const months: MonthPartition[] = [];
  const other: string[] = [];
  const pattern = new RegExp(`^${table}_p(\\d{4})(\\d{2})$`);
  for (const r of rows) {
    if (r.name === null) continue;
    const name = String(r.name);
    const m = pattern.exec(name);
    if (m) months.push(monthPartition(table, Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)));
    else other.push(name);
  }
  return { partitioned, months, other };
}

const ts = (d: Date) => `'${d.toISOString()}'`;

/**
 * Creates the missing partitions of the month holding `now` and the `ahead` months after it; the
 * names of those created. Each is built outside the table and then attached (which does not block
 * inserts into the other partitions), with the rows the default partition held for its month.
 */
export async function ensurePartitions(
  db: AnalyticsDb,
  now: number,
  ahead = MONTHS_AHEAD,
): Promise<string[]> {
  const created: string[] = [];
  for (const table of Object.keys(PARTITIONED) as PartitionedTable[]) {
    const { partitioned, months } = await partitionsOf(db, table);
    if (!partitioned) continue;
    const have = new Set(months.map((p) => p.name));
    for (let offset = 0; offset <= ahead; offset++) {
      const p = monthPartition(table, now, offset);
      if (have.has(p.name)) continue;
      try {
        await createPartition(db, table, p);
        created.push(p.name);
      } catch (err) {
        // Busy (next run tries again), or a concurrent run made it first.
        if (!SKIPPABLE.has(sqlState(err) ?? "")) throw err;
      }
    }
  }
  return created;
}

/** Creates and attaches one month partition, moving its month's rows out of the default partition. */
export async function createPartition(
  db: AnalyticsDb,
  table: PartitionedTable,
  p: MonthPartition,
): Promise<void> {
  const col = sql.raw(PARTITIONED[table]);
  const [parent, part, fallback] = [table, p.name, `${table}_default`].map((n) => sql.raw(`"${n}"`));
  const range = sql.raw(`from (${ts(p.from)}) to (${ts(p.to)})`);
  await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local lock_timeout = '${LOCK_TIMEOUT}'`));
    await tx.execute(sql`create table ${part} (like ${parent} including defaults)`);
    // Rows for this month can only be in the default partition; the lock keeps new ones out of it
    // until the month's partition takes them (inserts routed to other partitions go on).
    await tx.execute(sql`lock table ${fallback} in share row exclusive mode`);
    await tx.execute(sql`with moved as (
        delete from ${fallback} where ${col} >= ${p.from.toISOString()} and ${col} < ${p.to.toISOString()}
        returning *)
      insert into ${part} select * from moved`);
    await tx.execute(sql`alter table ${parent} attach partition ${part} for values ${range}`);
  });
}

/**
 * Drops the month partitions whose whole range is older than `cutoff` (now minus the platform's
 * maximum retention): every tenant's retention has expired their rows. A conversations partition
 * goes only once no conversation in it ended after the cutoff (the sweep takes those row by row).
 * A partition whose lock is not granted in time stays for the next run. The names dropped.
 */
export async function dropExpiredPartitions(db: AnalyticsDb, cutoff: number): Promise<string[]> {
  const dropped: string[] = [];
  const at = new Date(cutoff).toISOString();
  for (const table of Object.keys(PARTITIONED) as PartitionedTable[]) {
    for (const p of (await partitionsOf(db, table)).months) {
      if (p.to.getTime() > cutoff) break;
      const part = sql.raw(`"${p.name}"`);
      if (table === "conversations") {
        const { rows } = await db.execute(sql`select 1 from ${part} where ended_at >= ${at} limit 1`);
        if (rows.length > 0) continue;
      }
      try {
        await db.transaction(async (tx) => {
          await tx.execute(sql.raw(`set local lock_timeout = '${LOCK_TIMEOUT}'`));
          await tx.execute(sql`alter table ${sql.raw(`"${table}"`)} detach partition ${part}`);
          await tx.execute(sql`drop table ${part}`);
        });
        dropped.push(p.name);
      } catch (err) {
        if (sqlState(err) !== LOCK_NOT_AVAILABLE) throw err;
      }
    }
  }
  return dropped;
}
