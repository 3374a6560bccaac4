/**
 * The dashboard's figures computed straight from the events, without the rollups, the histogram
 * code or SQL: what the dashboard must equal. Percentiles: the exact nearest-rank value of the raw
 * latencies, then the midpoint of its histogram bucket (found here by a loop, not by bit tricks).
 */
import type {
  AnalyticsEvent,
  ConversationEvent,
  FeedbackEvent,
  TurnEvent,
} from "../../../src/analytics/events";
import type { Dashboard } from "../../../src/api-types";

const DAY = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The midpoint of the histogram bucket holding `ms`: whole ms below 64, then 32 buckets per octave. */
export function bucketMidpoint(ms: number): number {
  const v = Math.round(ms);
  if (v < 64) return v;
  let width = 1;
  while (v >= 64 * width) width *= 2;
  const lo = Math.floor(v / width) * width;
  return lo + (width - 1) / 2;
}

/** The exact nearest-rank q-th percentile: the smallest value with at least q% of values at or below it. */
export function exactPercentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((q * sorted.length) / 100);
  return sorted[rank - 1] ?? null;
}

/** The dashboard's figures, and (not dashboard fields) the exact percentiles, to check the documented error bound. */
export type ExpectedFigures = Dashboard["totals"] & { exact_p50: number | null; exact_p99: number | null };

/** What the dashboard must say, with the exact percentiles beside each set of figures. */
export interface ExpectedDashboard extends Pick<Dashboard, "from" | "to"> {
  totals: ExpectedFigures;
  series: (ExpectedFigures & { day: string })[];
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
const pct = (a: number, b: number) => (b === 0 ? null : (a / b) * 100);

function figures(
  turns: TurnEvent[],
  convs: { c: ConversationEvent; csat: number | null }[],
  safety: number,
  dau: number,
): ExpectedFigures {
  const answered = turns.filter((t) => t.outcome === "ok" || t.outcome === "error");
  const latencies = answered.map((t) => t.latencyMs);
  const rated = convs.filter((x) => x.csat !== null);
  const p50 = exactPercentile(latencies, 50);
  const p99 = exactPercentile(latencies, 99);
  // Streamed answers are the answered turns with a first-token time.
  const firstTokens = answered.flatMap((t) => (t.firstTokenMs === null ? [] : [t.firstTokenMs]));
  const ft50 = exactPercentile(firstTokens, 50);
  const ft95 = exactPercentile(firstTokens, 95);
  // Human handoff: summaries without its fields are from before it (no human took part), and a
  // resolved conversation no human resolved was resolved by the bot.
  const handled = convs.filter((x) => x.c.humanHandled === true).length;
  const resolved = convs.filter((x) => x.c.resolved);
  const byHuman = resolved.filter((x) => x.c.resolvedBy === "human").length;
  const replies = convs.flatMap((x) =>
    typeof x.c.firstHumanReplyMs === "number" ? [x.c.firstHumanReplyMs] : [],
  );
  const hr50 = exactPercentile(replies, 50);
  const hr95 = exactPercentile(replies, 95);
  return {
    total_conversations: convs.length,
    avg_turns_per_conversation: ratio(sum(convs.map((x) => x.c.turnCount)), convs.length),
    resolution_rate_pct: pct(convs.filter((x) => x.c.resolved).length, convs.length),
    escalation_rate_pct: pct(convs.filter((x) => x.c.escalated).length, convs.length),
    avg_csat: ratio(sum(rated.map((x) => x.csat ?? 0)), rated.length),
    csat_responses: rated.length,
    total_turns: turns.length,
    disconnected_turns: turns.filter((t) => t.outcome === "disconnected").length,
    human_turns: turns.filter((t) => t.outcome === "human").length,
    total_tokens: sum(turns.map((t) => t.inputTokens + t.outputTokens)),
    total_cost_usd: sum(turns.map((t) => t.costUsd)),
    avg_response_time_ms: ratio(sum(latencies), latencies.length),
    p50_response_time_ms: p50 === null ? null : bucketMidpoint(p50),
    p99_response_time_ms: p99 === null ? null : bucketMidpoint(p99),
    streamed_answers: firstTokens.length,
    p50_first_token_ms: ft50 === null ? null : bucketMidpoint(ft50),
    p95_first_token_ms: ft95 === null ? null : bucketMidpoint(ft95),
    error_rate_pct: pct(answered.filter((t) => t.outcome === "error").length, answered.length),
    daily_active_users: dau,
    cost_per_conversation_usd: ratio(sum(convs.map((x) => x.c.totalCostUsd)), convs.length),
    safety_violations_blocked: safety,
    human_handled_conversations: handled,
    human_handled_pct: pct(handled, convs.length),
    resolved_by_human: byHuman,
    resolved_by_bot: resolved.length - byHuman,
    resolved_by_human_pct: pct(byHuman, convs.length),
    resolved_by_bot_pct: pct(resolved.length - byHuman, convs.length),
    human_replies: replies.length,
    avg_first_human_reply_ms: ratio(sum(replies), replies.length),
    p50_first_human_reply_ms: hr50 === null ? null : bucketMidpoint(hr50),
    p95_first_human_reply_ms: hr95 === null ? null : bucketMidpoint(hr95),
    exact_p50: p50,
    exact_p99: p99,
  };
}

/** Every figure for the `days` UTC days ending on the day of `now`, and per day. */
export function expectedDashboard(events: AnalyticsEvent[], days: number, now: number): ExpectedDashboard {
  const unique = [...new Map(events.map((e) => [e.id, e])).values()];
  const today = Date.parse(`${dayOf(now)}T00:00:00Z`);
  const dayList = Array.from({ length: days }, (_, i) => dayOf(today - (days - 1 - i) * DAY));
  const inWindow = new Set(dayList);
  const turns = unique.filter((e): e is TurnEvent => e.type === "turn");
  const feedback = unique.filter((e): e is FeedbackEvent => e.type === "feedback");
  const latestFeedback = new Map<string, FeedbackEvent>();
  for (const f of feedback) {
    const prev = latestFeedback.get(f.conversationId);
    if (!prev || f.at > prev.at || (f.at === prev.at && f.id > prev.id))
      latestFeedback.set(f.conversationId, f);
  }
  const convs = unique
    .filter((e): e is ConversationEvent => e.type === "conversation")
    .map((c) => ({ c, csat: latestFeedback.get(c.conversationId)?.csat ?? c.csat }));
  const safety = unique.filter((e) => e.type === "safety");

  const perDay = dayList.map((day) => {
    const t = turns.filter((x) => dayOf(x.at) === day);
    const dau = new Set(t.map((x) => x.userId)).size;
    const c = convs.filter((x) => dayOf(x.c.startedAt) === day);
    const s = safety.filter((x) => dayOf(x.at) === day).length;
    return { day, ...figures(t, c, s, dau) };
  });
  const totals = figures(
    turns.filter((x) => inWindow.has(dayOf(x.at))),
    convs.filter((x) => inWindow.has(dayOf(x.c.startedAt))),
    safety.filter((x) => inWindow.has(dayOf(x.at))).length,
    sum(perDay.map((d) => d.daily_active_users)) / days,
  );
  return { from: dayOf(today - (days - 1) * DAY), to: dayOf(today), totals, series: perDay };
}
