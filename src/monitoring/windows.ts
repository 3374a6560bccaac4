/**
 * The monitoring figures over windows: for each scope (a tenant, or the platform) and each rule,
 * the hourly rollups summed over the rule's window, the response-time percentiles of that window's
 * histogram, the safety baseline before it and the daily active users of the weeks it compares.
 * All scopes and rules in one parameterized statement that reads rollups only.
 *
 * A window of W hours is the W whole UTC hours before now plus the current hour so far; days for
 * daily active users are whole UTC days before today. The handoff_wait rule has no window: it
 * reads the conversations waiting for a human now, from the inbox index (`inbox_conversations`).
 */
import { sql } from "drizzle-orm";
import { bucketValue } from "../analytics/latency.ts";
import { COUNTER_COLUMNS, COUNTER_KEYS, type Counters } from "../analytics/rollups.ts";
import type { SqlExecutor } from "../analytics/sql.ts";
import { MAX_LINKED_CONVERSATIONS } from "../notify/messages.ts";
import { RULES, type RuleName } from "./rules.ts";

/** The hours before the window that a safety spike is measured against. */
export const BASELINE_HOURS = 168;

/** The scope name of the platform-wide figures (tenant ids cannot contain "*"). */
export const PLATFORM = "*";

/** One sum to compute: the rollups of `tenantId` over `hours`, counted into `scope` (the tenant, or PLATFORM). */
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
  /** Conversations waiting for a human now, and the longest wait (whole seconds, 0 with none). */
  waiting: number;
  waiting_max_s: number;
  /** The longest-waiting conversations (at most WAITING_LISTED), longest first: what an alert links to. */
  waiting_oldest: { id: string; since: number }[];
}

/** Waiting conversations an alert names, longest first: as many as a notice links. */
export const WAITING_LISTED = MAX_LINKED_CONVERSATIONS;

const zeroSums = (): WindowSums => ({
  ...(Object.fromEntries(COUNTER_KEYS.map((k) => [k, 0])) as unknown as Counters),
  p50_ms: null,
  p99_ms: null,
  safety_baseline: 0,
  dau_current: 0,
  dau_previous: 0,
  dau_today: 0,
  waiting: 0,
  waiting_max_s: 0,
  waiting_oldest: [],
});

// sum(h.turns)::float8 as turns, ...: the window's counters, and the platform's sums of them.
const SUMS = sql.join(
  COUNTER_KEYS.map((k) => sql`sum(h.${sql.identifier(k)})::float8 as ${sql.identifier(k)}`),
  sql`, `,
);
const RESUMS = sql.join(
  COUNTER_KEYS.map((k) => sql`sum(${sql.identifier(k)})::float8 as ${sql.identifier(k)}`),
  sql`, `,
);
const parse = <T>(v: unknown): T[] => (typeof v === "string" ? JSON.parse(v) : ((v as T[] | null) ?? []));

/** One tenant's window of some hours, and what it is read for. */
interface Window {
  tenant_id: string;
  hours: number;
  /** Counted into the platform's window of the same hours. */
  platform: boolean;
  sums: boolean;
  lat: boolean;
  base: boolean;
  dau: boolean;
  today: boolean;
  wait: boolean;
}

const key = (scope: string, hours: number) => `${scope}\u0000${hours}`;

/**
 * Reads every requested window; the answer maps scope -> rule -> sums. Rules sharing a window
 * length share one read of it, and the platform's windows are sums of the tenants' (percentiles
 * from their merged histograms): each tenant's hourly rows are read once per window length.
 * Every read is a LATERAL index range scan per window: the planner cannot misjudge the window
 * list's size into a sequential scan of a rollup table.
 */
