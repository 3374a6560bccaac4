/**
 * The inbox's reads (docs/handoff.md): a tenant's conversations from the index the analytics
 * consumer keeps (src/inbox/ingest.ts), newest activity first, a keyset page at a time; and one
 * conversation with its transcript (from its object while it has one, else from the index) and the
 * figures of each answered message (from `turns`).
 */
import { type SQL, sql } from "drizzle-orm";
import type { SqlExecutor } from "../analytics/sql";
import { fromBase64Url, toBase64Url } from "../auth/base64url";
import type { ConversationView, StoredMessage } from "../chat/conversation-types";
import { AppError } from "../errors";
import { type InboxStatus, inboxStatus } from "../handoff/types";
import type { InboxEntry, InboxItem, InboxTurn } from "./schemas";

/** The most turns one transcript answers (a conversation's cost cap ends it long before). */
const MAX_TURNS = 2_000;

/** How many characters of a message the list shows. */
export const PREVIEW_CHARS = 200;

export interface InboxFilter {
  status?: InboxStatus;
  channel?: string;
  variant?: string;
  q?: string;
  cursor?: string;
  limit: number;
}

/** Where a page ends: the last item's activity time and id (the list's order). */
interface Position {
  at: number;
  id: string;
}

// Date's range: a later time cannot be written as a timestamp.
const MAX_TIME_MS = 8.64e15;

/** The opaque cursor of a position: base64url of `[at, id]`. */
export function encodeCursor(p: Position): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([p.at, p.id])));
}

/** A cursor back into a position; anything this API did not make is a 400, never a 500. */
export function decodeCursor(cursor: string): Position {
  const invalid = () =>
    new AppError("VALIDATION_FAILED", "invalid request: cursor: not a cursor this API made", {
      details: [{ path: "cursor", message: "pass next_cursor from the previous page as it was" }],
    });
  const bytes = cursor ? fromBase64Url(cursor) : undefined;
  if (!bytes) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalid();
  const [at, id] = value as unknown[];
  if (typeof at !== "number" || !Number.isSafeInteger(at) || at < 0 || at > MAX_TIME_MS) throw invalid();
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw invalid();
  return { at, id };
}

const ms = (column: SQL) => sql`(extract(epoch from ${column}) * 1000)::float8`;
const num = (v: unknown) => Number(v);
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** A row of the list's query as an item. */
function itemOf(r: Record<string, unknown>): InboxItem {
  return {
    id: String(r.conversation_id),
    status: r.status as InboxStatus,
    channel: String(r.channel),
    experiment: r.experiment === null ? null : String(r.experiment),
    variant: r.variant === null ? null : String(r.variant),
    csat: numOrNull(r.csat),
    total_cost_usd: num(r.total_cost_usd),
    turns: num(r.turn_count),
    started_at: num(r.started_ms),
    last_activity_at: num(r.last_ms),
    waiting_since: numOrNull(r.waiting_ms),
    holder:
      r.holder_operator_id === null
        ? null
        : { operator_id: String(r.holder_operator_id), name: String(r.holder_name ?? "") },
    preview: String(r.preview ?? ""),
  };
}

const COLUMNS = sql`c.conversation_id, c.status, c.channel, c.experiment, c.variant, c.csat, c.total_cost_usd,
  c.turn_count, ${ms(sql`c.started_at`)} as started_ms, ${ms(sql`c.last_activity_at`)} as last_ms,
  ${ms(sql`c.waiting_since`)} as waiting_ms, c.holder_operator_id, c.holder_name`;

/** A page of the tenant's inbox, newest activity first. */
export async function listInbox(
  db: SqlExecutor,
  tenantId: string,
  f: InboxFilter,
): Promise<{ data: InboxItem[]; next_cursor: string | null }> {
  const after = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
  // websearch_to_tsquery reads any text (quotes, or, -word) and never fails on syntax.
  const query = f.q === undefined ? undefined : sql`websearch_to_tsquery('english', ${f.q})`;
  const where: SQL[] = [sql`c.tenant_id = ${tenantId}`];
  if (f.status !== undefined) where.push(sql`c.status = ${f.status}`);
  if (f.channel !== undefined) where.push(sql`c.channel = ${f.channel}`);
  if (f.variant !== undefined) where.push(sql`c.variant = ${f.variant}`);
  if (query)
    where.push(sql`c.conversation_id in (select e.conversation_id from inbox_entries e
      where e.tenant_id = ${tenantId} and e.tsv @@ ${query})`);
  if (after)
    where.push(
      sql`(c.last_activity_at, c.conversation_id) < (${new Date(after.at).toISOString()}::timestamptz, ${after.id})`,
    );
  const matching = query ? sql` and e.tsv @@ ${query}` : sql``;
  const { rows } = await db.execute(sql`
    select ${COLUMNS}, p.content as preview
    from inbox_conversations c
    left join lateral (
      select left(e.content, ${PREVIEW_CHARS}) as content from inbox_entries e
      where e.tenant_id = c.tenant_id and e.conversation_id = c.conversation_id${matching}
      order by e.seq desc limit 1
    ) p on true
    where ${sql.join(where, sql` and `)}
    order by c.last_activity_at desc, c.conversation_id desc
    limit ${f.limit + 1}`);
  const data = rows.slice(0, f.limit).map(itemOf);
  const last = data.at(-1);
  return {
    data,
    next_cursor:
      rows.length > f.limit && last ? encodeCursor({ at: last.last_activity_at, id: last.id }) : null,
  };
}

