/**
 * The tenant dashboard: every figure of the reference design's get_dashboard_data and monitoring
 * table, for the last N UTC days and per day, and the figures of human handoff. It reads only the
 * rollups (`tenant_daily` and the response-time, first-token and first-human-reply histograms),
 * never raw turns, in one parameterized statement. Definitions: docs/analytics.md.
 */
import { type SQL, sql } from "drizzle-orm";
import { bucketValue } from "./latency.ts";
import { utcDay } from "./rollups.ts";
import type { SqlExecutor } from "./sql.ts";

/** The figures, for the window and for each day. */
export interface Figures {
  total_conversations: number;
  avg_turns_per_conversation: number | null;
  resolution_rate_pct: number | null;
  escalation_rate_pct: number | null;
  avg_csat: number | null;
  csat_responses: number;
  total_turns: number;
  disconnected_turns: number;
  human_turns: number;
  total_tokens: number;
  total_cost_usd: number;
  avg_response_time_ms: number | null;
  p50_response_time_ms: number | null;
  p99_response_time_ms: number | null;
  /** Answered turns that were streamed: those with a first-token time. */
  streamed_answers: number;
  p50_first_token_ms: number | null;
  p95_first_token_ms: number | null;
  error_rate_pct: number | null;
  daily_active_users: number;
  cost_per_conversation_usd: number | null;
  safety_violations_blocked: number;
  /** Ended conversations an operator held (human handoff, docs/handoff.md). */
  human_handled_conversations: number;
  human_handled_pct: number | null;
  /** Resolved conversations by who resolved them, and their share of ended conversations. */
  resolved_by_human: number;
  resolved_by_bot: number;
  resolved_by_human_pct: number | null;
  resolved_by_bot_pct: number | null;
  /** Ended conversations an operator wrote in: the base of the first-human-reply times. */
  human_replies: number;
  avg_first_human_reply_ms: number | null;
  p50_first_human_reply_ms: number | null;
  p95_first_human_reply_ms: number | null;
}

export interface DashboardData {
  tenant_id: string;
  days: number;
  /** First and last UTC day of the window, inclusive (YYYY-MM-DD). */
  from: string;
  to: string;
  totals: Figures;
  series: (Figures & { day: string })[];
  /** The tool loop's calls per tool over the window, most called first. */
  tools: ToolFigures[];
  /** Answers from the tenant's knowledge over the window. */
  knowledge: KnowledgeFigures;
}

/** Sources listed in the dashboard's "most used": the most cited ones. */
export const TOP_SOURCES = 10;

/**
 * Answers to messages the tenant's knowledge was searched for (knowledge on, a source indexed, a
 * model answered): those citing a source and those that are the tenant's "I don't know".
 */
export interface KnowledgeFigures {
  answers: number;
  grounded: number;
  grounded_pct: number | null;
  unanswered: number;
  unanswered_pct: number | null;
  /** The most cited sources, most first; `title` is null for a source deleted since. */
  top_sources: { source_id: string; title: string | null; citations: number }[];
}

/** One tool's calls over the dashboard's window. */
export interface ToolFigures {
  tool: string;
  calls: number;
  failures: number;
  failure_rate_pct: number | null;
  avg_latency_ms: number | null;
}

/** The sums a day (or the window) has; figures are derived from them. */
interface Sums {
  turns: number;
  answered: number;
  errors: number;
  disconnected: number;
  human: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_sum_ms: number;
  active_users: number;
  conversations: number;
  conversation_turns: number;
  resolved: number;
  escalated: number;
  csat_sum: number;
  csat_count: number;
  conversation_cost_usd: number;
  safety_events: number;
  human_handled: number;
  resolved_by_human: number;
  human_replies: number;
  human_reply_ms: number;
}

const SUM_KEYS = [
  "turns",
  "answered",
  "errors",
  "disconnected",
  "human",
  "input_tokens",
  "output_tokens",
  "cost_usd",
  "latency_sum_ms",
  "active_users",
  "conversations",
  "conversation_turns",
  "resolved",
  "escalated",
  "csat_sum",
  "csat_count",
  "conversation_cost_usd",
  "safety_events",
  "human_handled",
  "resolved_by_human",
  "human_replies",
  "human_reply_ms",
] as const satisfies readonly (keyof Sums)[];

const zero = (): Sums => Object.fromEntries(SUM_KEYS.map((k) => [k, 0])) as unknown as Sums;
const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
const pct = (a: number, b: number) => (b === 0 ? null : (a / b) * 100);
const pick = (bucket: unknown) =>
  bucket === null || bucket === undefined ? null : bucketValue(Number(bucket));

/** Percentiles read from the histograms (bucket numbers) and the streamed answers' count. */
interface Pcts {
  lat_p50?: number | null;
  lat_p99?: number | null;
  ft_n?: number | null;
  ft_p50?: number | null;
  ft_p95?: number | null;
  hr_p50?: number | null;
  hr_p95?: number | null;
}

