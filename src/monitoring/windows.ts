/**
 * The monitoring figures over windows: for each scope (a tenant, or the platform) and each rule,
 * the hourly rollups summed over the rule's window, the response-time percentiles of that window's
 * histogram, the safety baseline before it and the daily active users of the weeks it compares.
 * All scopes and rules in one parameterized statement that reads rollups only.
 *
 * A window of W hours is the W whole UTC hours before now plus the current hour so far; days for
 * daily active users are whole UTC days before today.
 */
import { sql } from "drizzle-orm";
import { bucketValue } from "../analytics/latency";
import { COUNTER_KEYS, type Counters } from "../analytics/rollups";
import type { SqlExecutor } from "../analytics/sql";
import { RULES, type RuleName } from "./rules";

/** The hours before the window that a safety spike is measured against. */
export const BASELINE_HOURS = 168;

/** One sum to compute: the rollups of `tenantId` over `hours`, counted into `scope`. */
export interface WindowRequest {
  scope: string;
  tenantId: string;
  rule: RuleName | "volume";
  hours: number;
}

/** What a window sums to. */
export interface WindowSums extends Counters {
  /** Response-time percentiles of the window (ms, the histogram bucket's value), null without turns. */
  p50_ms: number | null;
  p99_ms: number | null;
  /** Safety events in the BASELINE_HOURS before the window. */
  safety_baseline: number;
  /** Sums of daily active users over the window's days and the same number of days before. */
  dau_current: number;
  dau_previous: number;
  /** Active users today so far. */
  dau_today: number;
}

const zeroSums = (): WindowSums =>
  ({
    ...Object.fromEntries(COUNTER_KEYS.map((k) => [k, 0])),
    p50_ms: null,
    p99_ms: null,
    safety_baseline: 0,
    dau_current: 0,
    dau_previous: 0,
    dau_today: 0,
  }) as WindowSums;

const parse = <T>(v: unknown): T[] => (typeof v === "string" ? JSON.parse(v) : ((v as T[] | null) ?? []));

/** Reads every requested window; the answer maps scope -> rule -> sums. */
export async function readWindows(
  db: SqlExecutor,
  requests: readonly WindowRequest[],
  now: number,
): Promise<Map<string, Map<string, WindowSums>>> {
  const out = new Map<string, Map<string, WindowSums>>();
  const slot = (scope: string, rule: string) => {
    let m = out.get(scope);
    if (!m) {
      m = new Map();
      out.set(scope, m);
    }
    let s = m.get(rule);
    if (!s) {
      s = zeroSums();
      m.set(rule, s);
    }
    return s;
  };
  for (const r of requests) slot(r.scope, r.rule);
  if (requests.length === 0) return out;

  const hour = new Date(Math.floor(now / 3_600_000) * 3_600_000).toISOString();
  const today = new Date(now).toISOString().slice(0, 10);
  const w = JSON.stringify(
    requests.map((r) => ({ scope: r.scope, tenant_id: r.tenantId, rule: r.rule, hours: r.hours })),
  );
  const res = await db.execute(sql`
    with w as (
      select * from jsonb_to_recordset(${w}::jsonb) as w(scope text, tenant_id text, rule text, hours int)
    ),
    sums as (
      select w.scope, w.rule,
        sum(h.turns)::float8 as turns,
        sum(h.answered)::float8 as answered,
        sum(h.errors)::float8 as errors,
        sum(h.blocked)::float8 as blocked,
        sum(h.input_tokens)::float8 as input_tokens,
        sum(h.output_tokens)::float8 as output_tokens,
        sum(h.cost_usd)::float8 as cost_usd,
        sum(h.latency_sum_ms)::float8 as latency_sum_ms,
        sum(h.conversations)::float8 as conversations,
        sum(h.resolved)::float8 as resolved,
        sum(h.escalated)::float8 as escalated,
        sum(h.csat_sum)::float8 as csat_sum,
        sum(h.csat_count)::float8 as csat_count,
        sum(h.conversation_cost_usd)::float8 as conversation_cost_usd,
        sum(h.safety_events)::float8 as safety_events,
        sum(h.refused_user)::float8 as refused_user,
        sum(h.refused_tenant)::float8 as refused_tenant,
        sum(h.refused_global)::float8 as refused_global,
        sum(h.refused_monthly_tokens)::float8 as refused_monthly_tokens,
        sum(h.refused_daily_cost)::float8 as refused_daily_cost,
        sum(h.refused_conversation_cost)::float8 as refused_conversation_cost
      from w join tenant_hourly h on h.tenant_id = w.tenant_id
        and h.hour >= ${hour}::timestamptz - w.hours * interval '1 hour' and h.hour <= ${hour}::timestamptz
      group by w.scope, w.rule
    ),
    baseline as (
      select w.scope, w.rule, sum(h.safety_events)::float8 as safety_baseline
      from w join tenant_hourly h on h.tenant_id = w.tenant_id
        and h.hour >= ${hour}::timestamptz - (w.hours + ${BASELINE_HOURS}) * interval '1 hour'
        and h.hour < ${hour}::timestamptz - w.hours * interval '1 hour'
      where w.rule = 'safety_spike'
      group by w.scope, w.rule
    ),
    lat as (
      select w.scope, w.rule, l.bucket, sum(l.count) as c
      from w join tenant_latency_hourly l on l.tenant_id = w.tenant_id
        and l.hour >= ${hour}::timestamptz - w.hours * interval '1 hour' and l.hour <= ${hour}::timestamptz
      where w.rule in ('p50_response_time', 'p99_response_time', 'volume')
      group by w.scope, w.rule, l.bucket
    ),
    cum as (
      select scope, rule, bucket,
        sum(c) over (partition by scope, rule order by bucket) as cum,
        sum(c) over (partition by scope, rule) as n
      from lat
    ),
    pct as (
      select scope, rule,
        min(bucket) filter (where cum * 2 >= n) as p50,
        min(bucket) filter (where cum * 100 >= n * 99) as p99
      from cum group by scope, rule
    ),
    dau as (
      select w.scope, w.rule,
        coalesce(sum(d.active_users) filter (where d.day >= ${today}::date - w.hours / 24), 0)::float8
          as dau_current,
        coalesce(sum(d.active_users) filter (where d.day < ${today}::date - w.hours / 24), 0)::float8
          as dau_previous
      from w join tenant_daily d on d.tenant_id = w.tenant_id
        and d.day >= ${today}::date - 2 * (w.hours / 24) and d.day < ${today}::date
      where w.rule = 'dau_change'
      group by w.scope, w.rule
    ),
    today as (
      select w.scope, w.rule, sum(d.active_users)::float8 as dau_today
      from w join tenant_daily d on d.tenant_id = w.tenant_id and d.day = ${today}::date
      where w.rule = 'volume'
      group by w.scope, w.rule
    )
    select
      (select json_agg(sums) from sums) as sums,
      (select json_agg(baseline) from baseline) as baseline,
      (select json_agg(pct) from pct) as pct,
      (select json_agg(dau) from dau) as dau,
      (select json_agg(today) from today) as today`);
  const row = res.rows[0] ?? {};
  for (const r of parse<Record<string, unknown>>(row.sums)) {
    const s = slot(String(r.scope), String(r.rule));
    for (const k of COUNTER_KEYS) s[k] = Number(r[k] ?? 0);
  }
  for (const r of parse<{ scope: string; rule: string; safety_baseline: number }>(row.baseline)) {
    slot(r.scope, r.rule).safety_baseline = Number(r.safety_baseline);
  }
  for (const r of parse<{ scope: string; rule: string; p50: number | null; p99: number | null }>(row.pct)) {
    const s = slot(r.scope, r.rule);
    s.p50_ms = r.p50 === null ? null : bucketValue(Number(r.p50));
    s.p99_ms = r.p99 === null ? null : bucketValue(Number(r.p99));
  }
  for (const r of parse<{ scope: string; rule: string; dau_current: number; dau_previous: number }>(
    row.dau,
  )) {
    const s = slot(r.scope, r.rule);
    s.dau_current = Number(r.dau_current);
    s.dau_previous = Number(r.dau_previous);
  }
  for (const r of parse<{ scope: string; rule: string; dau_today: number }>(row.today)) {
    slot(r.scope, r.rule).dau_today = Number(r.dau_today);
  }
  return out;
}

