import { z } from "zod";
import { REFUSAL_REASONS, TURN_OUTCOMES } from "../db/enums.ts";

/**
 * The analytics events the worker produces and the queue consumer writes into Postgres. Each
 * carries an `id` made at produce time (a UUID): the consumer's writes are idempotent by it, so a
 * redelivered message never counts twice. Times are epoch milliseconds.
 */
const base = {
  id: z.uuid(),
  tenantId: z.string().min(1).max(63),
  conversationId: z.string().min(1).max(128),
  userId: z.string().min(1).max(256),
  at: z.number().int().nonnegative(),
};

const ratio = z.number().finite().nonnegative();

/** One tool call the platform ran for a turn (src/tools/loop.ts); `failure` is a ToolFailure. */
export const ToolCallRecord = z.object({
  name: z.string().max(64),
  ok: z.boolean(),
  failure: z.string().max(32).nullable(),
  latencyMs: ratio,
});

/**
 * What one answer made of the tenant's knowledge (src/knowledge, docs/knowledge.md); only on
 * answers (`ok`) to messages retrieval ran for.
 */
export const TurnKnowledge = z.object({
  /** The sources the answer cites, first cited first: grounded when there is one. */
  sources: z.array(z.uuid()).max(32),
  /** The answer is the tenant's "I don't know". */
  unanswered: z.boolean(),
});

/** One visitor message that got an answer, whatever answered it (a model, safety, the hand-over). */
export const TurnEvent = z.object({
  type: z.literal("turn"),
  ...base,
  /** The message's position in its conversation, from 0. */
  turnIndex: z.number().int().nonnegative(),
  /** The model name requested (the tenant's, a variant's or the caller's), as written: maybe an alias. */
  model: z.string().max(128),
  /**
   * The model actually called last, an alias resolved (the fallback when it answered); null when
   * no model was called (blocked input, hand-over). Events from before it existed read as null.
   */
  calledModel: z.string().max(128).nullable().default(null),
  // Several running experiments are recorded joined by commas (src/experiments/apply.ts).
  experiment: z.string().max(512).nullable(),
  variant: z.string().max(512).nullable(),
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  costUsd: ratio,
  latencyMs: ratio,
  firstTokenMs: ratio.nullable(),
  /**
   * ok: a model answered; error: the model failed; disconnected: the client left mid-answer;
   * blocked: safety answered (input or output); human: handed to a human without a model call;
   * refused: admission refused it (not produced: refusals travel as `refusal` events).
   */
  outcome: z.enum(TURN_OUTCOMES),
  error: z.string().max(500).nullable(),
  toolsUsed: z.array(z.string().max(64)).max(64),
  /** Each tool call the tool loop ran for the message; absent: none (and events from before it). */
  tools: z.array(ToolCallRecord).max(64).optional(),
  /** Absent: knowledge off or no indexed source, the message not answered, or an older event. */
  knowledge: TurnKnowledge.optional(),
  channel: z.string().max(32),
});

/** The reference design's ConversationMetrics, emitted once when a conversation ends. */
export const ConversationEvent = z.object({
  type: z.literal("conversation"),
  ...base,
  startedAt: z.number().int().nonnegative(),
  endedAt: z.number().int().nonnegative(),
  turnCount: z.number().int().nonnegative(),
  resolved: z.boolean(),
  escalated: z.boolean(),
  /** 1-5, or null when the visitor did not rate (feedback may also arrive later as its own event). */
  csat: z.number().int().min(1).max(5).nullable(),
  totalTokens: z.number().int().nonnegative(),
  totalCostUsd: ratio,
  avgResponseMs: ratio,
  toolsUsed: z.array(z.string().max(64)).max(64),
  channel: z.string().max(32),
  // Several running experiments are recorded joined by commas (src/experiments/apply.ts).
  experiment: z.string().max(512).nullable(),
  variant: z.string().max(512).nullable(),
  errorCount: z.number().int().nonnegative(),
  // Human handoff (docs/handoff.md); absent on summaries from before it.
  humanHandled: z.boolean().optional(),
  /** First operator message minus the moment a human was first asked for (escalation, else takeover). */
  firstHumanReplyMs: ratio.nullable().optional(),
  resolvedBy: z.enum(["human", "bot"]).nullable().optional(),
});

/** A visitor's rating of a conversation. */
export const FeedbackEvent = z.object({
  type: z.literal("feedback"),
  ...base,
  csat: z.number().int().min(1).max(5),
  comment: z.string().max(2000).nullable(),
});

/** A blocked topic hit on the visitor's input or on the model's output. */
export const SafetyEvent = z.object({
  type: z.literal("safety"),
  ...base,
  direction: z.enum(["input", "output"]),
  topic: z.string().max(200),
});

/**
 * Messages admission refused, counted in the isolate: one event per tenant and reason covers every
 * refusal of one flush (`at` is the first of them), so a flood of refused requests stays a trickle
 * of events. Reasons: the rate level that refused (user, tenant, global) or the budget.
 */
export const RefusalEvent = z.object({
  type: z.literal("refusal"),
  id: z.uuid(),
  tenantId: z.string().min(1).max(63),
  at: z.number().int().nonnegative(),
  reason: z.enum(REFUSAL_REASONS),
  count: z.number().int().min(1).max(1_000_000),
});

const holder = z.object({ operatorId: z.string().min(1).max(128), name: z.string().max(200) });

/**
 * A conversation's state for the inbox index (docs/handoff.md), emitted by its object after each
 * change: `version` is the object's highest entry seq then, so an older event never overwrites a
 * newer one; `entries` are those added since the previous inbox event (stored, redacted text).
 */
export const InboxEvent = z.object({
  type: z.literal("inbox"),
  ...base,
  version: z.number().int().nonnegative(),
  status: z.enum(["open", "waiting", "human", "resolved", "ended"]),
  channel: z.string().max(32),
  experiment: z.string().max(512).nullable(),
  variant: z.string().max(512).nullable(),
  csat: z.number().int().min(1).max(5).nullable(),
  totalCostUsd: ratio,
  totalTokens: z.number().int().nonnegative(),
  turnCount: z.number().int().nonnegative(),
  startedAt: z.number().int().nonnegative(),
  lastActivityAt: z.number().int().nonnegative(),
  waitingSince: z.number().int().nonnegative().nullable(),
  holder: holder.nullable(),
  entries: z
    .array(
      z.object({
        seq: z.number().int().positive(),
        role: z.enum(["user", "assistant", "operator", "system"]),
        author: z.string().max(200).nullable(),
        content: z.string().max(200_000),
        at: z.number().int().nonnegative(),
      }),
    )
    .max(500),
});

export const AnalyticsEvent = z.discriminatedUnion("type", [
  TurnEvent,
  ConversationEvent,
  FeedbackEvent,
  SafetyEvent,
  RefusalEvent,
  InboxEvent,
]);

export type TurnEvent = z.infer<typeof TurnEvent>;
export type ToolCallRecord = z.infer<typeof ToolCallRecord>;
export type TurnKnowledge = z.infer<typeof TurnKnowledge>;
export type ConversationEvent = z.infer<typeof ConversationEvent>;
export type FeedbackEvent = z.infer<typeof FeedbackEvent>;
export type SafetyEvent = z.infer<typeof SafetyEvent>;
export type RefusalEvent = z.infer<typeof RefusalEvent>;
export type InboxEvent = z.infer<typeof InboxEvent>;
export type AnalyticsEvent = z.infer<typeof AnalyticsEvent>;