/** Derives the figures from sums; a rate over nothing is null, not zero. */
function figures(s: Sums, activeUsers: number, p: Pcts): Figures {
  return {
    total_conversations: s.conversations,
    avg_turns_per_conversation: ratio(s.conversation_turns, s.conversations),
    resolution_rate_pct: pct(s.resolved, s.conversations),
    escalation_rate_pct: pct(s.escalated, s.conversations),
    avg_csat: ratio(s.csat_sum, s.csat_count),
    csat_responses: s.csat_count,
    total_turns: s.turns,
    disconnected_turns: s.disconnected,
    human_turns: s.human,
    total_tokens: s.input_tokens + s.output_tokens,
    total_cost_usd: s.cost_usd,
    avg_response_time_ms: ratio(s.latency_sum_ms, s.answered),
    p50_response_time_ms: pick(p.lat_p50),
    p99_response_time_ms: pick(p.lat_p99),
    streamed_answers: Number(p.ft_n ?? 0),
    p50_first_token_ms: pick(p.ft_p50),
    p95_first_token_ms: pick(p.ft_p95),
    error_rate_pct: pct(s.errors, s.answered),
    daily_active_users: activeUsers,
    cost_per_conversation_usd: ratio(s.conversation_cost_usd, s.conversations),
    safety_violations_blocked: s.safety_events,
    human_handled_conversations: s.human_handled,
    human_handled_pct: pct(s.human_handled, s.conversations),
    resolved_by_human: s.resolved_by_human,
    // Every resolved conversation a human did not resolve, the bot did (src/analytics/rollups.ts).
    resolved_by_bot: s.resolved - s.resolved_by_human,
    resolved_by_human_pct: pct(s.resolved_by_human, s.conversations),
    resolved_by_bot_pct: pct(s.resolved - s.resolved_by_human, s.conversations),
    human_replies: s.human_replies,
    avg_first_human_reply_ms: ratio(s.human_reply_ms, s.human_replies),
    p50_first_human_reply_ms: pick(p.hr_p50),
    p95_first_human_reply_ms: pick(p.hr_p95),
  };
}

/**
 * Nearest-rank percentiles of one daily histogram table over the window, per day (`<name>_day`:
 * day, n, p<q>...) and for the whole window (`<name>_whole`: n, p<q>...), as CTEs; columns are
 * named `<name>_n` and `<name>_p<q>`. The rank test is integer arithmetic: cum·100 >= n·q.
 */
function percentileCtes(
  name: "lat" | "ft" | "hr",
  table: "tenant_latency_daily" | "tenant_first_token_daily" | "tenant_human_reply_daily",
  tenantId: string,
  from: string,
  to: string,
  qs: readonly number[],
): SQL {
  const id = (suffix: string) => sql.identifier(`${name}_${suffix}`);
  const ranks = sql.join(
    qs.map(
      (q) =>
        sql`min(bucket) filter (where cum * 100 >= n * ${sql.raw(String(Math.trunc(q)))}) as ${id(`p${q}`)}`,
    ),
    sql`, `,
  );
  return sql`
    -- Not materialized: each use then reads the primary key in (day, bucket) order, with no sort.
    ${id("h")} as not materialized (
      select day, bucket, count from ${sql.identifier(table)}
      where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date
    ),
    ${id("day")} as (
      select day, max(n) as ${id("n")}, ${ranks}
      from (
        select day, bucket,
          sum(count) over (partition by day order by bucket) as cum,
          sum(count) over (partition by day) as n
        from ${id("h")}) x
      group by day
    ),
    ${id("whole")} as (
      select max(n) as ${id("n")}, ${ranks}
      from (
        select bucket, sum(c) over (order by bucket) as cum, sum(c) over () as n
        from (select bucket, sum(count) as c from ${id("h")} group by bucket) b) x
    )`;
}

/** The window of `days` UTC days ending on the day of `now`. */
export function dashboardWindow(days: number, now: number): { from: string; to: string; dayList: string[] } {
  const DAY = 86_400_000;
  const end = Date.parse(`${utcDay(now)}T00:00:00Z`);
  const dayList = Array.from({ length: days }, (_, i) => utcDay(end - (days - 1 - i) * DAY));
  return { from: dayList[0] ?? utcDay(now), to: utcDay(now), dayList };
}

/**
 * Reads the dashboard of one tenant; undefined when there is no such tenant. Percentiles are
 * nearest-rank over the latency histogram (rank ceil(q·n/100), integer arithmetic in SQL),
 * reported as the bucket's representative value.
 */
