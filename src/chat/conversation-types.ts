import { z } from "zod";
import { TURN_OUTCOMES } from "../db/enums";

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

const ID = z.string().min(1).max(256);

export const StartInput = z
  .object({
    tenantId: z.string().min(1).max(63),
    conversationId: ID,
    userId: ID,
    channel: z.string().min(1).max(32),
    greeting: z.string().max(2_000),
    // Several running experiments are recorded joined by commas (src/experiments/apply.ts).
    experiment: z.string().max(512).nullable(),
    variant: z.string().max(512).nullable(),
    idleTimeoutMs: z
      .number()
      .int()
      .min(1_000)
      .max(7 * 86_400_000),
  })
  .strict();
export type StartInput = z.infer<typeof StartInput>;

const Message = z
  .object({
    content: z.string().max(200_000),
    tokens: z.number().int().min(0).max(10_000_000),
    toolCalls: z
      .array(z.object({ id: z.string(), name: z.string(), arguments: z.string() }).strict())
      .optional(),
  })
  .strict();

export const TurnInput = z
  .object({
    at: z.number().int().nonnegative(),
    user: Message,
    /** null when no answer was produced (the provider failed, or safety blocked it and sent a policy message). */
    assistant: Message.nullable(),
    inputTokens: z.number().int().min(0),
    outputTokens: z.number().int().min(0),
    costUsd: z.number().min(0),
    latencyMs: z.number().min(0),
    outcome: z.enum(TURN_OUTCOMES),
    toolsUsed: z.array(z.string().max(64)).max(64),
    /** Set when the visitor asked for a human. */
    escalate: z.string().max(200).optional(),
    escalationEmail: z.string().max(320),
  })
  .strict();
export type TurnInput = z.infer<typeof TurnInput>;

export const EndInput = z.object({ resolved: z.boolean(), reason: z.string().max(100) }).strict();
export const FeedbackInput = z
  .object({ csat: z.number().int().min(1).max(5), comment: z.string().max(2_000).nullable() })
  .strict();

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
