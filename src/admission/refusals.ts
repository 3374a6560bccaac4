import { visitorTokenLimit } from "./budget";
import { nextDayStart, nextMonthStart } from "./periods";
import type { AdmissionConfig, BudgetKind, RateLevel, RateLevelInfo, RateLimitInfo, Refused } from "./types";

/** Whole seconds to wait, at least one: Retry-After and RateLimit-Reset never say 0 to a refusal. */
export const ceilSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/**
 * A refusal by a rate level: nothing left at that level until `ms` from now. `levels` are every
 * level in force as they stand (a refusal consumes nothing); the refusing one is marked empty.
 */
export function rateRefusal(level: RateLevel, limit: number, ms: number, levels: RateLevelInfo[]): Refused {
  const seconds = ceilSeconds(ms);
  return {
    ok: false,
    level,
    code: "RATE_LIMITED",
    message: `${level} rate limit reached (${limit} messages per minute)`,
    retryAfterSeconds: seconds,
    budget: null,
    rateLimit: { level, limit, remaining: 0, resetSeconds: seconds },
    rateLevels: levels.map((l) => (l.level === level ? { ...l, remaining: 0, resetSeconds: seconds } : l)),
  };
}

const BUDGET_NAME: Record<BudgetKind, string> = {
  monthly_tokens: "monthly token",
  visitor_tokens: "visitor token",
  daily_cost: "daily cost",
  conversation_cost: "conversation cost",
};

type BudgetConfig = Pick<AdmissionConfig, "timezone" | "monthlyTokenBudget" | "visitorMonthlyTokenShare">;

const percent = (share: number) => `${Number((share * 100).toFixed(4))}%`;

/** What a budget refusal says; the visitor's names its share, so a tenant can tell the two apart. */
function budgetMessage(budget: BudgetKind, cfg: BudgetConfig): string {
  if (budget !== "visitor_tokens") return `${BUDGET_NAME[budget]} budget exhausted`;
  const limit = visitorTokenLimit(cfg).toLocaleString("en-US");
  return `this visitor's share of the monthly token budget is used up (${percent(cfg.visitorMonthlyTokenShare)}, ${limit} tokens a month)`;
}

/**
 * A refusal by a budget. Retry-After is when the budget resets: the next local month (monthly and
 * visitor tokens) or day in the tenant's time zone. A conversation's cap never resets, so it says
 * one day (start a new conversation instead). The RateLimit-* headers keep describing the request
 * rate, untouched.
 */
export function budgetRefusal(
  budget: BudgetKind,
  now: number,
  cfg: BudgetConfig,
  rate: RateLimitInfo,
  levels: RateLevelInfo[],
): Refused {
  const tz = cfg.timezone;
  const resetAt =
    budget === "monthly_tokens" || budget === "visitor_tokens"
      ? nextMonthStart(now, tz)
      : budget === "daily_cost"
        ? nextDayStart(now, tz)
        : now + 86_400_000;
  return {
    ok: false,
    level: "budget",
    code: "BUDGET_EXCEEDED",
    message: budgetMessage(budget, cfg),
    retryAfterSeconds: ceilSeconds(resetAt - now),
    budget,
    rateLimit: rate,
    rateLevels: levels,
  };
}
