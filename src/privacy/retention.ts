/**
 * Retention (docs/privacy.md): what a visitor left behind is kept `retention_days` (a tenant's own,
 * else RETENTION_DAYS_DEFAULT, never more than RETENTION_DAYS_MAX), then deleted.
 * - Postgres: the cron deletes per-event rows older than each tenant's cutoff in batches of at most
 *   `batch` rows (one short statement each, its own transaction, so ingestion never waits on a long
 *   lock), at most `maxBatches` per table per run; what is left goes on the next run. The rollups
 *   (tenant_daily, hourly, totals, histograms) are kept: they hold counts, not people.
 * - Durable Objects: a conversation started with a retention arms an alarm for when its transcript
 *   expires (src/chat/conversation-do.ts); for the conversations the sweep deletes, it also asks
 *   the object to expire, which covers a retention shortened since the conversation started.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { tenants } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { TOMBSTONE_DAYS } from "./erasure.ts";
import { dropExpiredPartitions, ensurePartitions, PARTITIONED, partitionsOf } from "./partitions.ts";

export const DAY_MS = 86_400_000;

/** The retention a tenant gets, in days: its own setting or the platform default, capped at the maximum. */
export function retentionDaysOf(
  env: Pick<Env, "RETENTION_DAYS_DEFAULT" | "RETENTION_DAYS_MAX">,
  retentionDays: number | null,
): number {
  return Math.min(retentionDays ?? env.RETENTION_DAYS_DEFAULT, env.RETENTION_DAYS_MAX);
}

/** Per table: which rows are past a tenant's cutoff `c.cutoff` (the indexed time column first). */
const SWEPT = {
  turns: "t.at < c.cutoff",
  feedback: "t.at < c.cutoff",
  safety_events: "t.at < c.cutoff",
  // ended_at >= started_at: the started_at bound lets the (tenant_id, started_at) index find them.
  conversations: "t.started_at < c.cutoff and t.ended_at < c.cutoff",
  tenant_daily_users: "t.day < (c.cutoff at time zone 'UTC')::date",
  notifications: "t.created_at < c.cutoff",
  dead_letters: "t.created_at < c.cutoff",
  audit_log: "t.created_at < c.cutoff",
  // The inbox (src/inbox): a conversation's row once its last activity is past, each message by its time.
  inbox_conversations: "t.last_activity_at < c.cutoff",
  inbox_entries: "t.at < c.cutoff",
  // A visitor's question no source answered, kept for the tenant to see what content is missing.
  knowledge_unanswered: "t.at < c.cutoff",
} as const;

export type SweptTable = keyof typeof SWEPT;

/** What one sweep deleted, per table, and how many conversation objects it expired. */
export interface RetentionReport {
  deleted: Record<SweptTable, number>;
  transcripts: number;
  /** Erasure tombstones past TOMBSTONE_DAYS, deleted. */
  tombstones: number;
  /** Tables where rows past the cutoff remain for the next run (the batch budget ran out). */
  unfinished: SweptTable[];
  /** Month partitions created ahead, and dropped whole past RETENTION_DAYS_MAX (src/privacy/partitions.ts). */
  partitions: { created: string[]; dropped: string[] };
}

export interface SweepLimits {
  /** Rows per DELETE statement. */
  batch: number;
  /** Statements per table per run. */
  maxBatches: number;
}

export const DEFAULT_LIMITS: SweepLimits = { batch: 5_000, maxBatches: 20 };

// Conversation objects asked to expire at once: each is a round trip to another object.
const FAN_OUT = 50;

/**
 * Deletes everything past its tenant's retention at `now`, in bounded batches; with `objects`, the
 * transcripts of the conversations deleted too.
 */
