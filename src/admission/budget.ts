import { monthOf } from "./periods";
import { affordableOutput, costNanos, nanosOf, type PricingOverrides, priceOf } from "./pricing";
import {
  type AdmissionConfig,
  type BudgetKind,
  type Degradation,
  isVisitor,
  MIN_OUTPUT_TOKENS,
} from "./types";

/** An admitted, not yet settled message: what it holds back from each budget. */
export interface Reservation {
  seq: number;
  tag: string;
  ts: number;
  user: string;
  conv: string;
  model: string;
  /** The tenant-local day and month of admission; settlement commits to the same periods. */
  day: string;
  month: string;
  tokens: number;
  nanos: number;
  expiresAt: number;
  lease: string | null;
}

/** Committed usage of one tenant-local day. */
export interface DayTotals {
  inputTokens: number;
  outputTokens: number;
  nanos: number;
  messages: number;
}

const add = (m: Map<string, number>, k: string, v: number) => {
  const next = (m.get(k) ?? 0) + v;
  if (next === 0) m.delete(k);
  else m.set(k, next);
};

// Conversations touched recently, kept in memory; older ones are read back from SQLite on demand.
const CONVERSATION_CACHE = 10_000;
// Visitors' month totals touched recently, the same way (an LRU over read-through from SQLite).
const VISITOR_CACHE = 10_000;

/** The key of a visitor's total in a budget month. */
export const visitorKey = (month: string, user: string): string => `${month} ${user}`;

/** The most tokens one browser visitor may use in a month; infinite when the share is 1 (off). */
export function visitorTokenLimit(
  cfg: Pick<AdmissionConfig, "monthlyTokenBudget" | "visitorMonthlyTokenShare">,
): number {
  if (cfg.visitorMonthlyTokenShare >= 1) return Number.POSITIVE_INFINITY;
  // The epsilon keeps 0.29 * 100 at 29 tokens, not 28.
  return Math.floor(cfg.visitorMonthlyTokenShare * cfg.monthlyTokenBudget + 1e-6);
}

/**
 * Committed and reserved amounts per budget period, in memory. SQLite holds the durable truth
 * (usage per day, per conversation, open reservations); this is rebuilt from it on start.
 */
export class Ledger {
  readonly open = new Map<number, Reservation>();
  readonly days = new Map<string, DayTotals>();
  readonly #monthTokens = new Map<string, number>();
  readonly #reservedMonthTokens = new Map<string, number>();
  readonly #reservedDayNanos = new Map<string, number>();
  readonly #reservedConvNanos = new Map<string, number>();
  readonly #convNanos = new Map<string, number>();
  readonly #visitorTokens = new Map<string, number>();
  readonly #reservedVisitorTokens = new Map<string, number>();

  constructor(
    private readonly loadConversation: (conv: string) => number,
    /** A visitor's committed tokens in a month as storage has them (`visitorKey`). */
    private readonly loadVisitor: (month: string, user: string) => number,
  ) {}