/** The indexed item of one conversation, if the index has it. */
export async function indexedItem(
  db: SqlExecutor,
  tenantId: string,
  conversationId: string,
): Promise<InboxItem | undefined> {
  const { rows } = await db.execute(sql`
    select ${COLUMNS}, (select left(e.content, ${PREVIEW_CHARS}) from inbox_entries e
      where e.tenant_id = c.tenant_id and e.conversation_id = c.conversation_id
      order by e.seq desc limit 1) as preview
    from inbox_conversations c
    where c.tenant_id = ${tenantId} and c.conversation_id = ${conversationId}`);
  const row = rows[0];
  return row ? itemOf(row) : undefined;
}

/** One conversation's item as its object knows it now (the index may lag behind the queue). */
export function itemOfView(view: ConversationView, messages: readonly StoredMessage[]): InboxItem {
  return {
    id: view.conversationId,
    status: inboxStatus(view.state),
    channel: view.channel,
    experiment: view.experiment,
    variant: view.variant,
    csat: view.csat,
    total_cost_usd: view.totalCostUsd,
    turns: view.turnCount,
    started_at: view.startedAt,
    last_activity_at: view.lastActivityAt,
    waiting_since: view.waitingSince,
    holder: view.holder ? { operator_id: view.holder.operatorId, name: view.holder.name } : null,
    preview: (messages.at(-1)?.content ?? "").slice(0, PREVIEW_CHARS),
  };
}

/** The object's messages as transcript entries. */
export function entriesOf(messages: readonly StoredMessage[]): InboxEntry[] {
  return messages.map((m) => ({
    seq: m.seq,
    role: m.role,
    author: m.author ?? null,
    content: m.content,
    at: m.at,
  }));
}

/** The transcript as the index holds it, in seq order. */
export async function indexedEntries(
  db: SqlExecutor,
  tenantId: string,
  conversationId: string,
): Promise<InboxEntry[]> {
  const { rows } = await db.execute(sql`
    select seq, role, author, content, ${ms(sql`at`)} as at_ms from inbox_entries
    where tenant_id = ${tenantId} and conversation_id = ${conversationId} order by seq`);
  return rows.map((r) => ({
    seq: num(r.seq),
    role: r.role as InboxEntry["role"],
    author: r.author === null ? null : String(r.author),
    content: String(r.content),
    at: num(r.at_ms),
  }));
}

/** Each answered message of a conversation with its figures, and the blocked topic safety matched. */
export async function turnsOf(
  db: SqlExecutor,
  tenantId: string,
  conversationId: string,
): Promise<InboxTurn[]> {
  // A safety event is sent with its turn's own time (src/chat/engine.ts): that is how they pair.
  const { rows } = await db.execute(sql`
    select t.turn_index, ${ms(sql`t.at`)} as at_ms, t.model, t.called_model, t.input_tokens, t.output_tokens,
      t.cost_usd, t.latency_ms, t.outcome, t.error, t.tools, t.tools_used,
      (select s.topic from safety_events s where s.tenant_id = t.tenant_id
        and s.conversation_id = t.conversation_id and s.at = t.at limit 1) as blocked_topic
    from turns t
    where t.tenant_id = ${tenantId} and t.conversation_id = ${conversationId}
    order by t.turn_index, t.at
    limit ${MAX_TURNS}`);
  return rows.map((r) => {
    const calls =
      (r.tools as { name: string; ok: boolean; failure: string | null; latencyMs: number }[] | null) ?? [];
    return {
      turn_index: num(r.turn_index),
      at: num(r.at_ms),
      model: String(r.model),
      called_model: r.called_model === null ? null : String(r.called_model),
      input_tokens: num(r.input_tokens),
      output_tokens: num(r.output_tokens),
      cost_usd: num(r.cost_usd),
      latency_ms: num(r.latency_ms),
      outcome: String(r.outcome),
      error: r.error === null ? null : String(r.error),
      blocked_topic: r.blocked_topic === null ? null : String(r.blocked_topic),
      tools_used: ((r.tools_used as string[] | null) ?? []).map(String),
      tools: calls.map((x) => ({ name: x.name, ok: x.ok, failure: x.failure, latency_ms: x.latencyMs })),
    };
  });
}