export async function sweepRetention(
  db: Db,
  env: Pick<Env, "RETENTION_DAYS_DEFAULT" | "RETENTION_DAYS_MAX"> & { CONVERSATION?: Env["CONVERSATION"] },
  now: number,
  limits: SweepLimits = DEFAULT_LIMITS,
): Promise<RetentionReport> {
  const rows = await db.select({ id: tenants.id, days: tenants.retentionDays }).from(tenants);
  const cutoffs = rows.map((r) => ({
    id: r.id,
    cutoff: new Date(now - retentionDaysOf(env, r.days) * DAY_MS).toISOString(),
  }));
  const cutoffOf = new Map(cutoffs.map((c) => [c.id, Date.parse(c.cutoff)]));
  const report: RetentionReport = {
    deleted: Object.fromEntries(Object.keys(SWEPT).map((t) => [t, 0])) as Record<SweptTable, number>,
    transcripts: 0,
    tombstones: 0,
    unfinished: [],
    partitions: {
      created: await ensurePartitions(db, now),
      // Past the maximum no tenant keeps anything: whole months go at once, before the row batches.
      dropped: await dropExpiredPartitions(db, now - env.RETENTION_DAYS_MAX * DAY_MS),
    },
  };
  if (cutoffs.length === 0) return report;
  const param = JSON.stringify(cutoffs);
  const latest = Math.max(...cutoffOf.values());
  for (const table of Object.keys(SWEPT) as SweptTable[]) {
    // Only a statement that deleted something counts: a partition with nothing to delete costs one
    // index probe per tenant.
    let statements = 0;
    sweep: for (const physical of await sweptTablesOf(db, table, latest)) {
      for (;;) {
        if (statements === limits.maxBatches) {
          report.unfinished.push(table);
          break sweep;
        }
        const gone = await deleteBatch(db, table, physical, param, limits.batch);
        if (gone.length > 0) statements++;
        report.deleted[table] += gone.length;
        if (table === "conversations" && env.CONVERSATION)
          report.transcripts += await expireObjects(env.CONVERSATION, gone, cutoffOf);
        if (gone.length < limits.batch) break;
      }
    }
  }
  // Tombstones outlive every message that could still be in flight, then go (no personal data).
  const stale = await db.execute(sql`delete from erasures where ctid = any(array(
    select ctid from erasures where erased_at < ${new Date(now - TOMBSTONE_DAYS * DAY_MS).toISOString()}
    limit ${limits.batch}))`);
  report.tombstones = stale.rowCount ?? 0;
  return report;
}

/**
 * The physical tables a sweep of `table` deletes from: the table itself, or for a partitioned one
 * its partitions that may hold rows older than the latest cutoff (a ctid names a row only within
 * one physical table, and a month starting after every cutoff has nothing to delete).
 */
async function sweptTablesOf(db: Db, table: SweptTable, latest: number): Promise<string[]> {
  if (!(table in PARTITIONED)) return [table];
  const { partitioned, months, other } = await partitionsOf(db, table as keyof typeof PARTITIONED);
  if (!partitioned) return [table];
  return [...months.filter((p) => p.from.getTime() < latest).map((p) => p.name), ...other];
}

/** One bounded DELETE: the oldest-first rows of every tenant past its cutoff, found by index, by ctid. */
async function deleteBatch(
  db: Db,
  table: SweptTable,
  physical: string,
  cutoffs: string,
  limit: number,
): Promise<{ tenant_id: string; conversation_id?: string }[]> {
  const name = sql.raw(`"${physical}"`);
  const returning = sql.raw(table === "conversations" ? "tenant_id, conversation_id" : "tenant_id");
  const result = await db.execute(sql`
    delete from ${name} where ctid = any(array(
      select x.ctid
      from jsonb_to_recordset(${cutoffs}::jsonb) as c(id text, cutoff timestamptz)
      cross join lateral (
        select t.ctid from ${name} t where t.tenant_id = c.id and ${sql.raw(SWEPT[table])} limit ${limit}
      ) x
      limit ${limit}
    ))
    returning ${returning}`);
  return result.rows as { tenant_id: string; conversation_id?: string }[];
}

/** Asks the objects of deleted conversation rows to delete their transcripts; how many did. */
async function expireObjects(
  ns: Env["CONVERSATION"],
  gone: { tenant_id: string; conversation_id?: string }[],
  cutoffOf: Map<string, number>,
): Promise<number> {
  let expired = 0;
  for (let i = 0; i < gone.length; i += FAN_OUT) {
    const answers = await Promise.allSettled(
      gone.slice(i, i + FAN_OUT).map((r) => {
        const cutoff = cutoffOf.get(r.tenant_id);
        if (cutoff === undefined || r.conversation_id === undefined) return Promise.resolve(false);
        return ns.getByName(`${r.tenant_id}:${r.conversation_id}`).expire(r.tenant_id, cutoff);
      }),
    );
    // An object that failed keeps its own alarm (when it has a retention); the sweep goes on.
    expired += answers.filter((a) => a.status === "fulfilled" && a.value).length;
  }
  return expired;
}
