import type { z } from "zod";
import type { AddressedAdmission, AddressHit } from "../admission/address-windows";
import type { AdmitInput, GateOutcome } from "../admission/types";
import type * as Shapes from "./conversation-schemas";

/** Where a conversation stands: open (talking), escalated (a human is asked in), or ended. */
export type ConversationState = "open" | "escalated" | "resolved" | "unresolved";

/** A stored message; `tokens` is the worker's estimate, kept so history can be trimmed without re-tokenizing. */
export interface StoredMessage {
  role: "user" | "assistant";
  content: string;
  tokens: number;
  at: number;
  toolCalls?: { id: string; name: string; arguments: string }[];
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
}

export type PrepareResult =
  | { ok: true; view: ConversationView; history: StoredMessage[] }
  | { ok: false; reason: "not_found" | "ended"; view?: ConversationView };

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
  transcript: { role: string; content: string; at: number }[];
}
