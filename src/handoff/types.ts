/**
 * The shared shapes of human handoff (#17), between the conversation object (LIVE), the inbox
 * index and views (INBOX) and the analytics of human handling (SIGNALS): docs/handoff.md.
 * Fields may be added here; none is renamed or dropped while another side reads it.
 */
import type { InboxEvent as InboxEventSchema } from "../analytics/events";
import type { ConversationState } from "../chat/conversation-types";

export type { ConversationState };

/** The inbox's name for a conversation's state. */
export type InboxStatus = "open" | "waiting" | "human" | "resolved" | "ended";

export const INBOX_STATUSES = [
  "open",
  "waiting",
  "human",
  "resolved",
  "ended",
] as const satisfies readonly InboxStatus[];

const STATUS_OF: Record<ConversationState, InboxStatus> = {
  open: "open",
  escalated: "waiting",
  human: "human",
  resolved: "resolved",
  unresolved: "ended",
};

export function inboxStatus(state: ConversationState): InboxStatus {
  return STATUS_OF[state];
}

/** The operator who holds a conversation in human mode: one at a time. */
export interface Holder {
  operatorId: string;
  name: string;
}

export type EntryRole = "user" | "assistant" | "operator" | "system";

/**
 * One entry of a conversation's transcript, as stored (redacted). `seq` is 1, 2, 3 ... per
 * conversation and never reused: the order, and what exactly-once delivery counts by. `author` is
 * the operator's display name for operator entries (null for the others).
 */
export interface TranscriptEntry {
  seq: number;
  role: EntryRole;
  author: string | null;
  content: string;
  at: number;
}

/** The inbox index event the conversation object emits on ANALYTICS_QUEUE (src/analytics/events.ts). */
export type InboxEvent = InboxEventSchema;

/** Frames a live socket client (operator console or visitor widget) sends. */
export type LiveClientFrame = { type: "resume"; after: number } | { type: "ping" };

/** Frames the conversation object sends on a live socket. */
export type LiveServerFrame =
  | ({ type: "entry" } & TranscriptEntry)
  | { type: "state"; status: InboxStatus; holder: Holder | Pick<Holder, "name"> | null; version: number }
  | { type: "pong" }
  | { type: "error"; code: string; message: string };

/** The visitor's live ticket answer: `new WebSocket(url)` (the ticket is also in the url's query). */
export interface LiveTicket {
  url: string;
  ticket: string;
  expires_at: number;
}

/** One inbox row as the REST API answers it (snake_case like the rest of the API). */
export interface InboxItem {
  id: string;
  status: InboxStatus;
  channel: string;
  experiment: string | null;
  variant: string | null;
  csat: number | null;
  total_cost_usd: number;
  turns: number;
  started_at: number;
  last_activity_at: number;
  waiting_since: number | null;
  holder: { operator_id: string; name: string } | null;
  preview: string;
}

/** The handoff fields the conversation object keeps (and answers in its views). */
export interface HandoffMeta {
  holder: Holder | null;
  /** Set on escalation, cleared on takeover. */
  waitingSince: number | null;
  /** The first takeover. */
  takenAt: number | null;
  firstHumanReplyAt: number | null;
  humanHandled: boolean;
  resolvedBy: "human" | "bot" | null;
}
