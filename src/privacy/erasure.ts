/**
 * A visitor's export and erasure (docs/privacy.md). A subject is one end user of one tenant, as
 * stored: `visitor:<id>` (a browser) or `user:<id>` (a verified or server-named user).
 * - Export reads every store: the conversation objects' transcripts, the per-event rows, the
 *   experiment assignments in Redis.
 * - Erasure first writes a tombstone (a hash of tenant and user, no personal data), so analytics
 *   still in the queue are dropped by the consumer instead of written; then deletes the objects'
 *   storage, the rows and the Redis keys; the rollups (counts) stay. The audit entry names the hash.
 * Node imports the tombstone check through the analytics consumer: runtime imports carry `.ts`.
 */
import { sql } from "drizzle-orm";
import type { AnalyticsEvent } from "../analytics/events.ts";
import type { AnalyticsDb, SqlExecutor } from "../analytics/sql.ts";
import { sha256Hex } from "../auth/keys.ts";

/** The hash a tombstone and the audit entry name a subject by. */
export function subjectHash(tenantId: string, userId: string): Promise<string> {
  return sha256Hex(`${tenantId}:${userId}`);
}

/**
 * The hash a purged tenant is named by: its tombstone and the purge's audit entry. A subject's
 * string has a second colon (`<tenant>:visitor:<id>`), a tenant id none, so the two never meet.
 */
export function tenantHash(tenantId: string): Promise<string> {
  return sha256Hex(`tenant:${tenantId}`);
}

/** How long a tombstone is kept: longer than a message can wait in the queue (retries, DLQ replay). */
export const TOMBSTONE_DAYS = 14;

/**
 * How long after a subject's erasure an event may be dated and still be dropped: an event is dated
 * by a worker's clock, the tombstone by Postgres's.
 */
const CLOCK_SKEW_MS = 60_000;

/**
 * The events of a batch whose subject was erased (dated before the erasure: the subject's later
 * visits are new data) or whose tenant is being or was purged (its tombstone, written when the purge
 * starts: all of them): the consumer acks and drops them.
 */
export async function erasedAmong(
  db: AnalyticsDb,
  events: readonly AnalyticsEvent[],
): Promise<Set<AnalyticsEvent>> {
  const bySubject = new Map<string, AnalyticsEvent[]>();
  const add = (h: string, e: AnalyticsEvent) => {
    const list = bySubject.get(h);
    if (list) list.push(e);
    else bySubject.set(h, [e]);
  };
  // Each tenant and subject is hashed once per batch (a conversation's events share both), all at
  // once: in Node every digest is a trip through the thread pool.
  const hashes = new Map<string, Promise<string>>();
  const once = (key: string, hash: () => Promise<string>) => {
    let h = hashes.get(key);
    if (h === undefined) {
      h = hash();
      hashes.set(key, h);
    }
    return h;
  };
  const tenants = new Set<string>();
  const named = await Promise.all(
    events.map((e) =>
      Promise.all([
        once(JSON.stringify([e.tenantId]), () => tenantHash(e.tenantId)).then((h) => {
          tenants.add(h);
          return h;
        }),
        // A refusal names no user.
        ...(e.type === "refusal"
          ? []
          : [once(JSON.stringify([e.tenantId, e.userId]), () => subjectHash(e.tenantId, e.userId))]),
      ]),
    ),
  );
  events.forEach((e, i) => {
    for (const h of named[i] ?? []) add(h, e);
  });
  const out = new Set<AnalyticsEvent>();
  if (bySubject.size === 0) return out;
  const { rows } = await db.execute(
    sql`select subject_hash, (extract(epoch from erased_at) * 1000)::float8 as erased_ms from erasures
      where subject_hash in (select jsonb_array_elements_text(${JSON.stringify([...bySubject.keys()])}::jsonb))`,
  );
  for (const r of rows) {
    const hash = String(r.subject_hash);
    const until = tenants.has(hash) ? Number.POSITIVE_INFINITY : Number(r.erased_ms) + CLOCK_SKEW_MS;
    for (const e of bySubject.get(hash) ?? []) if (e.at <= until) out.add(e);
  }
  return out;
}

/** Tables holding a subject's per-event rows, each with tenant_id and user_id. */
export const SUBJECT_TABLES = [
  "turns",
  "conversations",
  "feedback",
  "safety_events",
  "tenant_daily_users",
  // The inbox's index of the subject's conversations and their messages (src/inbox).
  "inbox_conversations",
  "inbox_entries",
] as const;

