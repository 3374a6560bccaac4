import type { z } from "zod";
import type { AddressedAdmission, AddressHit } from "../admission/address-windows";
import type { AdmitInput, GateOutcome } from "../admission/types";
import type { InboxEvent } from "../analytics/events";
import type { EntryRole, Holder, TranscriptEntry } from "../handoff/types";
import type * as Shapes from "./conversation-schemas";

/**
 * Where a conversation stands: open (the bot answers), escalated (a human is asked in), human (an
 * operator holds it and the bot does not answer), or ended.
 */
export type ConversationState = "open" | "escalated" | "human" | "resolved" | "unresolved";

/**
 * A stored message; `tokens` is the worker's estimate, kept so history can be trimmed without
 * re-tokenizing. `seq` is its place in the conversation (1, 2, ...; docs/handoff.md); `author`
 * names an operator entry's operator.
 */
export interface StoredMessage {
  seq: number;
  role: EntryRole;
  author?: string | null;
  content: string;
  tokens: number;
  at: number;
  toolCalls?: { id: string; name: string; arguments: string }[];
}

/**
 * A message of the history the model is sent: operator entries as the assistant's, no notices.
 * Only what the model is sent crosses the RPC (seq, author and times stay in the object).
 */
export interface HistoryMessage {
  role: "user" | "assistant";
  content: string;
  toolCalls?: StoredMessage["toolCalls"];
}

/** Who acts on a held conversation: the operator, and whether it may act on another's hold (owners, keys). */
export interface HandoffActor {
  operatorId: string | null;
  name: string;
  override: boolean;
}

/** What a handoff call answers: the conversation, its last entry (the inbox preview), the entry it added. */
export interface HandoffResult {
  view: ConversationView;
  preview: string;
  entry?: TranscriptEntry;
}

// The shapes are in ./conversation-schemas (zod), loaded by the object when it starts rather than
// when the isolate evaluates its modules (bench/startup.ts).
export type StartInput = z.infer<typeof Shapes.StartInput>;
export type TurnInput = z.infer<typeof Shapes.TurnInput>;

/** What the worker needs of a conversation before a turn. */
export interface ConversationView {
  conversationId: string;
  tenantId: string;
  userId: string;
  state: ConversationState;
  turnCount: number;
  startedAt: number;
  lastActivityAt: number;
  totalTokens: number;
  totalCostUsd: number;
  experiment: string | null;
  variant: string | null;
  channel: string;
  csat: number | null;
  /** Failed answers in a row; a second one escalates. */
  consecutiveFailures: number;
  /** Estimated tokens of the whole stored history. */
  historyTokens: number;
  /** The operator holding it (state human). */
  holder: Holder | null;
  /** Since when it waits for a human (state escalated). */
  waitingSince: number | null;
  /** The highest entry seq: the inbox version. */
  version: number;
}

export type PrepareResult =
  | { ok: true; view: ConversationView; history: HistoryMessage[] }
  | { ok: false; reason: "not_found" | "ended" | "full"; view?: ConversationView };

/**
 * A message's one call to its conversation before the model: the object answers its state and
 * history and asks the tenant's gate itself (the address count, admission), so the worker makes a
 * single round trip.
 */
export interface TurnCall {
  /** A browser's end user: a conversation another user started reads as unknown. */
  owner?: string;
  /** The newest history that fits in this many tokens is sent (and reserved). */
  historyBudget: number;
  /** A browser's address hit: counted whatever the conversation's state. */
  address?: AddressHit;
  /**
   * Admission, asked only when the conversation can take the message: counted against the
   * conversation's own user, its input estimate raised by the history returned.
   */
  admit?: AdmitInput;
}

export interface TurnCallResult {
  conversation: PrepareResult;
  /** Estimated tokens of the history returned: what admission reserved for it. */
  historyTokens: number;
  /** What the tenant's gate answered, or why it could not be asked; absent when nothing was asked. */
  gate?: { reached: true; outcome: GateOutcome<AddressedAdmission> } | { reached: false; error: string };
}

export interface TurnResult {
  view: ConversationView;
  /** True when this turn moved the conversation to escalated. */
  escalatedNow: boolean;
  consecutiveFailures: number;
  /** The turn's inbox event, for the worker to send with its analytics (none after an escalation: the object sent it). */
  inbox?: InboxEvent;
}

/** A message sent to the notifications queue: the transcript of an escalated conversation. */
export interface EscalationNotice {
  type: "escalation";
  id: string;
  tenantId: string;
  conversationId: string;
  userId: string;
  to: string;
  reason: string;
  at: number;
  /** The newest entries, each cut to a few thousand characters. */
  transcript: { role: string; content: string; at: number }[];
  /** How many earlier entries `transcript` leaves out. */
  omitted?: number;
}
