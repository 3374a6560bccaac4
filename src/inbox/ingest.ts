/**
 * Writes the conversation objects' `inbox` events (docs/handoff.md) into the inbox index, inside the
 * analytics batch's transaction (src/analytics/ingest.ts):
 * - `inbox_conversations` holds one row per conversation, upserted; a row changes only for an event
 *   with a higher (version, at) than the one it holds, so a late or redelivered event changes nothing;
 * - `inbox_entries` gets the events' entries, keyed by seq: a redelivered entry is not written twice.
 * Events of a tenant that is gone (purged) or deactivated (about to be) write nothing: a purge
 * deletes the rows, and a message still in the queue must not bring them back. Erased visitors'
 * events never get here (the consumer drops them by tombstone).
 * Node imports this module through the analytics consumer: runtime imports carry `.ts`.
 */
import { sql } from "drizzle-orm";
import type { InboxEvent } from "../analytics/events.ts";
import type { SqlExecutor } from "../analytics/sql.ts";

const iso = (ms: number) => new Date(ms).toISOString();
const keyOf = (tenantId: string, conversationId: string) => JSON.stringify([tenantId, conversationId]);

/** An event's conversation row (keys are the column names). */
function conversationRow(e: InboxEvent) {
  return {
    tenant_id: e.tenantId,
    conversation_id: e.conversationId,
    user_id: e.userId,
    status: e.status,
    channel: e.channel,
    experiment: e.experiment,
    variant: e.variant,
    csat: e.csat,
    total_cost_usd: e.totalCostUsd,
    total_tokens: e.totalTokens,
    turn_count: e.turnCount,
    started_at: iso(e.startedAt),
    last_activity_at: iso(e.lastActivityAt),
    waiting_since: e.waitingSince === null ? null : iso(e.waitingSince),
    holder_operator_id: e.holder?.operatorId ?? null,
    holder_name: e.holder?.name ?? null,
    version: e.version,
    event_at: iso(e.at),
  };
}

const newer = (a: InboxEvent, b: InboxEvent) =>
  a.version > b.version || (a.version === b.version && a.at > b.at);

/** What a write did: events that changed a row or added an entry, and entries added. */
export interface InboxWrite {
  events: number;
  entries: number;
}

/**
 * Upserts the conversations and inserts the entries of a batch's inbox events. Several events of
 * one conversation in a batch become one row (the newest; one statement cannot touch a row twice)
 * and the union of their entries. Rows go in key order, so concurrent batches lock them in the
 * same order and never deadlock.
 */
export async function writeInboxEvents(tx: SqlExecutor, events: readonly InboxEvent[]): Promise<InboxWrite> {
  const latest = new Map<string, InboxEvent>();
  const entries = new Map<string, { key: string; event: InboxEvent; row: Record<string, unknown> }>();
  for (const e of events) {
    const key = keyOf(e.tenantId, e.conversationId);
    const held = latest.get(key);
    if (!held || newer(e, held)) latest.set(key, e);
    for (const x of e.entries) {
      const id = `${key}#${x.seq}`;
      if (entries.has(id)) continue;
      entries.set(id, {
        key,
        event: e,
        row: {
          tenant_id: e.tenantId,
          conversation_id: e.conversationId,
          seq: x.seq,
          user_id: e.userId,
          role: x.role,
          // Postgres text cannot hold NUL; one in a message must not cost the event its entries.
          author: x.author?.replaceAll("\u0000", "") ?? null,
          content: x.content.replaceAll("\u0000", ""),
          at: iso(x.at),
        },
      });
    }
  }
  const keys = [...latest.keys()].sort();
  const rows = keys.map((k) => conversationRow(latest.get(k) as InboxEvent));
  const upserted = await tx.execute(sql`
    insert into inbox_conversations (tenant_id, conversation_id, user_id, status, channel, experiment,
      variant, csat, total_cost_usd, total_tokens, turn_count, started_at, last_activity_at, waiting_since,
      holder_operator_id, holder_name, version, event_at)
    select r.tenant_id, r.conversation_id, r.user_id, r.status, r.channel, r.experiment, r.variant, r.csat,
      r.total_cost_usd, r.total_tokens, r.turn_count, r.started_at, r.last_activity_at, r.waiting_since,
      r.holder_operator_id, r.holder_name, r.version, r.event_at
    from jsonb_populate_recordset(null::inbox_conversations, ${JSON.stringify(rows)}::jsonb) r
    where exists (select 1 from tenants t where t.id = r.tenant_id)
    on conflict (tenant_id, conversation_id) do update set
      user_id = excluded.user_id, status = excluded.status, channel = excluded.channel,
      experiment = excluded.experiment, variant = excluded.variant, csat = excluded.csat,
      total_cost_usd = excluded.total_cost_usd, total_tokens = excluded.total_tokens,
      turn_count = excluded.turn_count, started_at = excluded.started_at,
      last_activity_at = excluded.last_activity_at, waiting_since = excluded.waiting_since,
      holder_operator_id = excluded.holder_operator_id, holder_name = excluded.holder_name,
      version = excluded.version, event_at = excluded.event_at
    where (excluded.version, excluded.event_at) > (inbox_conversations.version, inbox_conversations.event_at)
    returning tenant_id, conversation_id`);
  const changed = new Set(upserted.rows.map((r) => keyOf(String(r.tenant_id), String(r.conversation_id))));

  const fresh = [...entries.values()].sort((a, b) =>
    a.key === b.key ? Number(a.row.seq) - Number(b.row.seq) : a.key < b.key ? -1 : 1,
  );
  const added = new Set<InboxEvent>();
  let entryCount = 0;
  if (fresh.length > 0) {
    const inserted = await tx.execute(sql`
      insert into inbox_entries (tenant_id, conversation_id, seq, user_id, role, author, content, at)
      select r.tenant_id, r.conversation_id, r.seq, r.user_id, r.role, r.author, r.content, r.at
      from jsonb_populate_recordset(null::inbox_entries, ${JSON.stringify(fresh.map((f) => f.row))}::jsonb) r
      where exists (select 1 from tenants t where t.id = r.tenant_id)
      on conflict do nothing
      returning tenant_id, conversation_id, seq`);
    const ids = new Set(
      inserted.rows.map((r) => `${keyOf(String(r.tenant_id), String(r.conversation_id))}#${Number(r.seq)}`),
    );
    entryCount = ids.size;
    for (const [id, f] of entries) if (ids.has(id)) added.add(f.event);
  }
  let written = 0;
  for (const e of events) {
    const key = keyOf(e.tenantId, e.conversationId);
    if ((changed.has(key) && latest.get(key) === e) || added.has(e)) written++;
  }
  return { events: written, entries: entryCount };
}