/** The ids of a subject's conversations known to Postgres (ended, or with a turn written). */
export async function conversationIdsOf(
  db: SqlExecutor,
  tenantId: string,
  userId: string,
): Promise<string[]> {
  const { rows } = await db.execute(sql`
    select conversation_id from turns where tenant_id = ${tenantId} and user_id = ${userId}
    union select conversation_id from conversations where tenant_id = ${tenantId} and user_id = ${userId}
    union select conversation_id from feedback where tenant_id = ${tenantId} and user_id = ${userId}
    union select conversation_id from safety_events where tenant_id = ${tenantId} and user_id = ${userId}
    union select conversation_id from inbox_conversations where tenant_id = ${tenantId} and user_id = ${userId}`);
  return rows.map((r) => String(r.conversation_id));
}

/** How `rowsOf` orders each table: oldest first; inbox entries as transcripts, by conversation (code points) then seq. */
const SUBJECT_ORDER: Record<(typeof SUBJECT_TABLES)[number], string> = {
  turns: "at, id",
  conversations: "started_at, id",
  feedback: "at, id",
  safety_events: "at, id",
  tenant_daily_users: "day",
  inbox_conversations: "started_at, conversation_id",
  inbox_entries: `conversation_id collate "C", seq`,
};

/** A subject's rows of one table, in `SUBJECT_ORDER` (the rows come in no order of their own). */
export async function rowsOf(
  db: SqlExecutor,
  table: (typeof SUBJECT_TABLES)[number],
  tenantId: string,
  userId: string,
): Promise<Record<string, unknown>[]> {
  const { rows } = await db.execute(
    sql`select * from ${sql.raw(table)} where tenant_id = ${tenantId} and user_id = ${userId}
        order by ${sql.raw(SUBJECT_ORDER[table])}`,
  );
  return rows;
}

/**
 * Deletes a subject's per-event rows and the dead letters that carry it; counts per table. With
 * `only`, just the rows of those conversations (a subject erased over several requests).
 */
export async function deleteSubjectRows(
  db: SqlExecutor,
  tenantId: string,
  userId: string,
  only?: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of SUBJECT_TABLES) {
    if (only && table === "tenant_daily_users") continue;
    const which = only
      ? sql` and conversation_id in (select jsonb_array_elements_text(${JSON.stringify(only)}::jsonb))`
      : sql``;
    const { rows } = await db.execute(
      sql`delete from ${sql.raw(table)} where tenant_id = ${tenantId} and user_id = ${userId}${which} returning 1`,
    );
    counts[table] = rows.length;
  }
  if (only) return counts;
  // A dead letter keeps the whole message body (JSON text): the subject's are found by its user id.
  const needle = `"userId":${JSON.stringify(userId)}`;
  const { rows } = await db.execute(
    sql`delete from dead_letters where tenant_id = ${tenantId} and strpos(body, ${needle}) > 0 returning 1`,
  );
  counts.dead_letters = rows.length;
  return counts;
}

/** Tenants among `tenantIds` with a purge tombstone: their queued messages are dropped. */
export async function purgedAmong(db: SqlExecutor, tenantIds: readonly string[]): Promise<Set<string>> {
  const byHash = new Map<string, string>();
  for (const id of new Set(tenantIds)) byHash.set(await tenantHash(id), id);
  if (byHash.size === 0) return new Set();
  const { rows } = await db.execute(
    sql`select subject_hash from erasures
      where subject_hash in (select jsonb_array_elements_text(${JSON.stringify([...byHash.keys()])}::jsonb))`,
  );
  return new Set(rows.map((r) => byHash.get(String(r.subject_hash)) ?? ""));
}

/**
 * Writes (or renews) a purged tenant's tombstone. Its `tenant_id` is the hash too: the purge leaves
 * the id nowhere, and a row naming it would be deleted by the purge's own sweep of `tenant_id`.
 */
export async function writeTenantTombstone(db: SqlExecutor, tenantId: string): Promise<string> {
  const hash = await tenantHash(tenantId);
  await db.execute(sql`insert into erasures (subject_hash, tenant_id) values (${hash}, ${`sha256:${hash}`})
    on conflict (subject_hash) do update set erased_at = now()`);
  return hash;
}

/** Writes (or renews) a subject's tombstone. */
export async function writeTombstone(db: SqlExecutor, tenantId: string, userId: string): Promise<string> {
  const hash = await subjectHash(tenantId, userId);
  await db.execute(sql`insert into erasures (subject_hash, tenant_id) values (${hash}, ${tenantId})
    on conflict (subject_hash) do update set erased_at = now()`);
  return hash;
}