  /** Adds a day's committed totals read from storage. */
  loadDay(day: string, t: DayTotals): void {
    this.days.set(day, t);
    add(this.#monthTokens, day.slice(0, 7), t.inputTokens + t.outputTokens);
  }

  /** Holds back a reservation's tokens and cost. */
  reserve(r: Reservation): void {
    this.open.set(r.seq, r);
    add(this.#reservedMonthTokens, r.month, r.tokens);
    add(this.#reservedDayNanos, r.day, r.nanos);
    add(this.#reservedConvNanos, r.conv, r.nanos);
    if (isVisitor(r.user)) add(this.#reservedVisitorTokens, visitorKey(r.month, r.user), r.tokens);
  }

  /** Gives a reservation's hold back (settled or expired). */
  release(r: Reservation): void {
    if (!this.open.delete(r.seq)) return;
    add(this.#reservedMonthTokens, r.month, -r.tokens);
    add(this.#reservedDayNanos, r.day, -r.nanos);
    add(this.#reservedConvNanos, r.conv, -r.nanos);
    if (isVisitor(r.user)) add(this.#reservedVisitorTokens, visitorKey(r.month, r.user), -r.tokens);
  }

  /** Records actual usage against a day, its month, a conversation and (a browser visitor's) user. */
  commit(
    day: string,
    conv: string,
    user: string,
    inputTokens: number,
    outputTokens: number,
    nanos: number,
  ): void {
    const t = this.days.get(day) ?? { inputTokens: 0, outputTokens: 0, nanos: 0, messages: 0 };
    t.inputTokens += inputTokens;
    t.outputTokens += outputTokens;
    t.nanos += nanos;
    t.messages += 1;
    this.days.set(day, t);
    add(this.#monthTokens, day.slice(0, 7), inputTokens + outputTokens);
    this.#rememberConversation(conv, this.conversationNanos(conv) + nanos);
    if (isVisitor(user)) {
      const month = day.slice(0, 7);
      this.#rememberVisitor(
        visitorKey(month, user),
        this.visitorTokens(month, user) + inputTokens + outputTokens,
      );
    }
  }

  monthTokens(month: string): number {
    return this.#monthTokens.get(month) ?? 0;
  }

  reservedMonthTokens(month: string): number {
    return this.#reservedMonthTokens.get(month) ?? 0;
  }

  dayNanos(day: string): number {
    return this.days.get(day)?.nanos ?? 0;
  }

  reservedDayNanos(day: string): number {
    return this.#reservedDayNanos.get(day) ?? 0;
  }

  conversationNanos(conv: string): number {
    const hit = this.#convNanos.get(conv);
    if (hit !== undefined) return hit;
    const loaded = this.loadConversation(conv);
    this.#rememberConversation(conv, loaded);
    return loaded;
  }

  reservedConversationNanos(conv: string): number {
    return this.#reservedConvNanos.get(conv) ?? 0;
  }

  /** A browser visitor's committed tokens in a budget month. */
  visitorTokens(month: string, user: string): number {
    const key = visitorKey(month, user);
    const hit = this.#visitorTokens.get(key);
    if (hit !== undefined) return hit;
    const loaded = this.loadVisitor(month, user);
    this.#rememberVisitor(key, loaded);
    return loaded;
  }

  reservedVisitorTokens(month: string, user: string): number {
    return this.#reservedVisitorTokens.get(visitorKey(month, user)) ?? 0;
  }

  /** Forgets days older than `oldest` (a day key) from memory. */
  dropDaysBefore(oldest: string): void {
    for (const [day, t] of this.days) {
      if (day < oldest) {
        this.days.delete(day);
        add(this.#monthTokens, day.slice(0, 7), -(t.inputTokens + t.outputTokens));
      }
    }
  }

  #rememberConversation(conv: string, nanos: number): void {
    remember(this.#convNanos, conv, nanos, CONVERSATION_CACHE);
  }

  #rememberVisitor(key: string, tokens: number): void {
    remember(this.#visitorTokens, key, tokens, VISITOR_CACHE);
  }
}

/** Sets `k` as the most recently used entry of an LRU map, dropping the least recent past `max`. */
function remember(m: Map<string, number>, k: string, v: number, max: number): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > max) {
    const oldest = m.keys().next().value;
    if (oldest !== undefined) m.delete(oldest);
  }
}

/** What is left of each budget for one request. */
export interface Headroom {
  tokens: number;
  /** What the requesting browser visitor has left of its share of the month (infinite for others). */
  visitorTokens: number;
  dayNanos: number;
  convNanos: number;
}

/**
 * What each budget has left for `user`'s request on `day` in conversation `conv`:
 * limit - committed - reserved.
 */
export function headroom(l: Ledger, cfg: AdmissionConfig, day: string, conv: string, user: string): Headroom {
  const month = monthOf(day);
  const visitorLimit = isVisitor(user) ? visitorTokenLimit(cfg) : Number.POSITIVE_INFINITY;
  return {
    tokens: cfg.monthlyTokenBudget - l.monthTokens(month) - l.reservedMonthTokens(month),
    visitorTokens: Number.isFinite(visitorLimit)
      ? visitorLimit - l.visitorTokens(month, user) - l.reservedVisitorTokens(month, user)
      : visitorLimit,
    dayNanos:
      cfg.dailyCostBudgetUsd === null
        ? Number.POSITIVE_INFINITY
        : nanosOf(cfg.dailyCostBudgetUsd) - l.dayNanos(day) - l.reservedDayNanos(day),
    convNanos:
      nanosOf(cfg.conversationCostCapUsd) - l.conversationNanos(conv) - l.reservedConversationNanos(conv),
  };
}

export interface PlanRequest {
  model: string;
  fallbackModel: string | null;
  inputTokens: number;
  maxTokens: number;
  overrides: PricingOverrides;
}

export type Plan =
  | {
      ok: true;
      model: string;
      maxTokens: number;
      tokens: number;
      nanos: number;
      degraded: Degradation[];
      budget: BudgetKind | null;
    }
  | { ok: false; budget: BudgetKind };

/** The most output tokens `model` can have under every budget, and which budget binds. */
function ceilingFor(req: PlanRequest, model: string, room: Headroom): { out: number; binding: BudgetKind } {
  const price = priceOf(model, req.overrides);
  const limits: Array<[BudgetKind, number]> = [
    ["monthly_tokens", room.tokens - req.inputTokens],
    ["visitor_tokens", room.visitorTokens - req.inputTokens],
    ["daily_cost", affordableOutput(price, req.inputTokens, room.dayNanos)],
    ["conversation_cost", affordableOutput(price, req.inputTokens, room.convNanos)],
  ];
  let best: [BudgetKind, number] = ["monthly_tokens", Number.POSITIVE_INFINITY];
  for (const l of limits) if (l[1] < best[1]) best = l;
  return { out: best[1], binding: best[0] };
}

/**
 * Decides what a request may reserve: the whole request if every budget covers it; else the same
 * model with max_tokens lowered to what the budgets cover; else the tenant's fallback model
 * (lowered too if need be); else a refusal naming the budget that binds.
 */
export function planBudget(req: PlanRequest, room: Headroom): Plan {
  const floor = Math.min(MIN_OUTPUT_TOKENS, req.maxTokens);
  const candidates = [req.model];
  if (req.fallbackModel && req.fallbackModel !== req.model) candidates.push(req.fallbackModel);
  let binding: BudgetKind = "monthly_tokens";
  for (const model of candidates) {
    const ceiling = ceilingFor(req, model, room);
    binding = ceiling.binding;
    if (ceiling.out < floor) continue;
    const maxTokens = Math.min(req.maxTokens, ceiling.out);
    const degraded: Degradation[] = [];
    if (model !== req.model) degraded.push("fallback_model");
    if (maxTokens < req.maxTokens) degraded.push("max_tokens");
    return {
      ok: true,
      model,
      maxTokens,
      tokens: req.inputTokens + maxTokens,
      nanos: costNanos(priceOf(model, req.overrides), req.inputTokens, maxTokens),
      degraded,
      budget: degraded.length > 0 ? ceiling.binding : null,
    };
  }
  return { ok: false, budget: binding };
}
