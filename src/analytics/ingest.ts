/**
 * Writes a batch of analytics events into Postgres: one multi-row statement per table, idempotent
 * by the event id (ON CONFLICT DO NOTHING, RETURNING the ids that were new), and the rollups of
 * exactly those new rows, all in one transaction. Rows travel as one JSON parameter per table
 * (jsonb_populate_recordset), so every statement is parameterized whatever the batch size.
 */
import { sql } from "drizzle-orm";
import { writeInboxEvents } from "../inbox/ingest.ts";
import type {
  AnalyticsEvent,
  ConversationEvent,
  FeedbackEvent,
  InboxEvent,
  RefusalEvent,
  SafetyEvent,
  TurnEvent,
} from "./events.ts";
import { applyRollups, handling, type QueueLag, RollupDeltas, utcDay } from "./rollups.ts";
import type { AnalyticsDb, SqlExecutor } from "./sql.ts";

/** A message that will not be written, kept in `dead_letters`. */
export interface DeadLetterInput {
  messageId: string;
  queue: string;
  reason: "invalid" | "rejected" | "exhausted";
  error: string;
  /** The body as JSON text. */
  body: string;
  tenantId: string | null;
  eventId: string | null;
  attempts: number;
}

/** What a write did: new rows per table, events already stored, CSATs changed by late feedback. */
export interface WriteResult {
  turns: number;
  conversations: number;
  feedback: number;
  safety: number;
  refusals: number;
  duplicates: number;
  csatUpdates: number;
  deadLetters: number;
  /** Inbox events that changed the inbox index (src/inbox/ingest.ts). */
  inbox: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const json = (rows: unknown[]) => JSON.stringify(rows);
const idsOf = (rows: Record<string, unknown>[]) => new Set(rows.map((r) => String(r.id)));

/** A turn event as a `turns` row (keys are the column names). */
export function turnRow(e: TurnEvent) {
  return {
    id: e.id,
    tenant_id: e.tenantId,
    conversation_id: e.conversationId,
    user_id: e.userId,
    at: iso(e.at),
    day: utcDay(e.at),
    turn_index: e.turnIndex,
    model: e.model,
    called_model: e.calledModel,
    experiment: e.experiment,
    variant: e.variant,
    input_tokens: e.inputTokens,
    output_tokens: e.outputTokens,
    cost_usd: e.costUsd,
    latency_ms: e.latencyMs,
    first_token_ms: e.firstTokenMs,
    outcome: e.outcome,
    error: e.error,
    tools_used: e.toolsUsed,
    tools: e.tools ?? null,
    channel: e.channel,
  };
}

/** A conversation summary as a `conversations` row; `csat` is decided by the insert. */
export function conversationRow(e: ConversationEvent) {
  const h = handling(e);
  return {
    id: e.id,
    tenant_id: e.tenantId,
    conversation_id: e.conversationId,
    user_id: e.userId,
    day: utcDay(e.startedAt),
    started_at: iso(e.startedAt),
    ended_at: iso(e.endedAt),
    turn_count: e.turnCount,
    resolved: e.resolved,
    escalated: e.escalated,
    summary_csat: e.csat,
    total_tokens: e.totalTokens,
    total_cost_usd: e.totalCostUsd,
    avg_response_ms: e.avgResponseMs,
    tools_used: e.toolsUsed,
    channel: e.channel,
    experiment: e.experiment,
    variant: e.variant,
    error_count: e.errorCount,
    human_handled: h.humanHandled,
    first_human_reply_ms: h.firstHumanReplyMs,
    resolved_by: h.resolvedBy,
  };
}

/** A feedback event as a `feedback` row. */
export function feedbackRow(e: FeedbackEvent) {
  return {
    id: e.id,
    tenant_id: e.tenantId,
    conversation_id: e.conversationId,
    user_id: e.userId,
    at: iso(e.at),
    day: utcDay(e.at),
    csat: e.csat,
    comment: e.comment,
  };
}

/** A safety event as a `safety_events` row. */
export function safetyRow(e: SafetyEvent) {
  return {
    id: e.id,
    tenant_id: e.tenantId,
    conversation_id: e.conversationId,
    user_id: e.userId,
    at: iso(e.at),
    day: utcDay(e.at),
    direction: e.direction,
    topic: e.topic,
  };
}

/** A refusal count as a `refusals` row. */
export function refusalRow(e: RefusalEvent) {
  return { id: e.id, tenant_id: e.tenantId, at: iso(e.at), reason: e.reason, count: e.count };
}

async function insertRefusals(tx: SqlExecutor, events: RefusalEvent[]): Promise<Set<string>> {
  const res = await tx.execute(sql`
    insert into refusals (id, tenant_id, at, reason, count)
    select id, tenant_id, at, reason, count
    from jsonb_populate_recordset(null::refusals, ${json(events.map(refusalRow))}::jsonb)
    on conflict (id) do nothing
    returning id`);
  return idsOf(res.rows);
}

async function insertTurns(tx: SqlExecutor, events: TurnEvent[]): Promise<Set<string>> {
  const rows = events.map(turnRow);
  const res = await tx.execute(sql`
    insert into turns (id, tenant_id, conversation_id, user_id, at, day, turn_index, model, called_model,
      experiment, variant, input_tokens, output_tokens, cost_usd, latency_ms, first_token_ms, outcome,
      error, tools_used, tools, channel)
    select id, tenant_id, conversation_id, user_id, at, day, turn_index, model, called_model, experiment,
      variant, input_tokens, output_tokens, cost_usd, latency_ms, first_token_ms, outcome, error,
      tools_used, tools, channel
    from jsonb_populate_recordset(null::turns, ${json(rows)}::jsonb)
    on conflict (id, at) do nothing
    returning id`);
  return idsOf(res.rows);
}

/**
 * Inserts conversation summaries. The CSAT that counts is the latest feedback already stored for
 * the conversation, else the summary's own; a second summary of a conversation is ignored.
 */
async function insertConversations(
  tx: SqlExecutor,
  events: ConversationEvent[],
): Promise<Map<string, number | null>> {
  const rows = events.map(conversationRow);
  const res = await tx.execute(sql`
    insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at, ended_at,
      turn_count, resolved, escalated, csat, summary_csat, total_tokens, total_cost_usd, avg_response_ms,
      tools_used, channel, experiment, variant, error_count, human_handled, first_human_reply_ms, resolved_by)
    select r.id, r.tenant_id, r.conversation_id, r.user_id, r.day, r.started_at, r.ended_at, r.turn_count,
      r.resolved, r.escalated, coalesce(f.csat, r.summary_csat), r.summary_csat, r.total_tokens,
      r.total_cost_usd, r.avg_response_ms, r.tools_used, r.channel, r.experiment, r.variant, r.error_count,
      r.human_handled, r.first_human_reply_ms, r.resolved_by
    from jsonb_populate_recordset(null::conversations, ${json(rows)}::jsonb) r
    left join lateral (
      select fb.csat from feedback fb
      where fb.tenant_id = r.tenant_id and fb.conversation_id = r.conversation_id
      order by fb.at desc, fb.id desc
      limit 1
    ) f on true
    on conflict do nothing
    returning id, csat`);
  return new Map(res.rows.map((r) => [String(r.id), r.csat === null ? null : Number(r.csat)]));
}

interface CsatChange {
  tenantId: string;
  day: string;
  endedAt: number;
  before: number | null;
  after: number | null;
}

/**
 * Inserts feedback and moves each touched conversation's CSAT to its latest feedback. The table
 * scan cannot see rows inserted by the same statement, so the latest is taken over the stored
 * feedback plus the RETURNING rows; the conversation's old CSAT comes from a self-join (the
 * pre-update row), which is what makes the rollup delta exact.
 */
async function insertFeedback(
  tx: SqlExecutor,
  events: FeedbackEvent[],
): Promise<{ fresh: Set<string>; changes: CsatChange[] }> {
  const rows = events.map(feedbackRow);
  const res = await tx.execute(sql`
    with ins as (
      insert into feedback (id, tenant_id, conversation_id, user_id, at, day, csat, comment)
      select id, tenant_id, conversation_id, user_id, at, day, csat, comment
      from jsonb_populate_recordset(null::feedback, ${json(rows)}::jsonb)
      on conflict (id) do nothing
      returning id, tenant_id, conversation_id, at, csat
    ),
    touched as (select distinct tenant_id, conversation_id from ins),
    latest as (
      select t.tenant_id, t.conversation_id, (
        select x.csat from (
          select f.at, f.id, f.csat from feedback f
          where f.tenant_id = t.tenant_id and f.conversation_id = t.conversation_id
          union all
          select i.at, i.id, i.csat from ins i
          where i.tenant_id = t.tenant_id and i.conversation_id = t.conversation_id
        ) x
        order by x.at desc, x.id desc
        limit 1
      ) as csat
      from touched t
    ),
    upd as (
      update conversations c set csat = l.csat
      from latest l, conversations old
      where c.tenant_id = l.tenant_id and c.conversation_id = l.conversation_id
        and old.id = c.id and old.started_at = c.started_at and c.csat is distinct from l.csat
      returning c.tenant_id, c.day::text as day, c.ended_at, old.csat as before, c.csat as after
    )
    select 'new' as kind, id::text as id, null::text as tenant_id, null::text as day,
      null::double precision as ended_ms, null::integer as before, null::integer as after
    from ins
    union all
    select 'csat', null, tenant_id, day, extract(epoch from ended_at) * 1000, before, after from upd`);
  const fresh = new Set<string>();
  const changes: CsatChange[] = [];
  for (const r of res.rows) {
    if (r.kind === "new") fresh.add(String(r.id));
    else
      changes.push({
        tenantId: String(r.tenant_id),
        day: String(r.day),
        endedAt: Number(r.ended_ms),
        before: r.before === null ? null : Number(r.before),
        after: r.after === null ? null : Number(r.after),
      });
  }
  return { fresh, changes };
}

async function insertSafety(tx: SqlExecutor, events: SafetyEvent[]): Promise<Set<string>> {
  const rows = events.map(safetyRow);
  const res = await tx.execute(sql`
    insert into safety_events (id, tenant_id, conversation_id, user_id, at, day, direction, topic)
    select id, tenant_id, conversation_id, user_id, at, day, direction, topic
    from jsonb_populate_recordset(null::safety_events, ${json(rows)}::jsonb)
    on conflict (id) do nothing
    returning id`);
  return idsOf(res.rows);
}

/** Stores dead letters; a message already stored (a redelivery) is stored once. */
export async function insertDeadLetters(
  tx: SqlExecutor,
  letters: readonly DeadLetterInput[],
): Promise<number> {
  if (letters.length === 0) return 0;
  const rows = letters.map((l) => ({
    message_id: l.messageId,
    queue: l.queue,
    reason: l.reason,
    error: l.error,
    body: l.body,
    tenant_id: l.tenantId,
    event_id: l.eventId,
    attempts: l.attempts,
  }));
  const res = await tx.execute(sql`
    insert into dead_letters (message_id, queue, reason, error, body, tenant_id, event_id, attempts)
    select message_id, queue, reason, error, body, tenant_id, event_id, attempts
    from jsonb_populate_recordset(null::dead_letters, ${json(rows)}::jsonb)
    on conflict (message_id) do nothing
    returning id`);
  return res.rows.length;
}

/**
 * Serializes batches that touch the same conversations: feedback and its conversation's summary
 * may arrive in concurrent batches, and each must see the other's row once committed. Locks are
 * taken in hash order, so two batches never wait on each other in a cycle.
 */
async function lockConversations(
  tx: SqlExecutor,
  events: (ConversationEvent | FeedbackEvent)[],
): Promise<void> {
  const keys = [...new Set(events.map((e) => JSON.stringify([e.tenantId, e.conversationId])))];
  await tx.execute(sql`
    select pg_advisory_xact_lock(h) from (
      select distinct hashtextextended(k, 0) as h from jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb) k
      order by h
    ) s`);
}

/** Splits events by table, keeping the first of any repeated id (ids compared as Postgres does). */
function byTable(input: readonly AnalyticsEvent[]) {
  // RETURNING gives uuids in lower case; an event sent with upper case must still match its row.
  const events = input.map((e) => (e.id === e.id.toLowerCase() ? e : { ...e, id: e.id.toLowerCase() }));
  const seen = new Set<string>();
  const out = {
    turn: [] as TurnEvent[],
    conversation: [] as ConversationEvent[],
    feedback: [] as FeedbackEvent[],
    safety: [] as SafetyEvent[],
    refusal: [] as RefusalEvent[],
    inbox: [] as InboxEvent[],
    repeated: 0,
  };
  for (const e of events) {
    if (seen.has(e.id)) {
      out.repeated += 1;
      continue;
    }
    seen.add(e.id);
    if (e.type === "turn") out.turn.push(e);
    else if (e.type === "conversation") out.conversation.push(e);
    else if (e.type === "feedback") out.feedback.push(e);
    else if (e.type === "safety") out.safety.push(e);
    else if (e.type === "refusal") out.refusal.push(e);
    // Inbox events (docs/handoff.md) index conversations for the console, not analytics.
    else out.inbox.push(e);
  }
  return out;
}

/**
 * Writes events and dead letters in one transaction: at most one statement per table, then one
 * for the rollups of the rows that were new. Running it again with the same events changes nothing.
 */
export async function writeEvents(
  db: AnalyticsDb,
  events: readonly AnalyticsEvent[],
  deadLetters: readonly DeadLetterInput[] = [],
  lag?: QueueLag,
): Promise<WriteResult> {
  const t = byTable(events);
  return db.transaction(async (tx) => {
    const deltas = new RollupDeltas();
    const result: WriteResult = {
      turns: 0,
      conversations: 0,
      feedback: 0,
      safety: 0,
      refusals: 0,
      duplicates: t.repeated,
      csatUpdates: 0,
      deadLetters: 0,
      inbox: 0,
    };
    if (t.conversation.length + t.feedback.length > 0) {
      await lockConversations(tx, [...t.conversation, ...t.feedback]);
    }
    if (t.turn.length > 0) {
      const fresh = await insertTurns(tx, t.turn);
      for (const e of t.turn) if (fresh.has(e.id)) deltas.addTurn(e);
      result.turns = fresh.size;
    }
    // Conversations before feedback: feedback in the same batch then updates a row that exists.
    if (t.conversation.length > 0) {
      const fresh = await insertConversations(tx, t.conversation);
      for (const e of t.conversation) {
        const csat = fresh.get(e.id);
        if (csat !== undefined) deltas.addConversation(e, csat);
      }
      result.conversations = fresh.size;
    }
    if (t.feedback.length > 0) {
      const { fresh, changes } = await insertFeedback(tx, t.feedback);
      for (const c of changes) deltas.addCsatChange(c.tenantId, c.day, c.endedAt, c.before, c.after);
      result.feedback = fresh.size;
      result.csatUpdates = changes.length;
    }
    if (t.safety.length > 0) {
      const fresh = await insertSafety(tx, t.safety);
      for (const e of t.safety) if (fresh.has(e.id)) deltas.addSafety(e);
      result.safety = fresh.size;
    }
    if (t.refusal.length > 0) {
      const fresh = await insertRefusals(tx, t.refusal);
      for (const e of t.refusal) if (fresh.has(e.id)) deltas.addRefusal(e);
      result.refusals = fresh.size;
    }
    if (t.inbox.length > 0) result.inbox = (await writeInboxEvents(tx, t.inbox)).events;
    await applyRollups(tx, deltas, lag && lag.messages > 0 ? lag : undefined);
    result.deadLetters = await insertDeadLetters(tx, deadLetters);
    const written =
      result.turns + result.conversations + result.feedback + result.safety + result.refusals + result.inbox;
    result.duplicates +=
      t.turn.length +
      t.conversation.length +
      t.feedback.length +
      t.safety.length +
      t.refusal.length +
      t.inbox.length -
      written;
    return result;
  });
}
