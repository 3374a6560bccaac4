import type { InboxEvent } from "../../../src/analytics/events";
import { dayTime } from "../analytics/helpers";
import { query, sql } from "../helpers";

/**
 * An inbox event as a conversation object emits it (docs/handoff.md); `at` moves with `version`,
 * from noon yesterday (UTC): always in the past, as an emitted event is (an erasure's tombstone drops
 * the events from before it; noon today was in the future before 12:00 UTC).
 */
export function inboxEvent(tenantId: string, o: Partial<InboxEvent> = {}): InboxEvent {
  const version = o.version ?? 0;
  return {
    type: "inbox",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "c-1",
    userId: "visitor:v-1",
    version,
    at: dayTime(1, version * 1_000),
    status: "open",
    channel: "web",
    experiment: null,
    variant: null,
    csat: null,
    totalCostUsd: 0,
    totalTokens: 0,
    turnCount: 0,
    startedAt: dayTime(1),
    lastActivityAt: dayTime(1, version * 1_000),
    waitingSince: null,
    holder: null,
    entries: [],
    ...o,
  };
}

/** Entries seq `from`..`to` of a conversation, alternating visitor and bot. */
export function entries(from: number, to: number, text = (seq: number) => `message ${seq}`) {
  const out: InboxEvent["entries"] = [];
  for (let seq = from; seq <= to; seq++)
    out.push({
      seq,
      role: seq % 2 === 1 ? "user" : "assistant",
      author: null,
      content: text(seq),
      at: dayTime(1, seq * 1_000),
    });
  return out;
}

/** The tenant's inbox rows, by conversation. */
export function inboxRows(tenantId: string) {
  return query<{
    conversation_id: string;
    status: string;
    version: number;
    csat: number | null;
    holder_name: string | null;
    turn_count: number;
  }>(sql`select conversation_id, status, version, csat, holder_name, turn_count from inbox_conversations
    where tenant_id = ${tenantId} order by conversation_id`);
}

/** The tenant's stored entries: conversation, seq, role and content, in order. */
export function entryRows(tenantId: string) {
  return query<{ conversation_id: string; seq: number; role: string; content: string }>(
    sql`select conversation_id, seq, role, content from inbox_entries where tenant_id = ${tenantId}
      order by conversation_id, seq`,
  );
}
