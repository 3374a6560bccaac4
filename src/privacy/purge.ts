/**
 * A tenant's purge (docs/privacy.md): after deactivation, everything the tenant left in every store
 * goes: its conversation objects (found through the rows that name them, so those go first), its
 * admission gate, every row of every table with a `tenant_id` column (children before the tables
 * they reference), its Redis keys, and last the tenants row. Bounded per call: a tenant too big for
 * one request answers `done: false` and the next call goes on where this one stopped.
 * The audit log keeps one entry of the purge, naming the tenant only by a hash.
 */
import { sql } from "drizzle-orm";
import { PURGED_GATE } from "../admission/tenant-gate";
import type { SqlExecutor } from "../analytics/sql";
import type { Services } from "../services";
import { invalidateApiKey, invalidateTenant } from "../tenants/config";
import type { Actor } from "../tenants/service";
import { audit } from "../tenants/service";
import { tenantHash, writeTenantTombstone } from "./erasure";
import { PARTITIONED } from "./partitions";

/** How much one call may do: conversation objects forgotten, rows per DELETE, DELETE statements. */
export interface PurgeLimits {
  conversations: number;
  batch: number;
  statements: number;
}

export const PURGE_LIMITS: PurgeLimits = { conversations: 300, batch: 5_000, statements: 60 };

/** Tables whose rows name a conversation object; its storage goes before the rows that find it. */
const CONVERSATION_TABLES = [
  "turns",
  "conversations",
  "feedback",
  "safety_events",
  "inbox_conversations",
  "inbox_entries",
] as const;

/** What one call did, and whether the tenant is gone. */
export interface PurgeProgress {
  done: boolean;
  transcripts_deleted: number;
  gate_deleted: boolean;
  rows_deleted: Record<string, number>;
  redis_keys_deleted: number;
}

/** The hash the purge's audit entry and tombstone name the tenant by (the id itself is gone everywhere). */
export { tenantHash };

/**
 * The tables with a `tenant_id` column other than `tenants`, each after every table that references
 * it: read from the catalog, so a table added later is purged without a change here. A partitioned
 * table is listed as its partitions (a ctid names a row only within one physical table).
 */
export async function tenantTables(db: SqlExecutor): Promise<string[]> {
  const { rows } = await db.execute(sql`
    select c.table_name as t,
      coalesce((select array_agg(distinct r.conrelid::regclass::text) from pg_constraint r
        where r.contype = 'f' and r.confrelid = (quote_ident(c.table_name))::regclass
          and r.conrelid <> r.confrelid), '{}') as referenced_by
    from information_schema.columns c join information_schema.tables tb
      on tb.table_schema = c.table_schema and tb.table_name = c.table_name
    where c.table_schema = current_schema() and c.column_name = 'tenant_id'
      and tb.table_type = 'BASE TABLE' and c.table_name <> 'tenants'
      and (select k.relkind from pg_class k where k.oid = (quote_ident(c.table_name))::regclass) = 'r'
    order by c.table_name`);
  const refs = new Map(rows.map((r) => [String(r.t), (r.referenced_by as string[]).map(String)]));
  const ordered: string[] = [];
  const visit = (t: string, path: Set<string>) => {
    if (ordered.includes(t) || path.has(t)) return;
    path.add(t);
    for (const child of refs.get(t) ?? []) if (refs.has(child)) visit(child, path);
    ordered.push(t);
  };
  for (const t of refs.keys()) visit(t, new Set());
  return ordered;
}