export async function readDashboard(
  db: SqlExecutor,
  tenantId: string,
  days: number,
  now: number = Date.now(),
): Promise<DashboardData | undefined> {
  const { from, to, dayList } = dashboardWindow(days, now);
  const res = await db.execute(sql`
    with d as (
      select day, turns, answered, errors, disconnected, human, input_tokens, output_tokens, cost_usd,
        latency_sum_ms,
        active_users, conversations, conversation_turns, resolved, escalated, csat_sum, csat_count,
        conversation_cost_usd, safety_events, human_handled, resolved_by_human, human_replies, human_reply_ms
      from tenant_daily
      where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date
    ),
    ${percentileCtes("lat", "tenant_latency_daily", tenantId, from, to, [50, 99])},
    -- Streamed answers' first tokens, and the first human replies of conversations operators answered.
    ${percentileCtes("ft", "tenant_first_token_daily", tenantId, from, to, [50, 95])},
    ${percentileCtes("hr", "tenant_human_reply_daily", tenantId, from, to, [50, 95])}
    select
      exists (select 1 from tenants where id = ${tenantId}) as known,
      (select coalesce(json_agg(x order by x.day), '[]'::json)
        from (select d.*, l.lat_p50, l.lat_p99, f.ft_n, f.ft_p50, f.ft_p95, r.hr_p50, r.hr_p95
          from d left join lat_day l using (day) left join ft_day f using (day)
            left join hr_day r using (day)) x) as days,
      (select row_to_json(w) from lat_whole w) as lat_pct,
      (select row_to_json(w) from ft_whole w) as ft_pct,
      (select row_to_json(w) from hr_whole w) as hr_pct,
      (select coalesce(json_agg(x order by x.calls desc, x.tool), '[]'::json) from (
        select tool, sum(calls)::float8 as calls, sum(failures)::float8 as failures,
          sum(latency_sum_ms) as latency_sum_ms
        from tool_daily where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date
        group by tool) x) as tools,
      (select json_build_object('answers', coalesce(sum(answers), 0), 'grounded', coalesce(sum(grounded), 0),
          'unanswered', coalesce(sum(unanswered), 0))
        from knowledge_daily where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date
      ) as knowledge,
      (select coalesce(json_agg(x order by x.citations desc, x.source_id), '[]'::json) from (
        select k.source_id, s.title, sum(k.citations)::float8 as citations
        from knowledge_source_daily k
        left join knowledge_sources s on s.id = k.source_id and s.tenant_id = k.tenant_id
        where k.tenant_id = ${tenantId} and k.day between ${from}::date and ${to}::date
        group by k.source_id, s.title order by citations desc, k.source_id limit ${TOP_SOURCES}) x) as sources`);
  const row = res.rows[0] ?? {};
  if (row.known !== true) return undefined;
  const rows = (typeof row.days === "string" ? JSON.parse(row.days) : (row.days ?? [])) as (Sums &
    Pcts & { day: string })[];
  const json = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : (v ?? {})) as Pcts;
  const whole = { ...json(row.lat_pct), ...json(row.ft_pct), ...json(row.hr_pct) };
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const total = zero();
  const series = dayList.map((day) => {
    const r = byDay.get(day);
    const s = zero();
    if (r) for (const k of SUM_KEYS) s[k] = Number(r[k]);
    for (const k of SUM_KEYS) total[k] += s[k];
    return { day, ...figures(s, s.active_users, r ?? {}) };
  });
  return {
    tenant_id: tenantId,
    days,
    from,
    to,
    totals: figures(total, total.active_users / days, whole),
    series,
    tools: toolFigures(row.tools),
    knowledge: knowledgeFigures(row.knowledge, row.sources),
  };
}

function knowledgeFigures(raw: unknown, rawSources: unknown): KnowledgeFigures {
  const k = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? {})) as Record<string, unknown>;
  const sources = (typeof rawSources === "string" ? JSON.parse(rawSources) : (rawSources ?? [])) as {
    source_id: string;
    title: string | null;
    citations: number;
  }[];
  const answers = Number(k.answers ?? 0);
  const grounded = Number(k.grounded ?? 0);
  const unanswered = Number(k.unanswered ?? 0);
  return {
    answers,
    grounded,
    grounded_pct: pct(grounded, answers),
    unanswered,
    unanswered_pct: pct(unanswered, answers),
    top_sources: sources.map((r) => ({
      source_id: r.source_id,
      title: r.title,
      citations: Number(r.citations),
    })),
  };
}

function toolFigures(raw: unknown): ToolFigures[] {
  const rows = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? [])) as {
    tool: string;
    calls: number;
    failures: number;
    latency_sum_ms: number;
  }[];
  return rows.map((r) => ({
    tool: r.tool,
    calls: Number(r.calls),
    failures: Number(r.failures),
    failure_rate_pct: r.calls > 0 ? (Number(r.failures) * 100) / Number(r.calls) : null,
    avg_latency_ms: r.calls > 0 ? Number(r.latency_sum_ms) / Number(r.calls) : null,
  }));
}
