/**
 * The closed lists the tables, the events and the Durable Objects share. A module of their own, so
 * an isolate that needs a list (every Durable Object) does not load drizzle and every table with it.
 */

/** How one visitor message was answered (the turn's outcome; see docs/analytics.md). */
export const TURN_OUTCOMES = ["ok", "error", "disconnected", "blocked", "human", "refused"] as const;

/** Refusals by what refused: the rate levels (address included) and the budgets. */
export const REFUSAL_REASONS = [
  "user",
  "tenant",
  "global",
  "address",
  "monthly_tokens",
  "visitor_tokens",
  "daily_cost",
  "conversation_cost",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
