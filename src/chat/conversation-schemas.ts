/**
 * The Conversation object's input shapes (zod), loaded in its constructor (see conversationShapes
 * in ./conversation-do): an isolate evaluating its modules at start does not build zod
 * (bench/startup.ts). Types are in ./conversation-types.
 */
import { z } from "zod";
import { TURN_OUTCOMES } from "../db/enums";

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
    /** The tenant's retention (src/privacy/retention.ts): the transcript is deleted this long after the last activity. */
    retentionMs: z
      .number()
      .int()
      .min(86_400_000)
      .max(3650 * 86_400_000)
      .optional(),
  })
  .strict();

const Message = z
  .object({
    content: z.string().max(200_000),
    tokens: z.number().int().min(0).max(10_000_000),
    toolCalls: z
      .array(z.object({ id: z.string(), name: z.string(), arguments: z.string() }).strict())
      .optional(),
  })
  .strict();

/** The shape of a recorded turn; the object does not parse it again (the worker built it). */
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
    /** The request's origin: the console link in an escalation notice when PUBLIC_BASE_URL is unset. */
    origin: z.string().max(2048).optional(),
  })
  .strict();

export const EndInput = z.object({ resolved: z.boolean(), reason: z.string().max(100) }).strict();
export const FeedbackInput = z
  .object({ csat: z.number().int().min(1).max(5), comment: z.string().max(2_000).nullable() })
  .strict();
/** An operator's message (docs/handoff.md): already redacted and checked by the worker. */
export const OperatorMessage = z
  .object({ content: z.string().min(1).max(8_000), tokens: z.number().int().min(0).max(10_000_000) })
  .strict();
