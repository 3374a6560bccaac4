import { type DayTotals, visitorKey } from "./budget";
import { monthOf } from "./periods";
import { isVisitor } from "./types";

/** One settlement, as the checkpoint folds it into the day, conversation and visitor tables. */
export interface Settled {
  day: string;
  conv: string;
  /** The end user; a browser visitor's tokens also count in its month total. */
  user: string;
  inputTokens: number;
  outputTokens: number;
  nanos: number;
  at: number;
  settleNo: number;
}

/**
 * Settlements committed (in their admission rows) but not yet folded into the per-day,
 * per-conversation and per-visitor-month tables. A settlement writes one row; the alarm folds the
 * deltas in with one statement per day, conversation and visitor touched, and a restart replays
 * the rows it had not folded yet (their settle numbers are above the checkpoint's). Fewer pages
 * written per message.
 */
export class PendingRollup {
  days = new Map<string, DayTotals>();
  convs = new Map<string, { nanos: number; at: number }>();
  /** Browser visitors' tokens per budget month, by `visitorKey`. */
  visitors = new Map<string, { month: string; user: string; tokens: number }>();
  /** The highest settle number folded into these deltas. */
  lastSettleNo = 0;

  add(s: Settled): void {
    const d = this.days.get(s.day) ?? { inputTokens: 0, outputTokens: 0, nanos: 0, messages: 0 };
    d.inputTokens += s.inputTokens;
    d.outputTokens += s.outputTokens;
    d.nanos += s.nanos;
    d.messages += 1;
    this.days.set(s.day, d);
    const c = this.convs.get(s.conv);
    this.convs.set(s.conv, { nanos: (c?.nanos ?? 0) + s.nanos, at: Math.max(c?.at ?? 0, s.at) });
    if (isVisitor(s.user)) {
      const month = monthOf(s.day);
      const key = visitorKey(month, s.user);
      const v = this.visitors.get(key);
      const tokens = s.inputTokens + s.outputTokens;
      this.visitors.set(key, { month, user: s.user, tokens: (v?.tokens ?? 0) + tokens });
    }
    this.lastSettleNo = Math.max(this.lastSettleNo, s.settleNo);
  }

  /** Committed cost of a conversation not yet in its table row. */
  convNanos(conv: string): number {
    return this.convs.get(conv)?.nanos ?? 0;
  }

  /** Committed tokens of a visitor's month not yet in its table row. */
  visitorTokens(month: string, user: string): number {
    return this.visitors.get(visitorKey(month, user))?.tokens ?? 0;
  }

  get empty(): boolean {
    return this.days.size === 0;
  }

  clear(): void {
    this.days = new Map();
    this.convs = new Map();
    this.visitors = new Map();
  }
}