/** Does one call's share of purging `tenantId`; call again while `done` is false. */
export async function purgeTenant(
  svc: Services,
  who: Actor,
  tenantId: string,
  limits: PurgeLimits = PURGE_LIMITS,
): Promise<PurgeProgress> {
  const db = svc.dbh.db;
  const progress: PurgeProgress = {
    done: false,
    transcripts_deleted: 0,
    gate_deleted: false,
    rows_deleted: {},
    redis_keys_deleted: 0,
  };
  const count = (table: string, n: number) => {
    progress.rows_deleted[table] = (progress.rows_deleted[table] ?? 0) + n;
  };

  // 0. The tombstone: from now on the consumers drop the tenant's messages still in the queues, so
  // nothing is written behind the purge (src/privacy/erasure.ts).
  await writeTenantTombstone(db, tenantId);

  // 1. Conversation objects, a batch at a time, each with the rows that named it.
  let budget = limits.conversations;
  while (budget > 0) {
    const ids = await conversationBatch(db, tenantId, Math.min(budget, 100));
    if (ids.length === 0) break;
    budget -= ids.length;
    const forgotten = await Promise.all(
      ids.map((id) => svc.env.CONVERSATION.getByName(`${tenantId}:${id}`).forget(tenantId)),
    );
    progress.transcripts_deleted += forgotten.filter(Boolean).length;
    const list = JSON.stringify(ids);
    for (const table of CONVERSATION_TABLES) {
      const { rows } = await db.execute(sql`delete from ${sql.raw(table)} where tenant_id = ${tenantId}
        and conversation_id in (select jsonb_array_elements_text(${list}::jsonb)) returning 1`);
      count(table, rows.length);
    }
  }
  if (budget === 0) return progress;

  // 2. The admission gate: its reset rejects the call with PURGED_GATE once the storage is gone.
  await svc.env.TENANT_GATE.getByName(tenantId)
    .purge()
    .catch((err: unknown) => {
      if (!String(err).includes(PURGED_GATE)) throw err;
    });
  progress.gate_deleted = true;

  // 3. Every other row, by ctid in bounded statements. Only a statement that deleted something
  // counts against the bound: a later call passes the tables already emptied and goes on.
  let statements = limits.statements;
  for (const table of await tenantTables(db)) {
    for (;;) {
      if (statements <= 0) return progress;
      const returning = table === "api_keys" ? sql`returning prefix` : sql`returning 1`;
      const { rows } = await db.execute(sql`delete from ${sql.raw(table)} where ctid = any(array(
        select ctid from ${sql.raw(table)} where tenant_id = ${tenantId} limit ${limits.batch}))
        ${returning}`);
      if (rows.length > 0) statements--;
      count(logicalName(table), rows.length);
      // A key's cached record names the tenant under the key's prefix, not the tenant's id.
      if (table === "api_keys") for (const r of rows) await invalidateApiKey(svc, String(r.prefix));
      if (rows.length < limits.batch) break;
    }
  }

  // 4. Redis, before the tenants row: once that row is gone this purge cannot be called again.
  if (!svc.cache.available) return progress;
  const redisDone = await svc.cache.run(false, async (r) => {
    // The cache's keys, and the question vectors knowledge search keeps (src/knowledge/embed.ts).
    for (const match of [`ce:*${tenantId}*`, `kq:${tenantId}:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await r.scan(cursor, { match, count: 1_000 });
        cursor = String(next);
        const mine = keys.filter((k) => isTenantKey(k, tenantId));
        if (mine.length > 0) progress.redis_keys_deleted += await r.del(...mine);
      } while (cursor !== "0");
    }
    return true;
  });
  if (!redisDone) return progress;

  // 5. The tenants row, with the one audit entry the purge leaves: a hash and counts, no id.
  const hash = await tenantHash(tenantId);
  await db.transaction(async (tx) => {
    const { rows } = await tx.execute(sql`delete from tenants where id = ${tenantId} returning 1`);
    count("tenants", rows.length);
    await audit(tx, who, null, "tenant.purge", `sha256:${hash}`, {
      transcripts: progress.transcripts_deleted,
      rows: progress.rows_deleted,
      redis_keys: progress.redis_keys_deleted,
    });
  });
  await invalidateTenant(svc, tenantId);
  progress.done = true;
  return progress;
}

/** A month or default partition's rows count under their table's name (`turns_p202612`: `turns`). */
function logicalName(table: string): string {
  for (const parent of Object.keys(PARTITIONED))
    if (new RegExp(`^${parent}_(p\\d{6}|default)$`).test(table)) return parent;
  return table;
}

/** Up to `limit` of the tenant's conversation ids still named by a row. */
async function conversationBatch(db: SqlExecutor, tenantId: string, limit: number): Promise<string[]> {
  const { rows } = await db.execute(sql`select distinct conversation_id from (
      (select conversation_id from conversations where tenant_id = ${tenantId} limit ${limit})
      union all (select conversation_id from turns where tenant_id = ${tenantId} limit ${limit})
      union all (select conversation_id from feedback where tenant_id = ${tenantId} limit ${limit})
      union all (select conversation_id from safety_events where tenant_id = ${tenantId} limit ${limit})
      union all (select conversation_id from inbox_conversations where tenant_id = ${tenantId} limit ${limit})
    ) c limit ${limit}`);
  return rows.map((r) => String(r.conversation_id));
}

/**
 * Whether a Redis key belongs to the tenant: the assignments `ce:ab:<tenant>:...` and the named
 * caches `ce:<name>:<tenant>`, `ce:v2:<name>:<tenant>` and the sealed `ce:v3:`/`ce:v4:<name>:<tenant>`
 * (src/cache/tiered.ts). The SCAN pattern
 * also matches ids that merely contain this one (`acme` in `acme-2`): those are left alone.
 */
export function isTenantKey(key: string, tenantId: string): boolean {
  if (key.startsWith(`ce:ab:${tenantId}:`) || key.startsWith(`kq:${tenantId}:`)) return true;
  const parts = key.split(":");
  if (parts[0] !== "ce" || parts.at(-1) !== tenantId) return false;
  return parts.length === 3 || (parts.length === 4 && ["v2", "v3", "v4"].includes(parts[1] as string));
}