/** A rule's value over its window and the events behind it (the minimum-events guard counts these). */
export interface RuleReading {
  value: number | null;
  events: number;
  /** For safety_spike: the baseline per window; for dau_change: the two weeks' average DAU. */
  baseline?: number;
  current?: number;
}

// Multiplied before dividing: 9 of 20 is exactly 45, where (9 / 20) * 100 is 45.00000000000001.
const pct = (a: number, b: number) => (b === 0 ? null : (a * 100) / b);

/** Derives a rule's value from its window. */
export function readRule(name: RuleName, s: WindowSums, windowHours: number): RuleReading {
  switch (RULES[name].events) {
    case "answered_turns": {
      const value =
        name === "p50_response_time"
          ? s.p50_ms
          : name === "p99_response_time"
            ? s.p99_ms
            : pct(s.errors, s.answered);
      return { value, events: s.answered };
    }
    case "conversations": {
      const value =
        name === "resolution_rate"
          ? pct(s.resolved, s.conversations)
          : name === "escalation_rate"
            ? pct(s.escalated, s.conversations)
            : s.conversations === 0
              ? null
              : s.conversation_cost_usd / s.conversations;
      return { value, events: s.conversations };
    }
    case "csat_ratings":
      return { value: s.csat_count === 0 ? null : s.csat_sum / s.csat_count, events: s.csat_count };
    case "daily_users": {
      const days = Math.max(1, Math.floor(windowHours / 24));
      const current = s.dau_current / days;
      const previous = s.dau_previous / days;
      return {
        value: s.dau_previous === 0 ? null : ((s.dau_current - s.dau_previous) * 100) / s.dau_previous,
        events: Math.floor(previous),
        baseline: previous,
        current,
      };
    }
    case "safety_events": {
      // The baseline per window, floored at one event: from a quiet history, more than
      // threshold-many violations (and at least the minimum) is a spike.
      const baseline = (s.safety_baseline * windowHours) / BASELINE_HOURS;
      return {
        value: s.safety_events / Math.max(baseline, 1),
        events: s.safety_events,
        baseline,
        current: s.safety_events,
      };
    }
  }
}