export async function readWindows(
  db: SqlExecutor,
  requests: readonly WindowRequest[],
  now: number,
): Promise<Map<string, Map<string, WindowSums>>> {
  const windows = new Map<string, Window>();
  for (const r of requests) {
    const k = key(r.tenantId, r.hours);
    let w = windows.get(k);
    if (!w) {
      w = {
        tenant_id: r.tenantId,
        hours: r.hours,
        platform: false,
        sums: false,
        lat: false,
        base: false,
        dau: false,
        today: false,
        wait: false,
      };
      windows.set(k, w);
    }
    if (r.scope === PLATFORM) w.platform = true;
    if (r.rule === "dau_change") w.dau = true;
    else if (r.rule === "handoff_wait") w.wait = true;
    else w.sums = true;
    if (r.rule === "p50_response_time" || r.rule === "p99_response_time") w.lat = true;
    if (r.rule === "safety_spike") w.base = true;
    if (r.rule === "volume") w.today = true;
  }
  const found = new Map<string, WindowSums>();
  const at = (tenantId: string, hours: number) => {
    let s = found.get(key(tenantId, hours));
    if (!s) {
      s = zeroSums();
      found.set(key(tenantId, hours), s);
    }
    return s;
  };
  if (windows.size > 0) {
    const hour = new Date(Math.floor(now / 3_600_000) * 3_600_000).toISOString();
    const today = new Date(now).toISOString().slice(0, 10);
    const nowIso = new Date(now).toISOString();
    const res = await db.execute(sql`
    with w as (
      select * from jsonb_to_recordset(${JSON.stringify([...windows.values()])}::jsonb) as w(tenant_id text,
        hours int, platform boolean, sums boolean, lat boolean, base boolean, dau boolean, today boolean,
        wait boolean)
    ),
    t as (
      select w.tenant_id, w.hours, w.platform, x.*
      from w cross join lateral (
        select ${SUMS}
        from tenant_hourly h
        where h.tenant_id = w.tenant_id
          and h.hour >= ${hour}::timestamptz - w.hours * interval '1 hour' and h.hour <= ${hour}::timestamptz
      ) x
      where w.sums
    ),
    sums as (
      select tenant_id, hours, ${COUNTER_COLUMNS}
      from t
      union all
      select '*', hours, ${RESUMS}
      from t where platform group by hours
    ),
    tb as (
      select w.tenant_id, w.hours, w.platform, x.safety_baseline
      from w cross join lateral (
        select coalesce(sum(h.safety_events), 0)::float8 as safety_baseline
        from tenant_hourly h
        where h.tenant_id = w.tenant_id
          and h.hour >= ${hour}::timestamptz - (w.hours + ${BASELINE_HOURS}) * interval '1 hour'
          and h.hour < ${hour}::timestamptz - w.hours * interval '1 hour'
      ) x
      where w.base
    ),
    baseline as (
      select tenant_id, hours, safety_baseline from tb
      union all
      select '*', hours, sum(safety_baseline) from tb where platform group by hours
    ),
    tl as (
      select w.tenant_id, w.hours, w.platform, x.bucket, x.c
      from w cross join lateral (
        select l.bucket, sum(l.count) as c
        from tenant_latency_hourly l
        where l.tenant_id = w.tenant_id
          and l.hour >= ${hour}::timestamptz - w.hours * interval '1 hour' and l.hour <= ${hour}::timestamptz
        group by l.bucket
      ) x
      where w.lat
    ),
    lat as (
      select tenant_id, hours, bucket, c from tl
      union all
      select '*', hours, bucket, sum(c) from tl where platform group by hours, bucket
    ),
    cum as (
      select tenant_id, hours, bucket,
        sum(c) over (partition by tenant_id, hours order by bucket) as cum,
        sum(c) over (partition by tenant_id, hours) as n
      from lat
    ),
    pct as (
      select tenant_id, hours,
        min(bucket) filter (where cum * 2 >= n) as p50,
        min(bucket) filter (where cum * 100 >= n * 99) as p99
      from cum group by tenant_id, hours
    ),
    td as (
      select w.tenant_id, w.hours, w.platform, x.dau_current, x.dau_previous
      from w cross join lateral (
        select
          coalesce(sum(d.active_users) filter (where d.day >= ${today}::date - w.hours / 24), 0)::float8
            as dau_current,
          coalesce(sum(d.active_users) filter (where d.day < ${today}::date - w.hours / 24), 0)::float8
            as dau_previous
        from tenant_daily d
        where d.tenant_id = w.tenant_id
          and d.day >= ${today}::date - 2 * (w.hours / 24) and d.day < ${today}::date
      ) x
      where w.dau
    ),
    dau as (
      select tenant_id, hours, dau_current, dau_previous from td
      union all
      select '*', hours, sum(dau_current), sum(dau_previous) from td where platform group by hours
    ),
    tt as (
      select w.tenant_id, w.hours, w.platform, x.dau_today
      from w cross join lateral (
        select coalesce(sum(d.active_users), 0)::float8 as dau_today
        from tenant_daily d
        where d.tenant_id = w.tenant_id and d.day = ${today}::date
      ) x
      where w.today
    ),
    today as (
      select tenant_id, hours, dau_today from tt
      union all
      select '*', hours, sum(dau_today) from tt where platform group by hours
    ),
    -- Each tenant's waiting conversations through the partial index on (tenant_id, waiting_since).
    tw as (
      select w.tenant_id, w.hours, w.platform, x.waiting, x.waiting_max_s, o.oldest
      from w cross join lateral (
        select count(*)::float8 as waiting,
          -- Whole seconds: two reads a moment apart (the JSON and the scrape) give the same value.
          greatest(floor(coalesce(extract(epoch from ${nowIso}::timestamptz - min(i.waiting_since)), 0)), 0)::float8
            as waiting_max_s
        from inbox_conversations i
        where i.tenant_id = w.tenant_id and i.status = 'waiting' and i.waiting_since is not null
      ) x cross join lateral (
        select coalesce(json_agg(json_build_object('id', l.conversation_id,
            'since', extract(epoch from l.waiting_since) * 1000) order by l.waiting_since, l.conversation_id),
          '[]'::json) as oldest
        from (
          select i.conversation_id, i.waiting_since from inbox_conversations i
          where i.tenant_id = w.tenant_id and i.status = 'waiting' and i.waiting_since is not null
          order by i.waiting_since, i.conversation_id limit ${WAITING_LISTED}
        ) l
      ) o
      where w.wait
    ),
    waits as (
      select tenant_id, hours, waiting, waiting_max_s, oldest from tw
      union all
      select '*', hours, sum(waiting), max(waiting_max_s), '[]'::json from tw where platform group by hours
    )
    select
      (select json_agg(sums) from sums) as sums,
      (select json_agg(baseline) from baseline) as baseline,
      (select json_agg(pct) from pct) as pct,
      (select json_agg(dau) from dau) as dau,
      (select json_agg(today) from today) as today,
      (select json_agg(waits) from waits) as waits`);
    const row = res.rows[0] ?? {};
    type Keyed = { tenant_id: string; hours: number };
    for (const r of parse<Keyed & Record<string, unknown>>(row.sums)) {
      const s = at(r.tenant_id, r.hours);
      for (const k of COUNTER_KEYS) s[k] = Number(r[k] ?? 0);
    }
    for (const r of parse<Keyed & { safety_baseline: number }>(row.baseline)) {
      at(r.tenant_id, r.hours).safety_baseline = Number(r.safety_baseline);
    }
    for (const r of parse<Keyed & { p50: number | null; p99: number | null }>(row.pct)) {
      const s = at(r.tenant_id, r.hours);
      s.p50_ms = r.p50 === null ? null : bucketValue(Number(r.p50));
      s.p99_ms = r.p99 === null ? null : bucketValue(Number(r.p99));
    }
    for (const r of parse<Keyed & { dau_current: number; dau_previous: number }>(row.dau)) {
      const s = at(r.tenant_id, r.hours);
      s.dau_current = Number(r.dau_current);
      s.dau_previous = Number(r.dau_previous);
    }
    for (const r of parse<Keyed & { dau_today: number }>(row.today)) {
      at(r.tenant_id, r.hours).dau_today = Number(r.dau_today);
    }
    type Waiting = { waiting: number; waiting_max_s: number; oldest: { id: string; since: number }[] };
    for (const r of parse<Keyed & Waiting>(row.waits)) {
      const s = at(r.tenant_id, r.hours);
      s.waiting = Number(r.waiting);
      s.waiting_max_s = Number(r.waiting_max_s);
      s.waiting_oldest = (r.oldest ?? []).map((o) => ({ id: String(o.id), since: Number(o.since) }));
    }
  }
  const out = new Map<string, Map<string, WindowSums>>();
  for (const r of requests) {
    let m = out.get(r.scope);
    if (!m) {
      m = new Map();
      out.set(r.scope, m);
    }
    m.set(r.rule, at(r.scope === PLATFORM ? PLATFORM : r.tenantId, r.hours));
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
            : // The reference's error rate: failed LLM calls plus tool failures, of calls of both.
              pct(s.errors + s.tool_failures, s.answered + s.tool_calls);
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
    case "waiting_conversations":
      return { value: s.waiting_max_s, events: s.waiting };
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
