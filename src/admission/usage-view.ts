import type { Ledger } from "./budget";
import { lastDays, localDay, monthOf, nextDayStart, nextMonthStart } from "./periods";
import { nanosOf, usd } from "./pricing";
import type { AdmissionConfig } from "./types";
import { WINDOW_MS } from "./types";

/** A tenant's cost view: the reference design's get_cost_summary plus tokens and window state. */
export interface UsageView {
  tenantId: string;
  timezone: string;
  asOf: number;
  month: {
    month: string;
    tokenBudget: number;
    tokensUsed: number;
    tokensReserved: number;
    tokensLeft: number;
    costUsd: number;
    resetsAt: number;
  };
  today: {
    date: string;
    costUsd: number;
    reservedUsd: number;
    budgetUsd: number | null;
    leftUsd: number | null;
    resetsAt: number;
  };
  /** The last N local days, newest first. */
  daily: Array<{
    date: string;
    costUsd: number;
    inputTokens: number;
    outputTokens: number;
    messages: number;
  }>;
  total7dUsd: number;
  avgDaily7dUsd: number;
  window: {
    seconds: number;
    tenantLimit: number;
    tenantUsed: number;
    tenantRemaining: number;
    resetSeconds: number;
    activeUsers: number;
    openReservations: number;
    leasedGlobalUnits: number;
  };
}

export interface UsageInputs {
  tenantId: string;
  days: number;
  config: AdmissionConfig;
  now: number;
  ledger: Ledger;
  tenantInWindow: number;
  tenantResetSeconds: number;
  activeUsers: number;
  leasedUnits: number;
}

/** Assembles the view from the ledger; every amount is summed in nano-dollars, then converted once. */
export function buildUsageView(x: UsageInputs): UsageView {
  const { config: cfg, ledger, now } = x;
  const today = localDay(now, cfg.timezone);
  const month = monthOf(today);
  let monthNanos = 0;
  for (const [day, t] of ledger.days) if (day.startsWith(month)) monthNanos += t.nanos;
  const used = ledger.monthTokens(month);
  const reserved = ledger.reservedMonthTokens(month);
  const zero = { inputTokens: 0, outputTokens: 0, nanos: 0, messages: 0 };
  const daily = lastDays(today, x.days).map((date) => {
    const t = ledger.days.get(date) ?? zero;
    return {
      date,
      costUsd: usd(t.nanos),
      inputTokens: t.inputTokens,
      outputTokens: t.outputTokens,
      messages: t.messages,
    };
  });
  const week = lastDays(today, 7).reduce((n, d) => n + (ledger.days.get(d)?.nanos ?? 0), 0);
  const todayNanos = ledger.dayNanos(today);
  const reservedToday = ledger.reservedDayNanos(today);
  const budget = cfg.dailyCostBudgetUsd;
  return {
    tenantId: x.tenantId,
    timezone: cfg.timezone,
    asOf: now,
    month: {
      month,
      tokenBudget: cfg.monthlyTokenBudget,
      tokensUsed: used,
      tokensReserved: reserved,
      tokensLeft: Math.max(0, cfg.monthlyTokenBudget - used - reserved),
      costUsd: usd(monthNanos),
      resetsAt: nextMonthStart(now, cfg.timezone),
    },
    today: {
      date: today,
      costUsd: usd(todayNanos),
      reservedUsd: usd(reservedToday),
      budgetUsd: budget,
      leftUsd: budget === null ? null : usd(Math.max(0, nanosOf(budget) - todayNanos - reservedToday)),
      resetsAt: nextDayStart(now, cfg.timezone),
    },
    daily,
    total7dUsd: usd(week),
    avgDaily7dUsd: usd(Math.round(week / 7)),
    window: {
      seconds: WINDOW_MS / 1000,
      tenantLimit: cfg.rateLimitPerMinute,
      tenantUsed: x.tenantInWindow,
      tenantRemaining: Math.max(0, cfg.rateLimitPerMinute - x.tenantInWindow),
      resetSeconds: x.tenantResetSeconds,
      activeUsers: x.activeUsers,
      openReservations: ledger.open.size,
      leasedGlobalUnits: x.leasedUnits,
    },
  };
}
