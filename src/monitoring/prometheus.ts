/**
 * `GET /admin/metrics` in the Prometheus text exposition format (version 0.0.4): counters since the
 * beginning per tenant (from `tenant_totals`), the response-time and first-token histograms since
 * the beginning (from `tenant_latency_totals`, `tenant_first_token_totals`), the reference metrics as gauges over each rule's window per tenant
 * and for the platform, alert thresholds and firing state, and queue counters and lag.
 * Base units as Prometheus asks: seconds, ratios in 0..1, USD for money. A gauge with no value
 * (no data in its window) has no sample rather than NaN.
 */

import { sql } from "drizzle-orm";
import { HISTOGRAM_BOUNDS_SECONDS, latencyBucket } from "../analytics/latency.ts";
import { COUNTER_KEYS, type Counters } from "../analytics/rollups.ts";
import type { SqlExecutor } from "../analytics/sql.ts";
import { cacheStats } from "../cache/stats.ts";
import { effectiveRules, RULES, type RuleDef, type RuleName } from "./rules.ts";
import {
  loadScopes,
  type MetricView,
  metricViews,
  PLATFORM,
  readQueueLag,
  windowRequests,
} from "./service.ts";
import { readWindows } from "./windows.ts";

type Labels = Record<string, string>;
type Sample = { labels: Labels; value: number | null };
/** One histogram series: cumulative counts per upper bound (ascending, without +Inf), count, sum. */
type HistogramSeries = { labels: Labels; buckets: [le: number, count: number][]; count: number; sum: number };

const escapeLabel = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
const escapeHelp = (v: string) => v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** Builds an exposition: one HELP and TYPE per family, then its samples. */
export class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: "counter" | "gauge", help: string, samples: readonly Sample[]): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.#sample(name, s);
    return this;
  }

  /** A histogram family: per series its cumulative `_bucket`s ending with `le="+Inf"`, `_sum`, `_count`. */
  histogram(name: string, help: string, series: readonly HistogramSeries[]): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} histogram`);
    for (const h of series) {
      for (const [le, count] of h.buckets) {
        this.#sample(`${name}_bucket`, { labels: { ...h.labels, le: formatValue(le) }, value: count });
      }
      this.#sample(`${name}_bucket`, { labels: { ...h.labels, le: "+Inf" }, value: h.count });
      this.#sample(`${name}_sum`, { labels: h.labels, value: h.sum });
      this.#sample(`${name}_count`, { labels: h.labels, value: h.count });
    }
    return this;
  }

  #sample(name: string, s: Sample): void {
    if (s.value === null) return;
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    this.#lines.push(`${name}${labels ? `{${labels}}` : ""} ${formatValue(s.value)}`);
  }

  text(): string {
    return `${this.#lines.join("\n")}\n`;
  }
}

/** A rule's value in Prometheus base units. */
function baseUnit(def: RuleDef, v: number | null): number | null {
  if (v === null) return null;
  if (def.unit === "ms") return v / 1000;
  if (def.unit === "pct") return v / 100;
  return v;
}

/** Per-rule gauge names: the metric, in base units. */
const GAUGES: Record<RuleName, { name: string; help: string }> = {
  p50_response_time: { name: "response_time_p50_seconds", help: "P50 response time over the rule's window" },
  p99_response_time: { name: "response_time_p99_seconds", help: "P99 response time over the rule's window" },
  resolution_rate: { name: "resolution_ratio", help: "Resolved conversations / ended conversations" },
  escalation_rate: { name: "escalation_ratio", help: "Escalated conversations / ended conversations" },
  error_rate: {
    name: "error_ratio",
    help: "(Failed model answers + tool failures) / (model answers + tool calls)",
  },
  dau_change: {
    name: "daily_active_users_change_ratio",
    help: "Average daily active users of the window's days vs the same number of days before, minus 1",
  },
  cost_per_conversation: { name: "cost_per_conversation_usd", help: "Model cost per ended conversation" },
  csat: { name: "csat_score", help: "Average CSAT (1..5) of rated conversations" },
  safety_spike: {
    name: "safety_spike_ratio",
    help: "Safety violations in the window / their baseline per window over the 7 days before (floored at 1)",
  },
  handoff_wait: {
    name: "handoff_wait_seconds",
    help: "Longest current wait for a human among conversations waiting for one (0: none waiting)",
  },
};

type Totals = Counters & { tenant_id: string };

/**
 * Every tenant's counters with its response-time and first-token histograms' counts per `le`
 * (ascending, Infinity last), in one statement so each `_sum` and `_count` are one snapshot.
 */
const TOTALS_WITH_HISTOGRAM = sql`
  select t.*, h.les, h.counts, f.ft_les, f.ft_counts, f.ft_sum_ms, r.hr_buckets, r.hr_counts
  from tenant_totals t
  left join lateral (
    select array_agg(l.le order by l.le) as les, array_agg(l.count::float8 order by l.le) as counts
    from tenant_latency_totals l where l.tenant_id = t.tenant_id
  ) h on true
  left join lateral (
    select array_agg(l.le order by l.le) as ft_les, array_agg(l.count::float8 order by l.le) as ft_counts,
      sum(l.sum_ms) as ft_sum_ms
    from tenant_first_token_totals l where l.tenant_id = t.tenant_id
  ) f on true
  left join lateral (
    select array_agg(b.bucket order by b.bucket) as hr_buckets, array_agg(b.c order by b.bucket) as hr_counts
    from (
      select l.bucket, sum(l.count)::float8 as c from tenant_human_reply_daily l
      where l.tenant_id = t.tenant_id group by l.bucket
    ) b
  ) r on true
  order by t.tenant_id`;

/**
 * Upper bounds in seconds of the first-human-reply histogram: people answer in seconds to hours,
 * not in the model's milliseconds.
 */
export const HUMAN_REPLY_BOUNDS_SECONDS = [
  10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400,
] as const;

/**
 * A tenant's first-human-reply histogram from its daily histogram rows (bucket numbers of
 * src/analytics/latency.ts, summed over all days): a bucket counts under the least bound whose own
 * bucket is at or after it, as in the response-time histogram.
 */
function humanReplyHistogram(
  tenant: string,
  buckets: unknown,
  counts: unknown,
  sumMs: number,
): HistogramSeries {
  const rows: [number, number][] =
    Array.isArray(buckets) && Array.isArray(counts)
      ? buckets.map((b, i) => [Number(b), Number(counts[i])])
      : [];
  const upTo = (bucket: number) => rows.reduce((n, [b, c]) => (b <= bucket ? n + c : n), 0);
  return {
    labels: { tenant },
    buckets: HUMAN_REPLY_BOUNDS_SECONDS.map((le) => [le, upTo(latencyBucket(le * 1000))]),
    count: rows.reduce((n, [, c]) => n + c, 0),
    sum: sumMs / 1000,
  };
}

/** A tenant's histogram series: its per-`le` counts made cumulative over the bounds. */
function histogramOf(tenant: string, les: unknown, counts: unknown, latencySumMs: number): HistogramSeries {
  // Arrays, or null for a tenant with no answered turn yet.
  const rows: [number, number][] =
    Array.isArray(les) && Array.isArray(counts) ? les.map((le, i) => [Number(le), Number(counts[i])]) : [];
  const upTo = (bound: number) => rows.reduce((n, [le, c]) => (le <= bound ? n + c : n), 0);
  return {
    labels: { tenant },
    buckets: HISTOGRAM_BOUNDS_SECONDS.map((le) => [le, upTo(le)]),
    count: upTo(Number.POSITIVE_INFINITY),
    sum: latencySumMs / 1000,
  };
}

const COUNTERS: { name: string; help: string; samples: (t: Totals) => [Labels, number][] }[] = [
  {
    name: "requests_total",
    help: "Chat messages received: every turn (a model's answer, a disconnect, blocked by safety, handed to a human) and every admission refusal",
    samples: (t) => [
      [
        {},
        t.turns +
          t.refused_user +
          t.refused_tenant +
          t.refused_global +
          t.refused_address +
          t.refused_monthly_tokens +
          t.refused_visitor_tokens +
          t.refused_daily_cost +
          t.refused_conversation_cost,
      ],
    ],
  },
  {
    name: "turns_total",
    help: "Turns (answered visitor messages) by outcome",
    samples: (t) => [
      [{ outcome: "ok" }, t.answered - t.errors],
      [{ outcome: "error" }, t.errors],
      [{ outcome: "disconnected" }, t.disconnected],
      [{ outcome: "blocked" }, t.blocked],
      [{ outcome: "human" }, t.human],
    ],
  },
  {
    name: "tokens_total",
    help: "Tokens by direction",
    samples: (t) => [
      [{ direction: "input" }, t.input_tokens],
      [{ direction: "output" }, t.output_tokens],
    ],
  },
  { name: "cost_usd_total", help: "Model cost in USD", samples: (t) => [[{}, t.cost_usd]] },
  { name: "conversations_total", help: "Ended conversations", samples: (t) => [[{}, t.conversations]] },
  {
    name: "conversations_resolved_total",
    help: "Ended conversations that were resolved",
    samples: (t) => [[{}, t.resolved]],
  },
  {
    name: "conversations_escalated_total",
    help: "Ended conversations handed to a human",
    samples: (t) => [[{}, t.escalated]],
  },
  {
    name: "conversations_human_handled_total",
    help: "Ended conversations an operator held (took over) at some point",
    samples: (t) => [[{}, t.human_handled]],
  },
  {
    name: "conversations_resolved_by_total",
    help: "Ended conversations that were resolved, by who resolved them (a human operator or the bot)",
    samples: (t) => [
      [{ by: "human" }, t.resolved_by_human],
      [{ by: "bot" }, t.resolved - t.resolved_by_human],
    ],
  },
  { name: "csat_ratings_total", help: "Rated conversations", samples: (t) => [[{}, t.csat_count]] },
  {
    name: "csat_score_total",
    help: "Sum of the CSAT scores of rated conversations (divide by csat_ratings_total)",
    samples: (t) => [[{}, t.csat_sum]],
  },
  {
    name: "safety_violations_total",
    help: "Blocked topics hit on input or output",
    samples: (t) => [[{}, t.safety_events]],
  },
  {
    name: "rate_limit_refusals_total",
    help: "Messages refused by a rate limit, by level (address: a browser address's messages per minute)",
    samples: (t) => [
      [{ level: "user" }, t.refused_user],
      [{ level: "tenant" }, t.refused_tenant],
      [{ level: "global" }, t.refused_global],
      [{ level: "address" }, t.refused_address],
    ],
  },
  {
    name: "budget_refusals_total",
    help: "Messages refused by a budget, by budget",
    samples: (t) => [
      [{ budget: "monthly_tokens" }, t.refused_monthly_tokens],
      [{ budget: "visitor_tokens" }, t.refused_visitor_tokens],
      [{ budget: "daily_cost" }, t.refused_daily_cost],
      [{ budget: "conversation_cost" }, t.refused_conversation_cost],
    ],
  },
];

/** The knowledge rollups summed over all days, per tenant and per tenant and source. */
async function readKnowledgeTotals(db: SqlExecutor) {
  const [answers, sources] = await Promise.all([
    db.execute(sql`select tenant_id, sum(answers)::float8 as answers, sum(grounded)::float8 as grounded,
      sum(unanswered)::float8 as unanswered from knowledge_daily group by tenant_id order by tenant_id`),
    db.execute(sql`select tenant_id, source_id, sum(citations)::float8 as citations
      from knowledge_source_daily group by tenant_id, source_id order by tenant_id, source_id`),
  ]);
  return { answers, sources };
}

/** Renders every metric; reads tenants, totals, windows, alerts and queue lag. */
export async function renderMetrics(db: SqlExecutor, now: number): Promise<string> {
  const scopes = await loadScopes(db);
  const active = scopes.filter((s) => s.active);
  const [sums, totalsRes, firingRes, queues, queueTotals, toolsRes, knowledgeRes] = await Promise.all([
    readWindows(db, windowRequests(scopes, { tenants: "active", platform: true }), now),
    db.execute(TOTALS_WITH_HISTOGRAM),
    db.execute(sql`select tenant_id, rule from alerts where state = 'firing'`),
    readQueueLag(db, now),
    db.execute(sql`select queue, messages::float8 as messages, lag_sum_ms from queue_totals order by queue`),
    db.execute(sql`select tenant_id, tool, sum(calls)::float8 as calls, sum(failures)::float8 as failures,
      sum(latency_sum_ms) as latency_sum_ms from tool_daily group by tenant_id, tool order by tenant_id, tool`),
    readKnowledgeTotals(db),
  ]);
  const totals = totalsRes.rows.map((r) => {
    const t = { tenant_id: String(r.tenant_id) } as Totals;
    for (const k of COUNTER_KEYS) t[k] = Number(r[k] ?? 0);
    return t;
  });
  const histograms = totalsRes.rows.map((r) =>
    histogramOf(String(r.tenant_id), r.les, r.counts, Number(r.latency_sum_ms ?? 0)),
  );
  const firstTokens = totalsRes.rows.map((r) =>
    histogramOf(String(r.tenant_id), r.ft_les, r.ft_counts, Number(r.ft_sum_ms ?? 0)),
  );
  const humanReplies = totalsRes.rows.map((r) =>
    humanReplyHistogram(String(r.tenant_id), r.hr_buckets, r.hr_counts, Number(r.human_reply_ms ?? 0)),
  );
  const firing = new Set(firingRes.rows.map((r) => `${r.tenant_id}\u0000${r.rule}`));
  const views = new Map(active.map((s) => [s.id, metricViews(s.rules, sums.get(s.id))]));
  const platform = metricViews(effectiveRules(), sums.get(PLATFORM));
  const out = new Exposition();

  out.family(
    "chatedge_tenants",
    "gauge",
    "Tenants by state",
    (["active", "inactive"] as const).map((state) => ({
      labels: { state },
      value: scopes.filter((s) => s.active === (state === "active")).length,
    })),
  );
  for (const c of COUNTERS) {
    out.family(
      `chatedge_${c.name}`,
      "counter",
      c.help,
      totals.flatMap((t) =>
        c.samples(t).map(([labels, value]) => ({ labels: { tenant: t.tenant_id, ...labels }, value })),
      ),
    );
  }
  // Per tool, from the daily tool rollup: calls by result, and the seconds they took.
  const tools = toolsRes.rows.map((r) => ({
    labels: { tenant: String(r.tenant_id), tool: String(r.tool) },
    calls: Number(r.calls),
    failures: Number(r.failures),
    seconds: Number(r.latency_sum_ms) / 1000,
  }));
  out.family(
    "chatedge_tool_calls_total",
    "counter",
    "Tool calls the tool loop ran, by tool and result (failure: the tool failed or was refused; a visitor leaving is ok)",
    tools.flatMap((t) => [
      { labels: { ...t.labels, result: "ok" }, value: t.calls - t.failures },
      { labels: { ...t.labels, result: "failure" }, value: t.failures },
    ]),
  );
  out.family(
    "chatedge_tool_call_seconds_total",
    "counter",
    "Seconds spent in tool calls, by tool (divide by chatedge_tool_calls_total for the mean)",
    tools.map((t) => ({ labels: t.labels, value: t.seconds })),
  );
  // Answers from the tenant's knowledge, from its daily rollups (docs/knowledge.md "Analytics").
  const knowledge = (column: string) =>
    knowledgeRes.answers.rows.map((r) => ({
      labels: { tenant: String(r.tenant_id) },
      value: Number(r[column]),
    }));
  out.family(
    "chatedge_knowledge_answers_total",
    "counter",
    "Model answers to messages the tenant's knowledge was searched for",
    knowledge("answers"),
  );
  out.family(
    "chatedge_knowledge_grounded_answers_total",
    "counter",
    "Of chatedge_knowledge_answers_total, the answers citing at least one source",
    knowledge("grounded"),
  );
  out.family(
    "chatedge_knowledge_unanswered_total",
    "counter",
    "Of chatedge_knowledge_answers_total, the answers that are the tenant's \"I don't know\"",
    knowledge("unanswered"),
  );
  out.family(
    "chatedge_knowledge_source_citations_total",
    "counter",
    "Answers citing a knowledge source, by source id (at most 500 sources a tenant)",
    knowledgeRes.sources.rows.map((r) => ({
      labels: { tenant: String(r.tenant_id), source: String(r.source_id) },
      value: Number(r.citations),
    })),
  );
  out.histogram(
    "chatedge_response_time_seconds",
    "Model response time of answered turns (ok and error) since the beginning; a bound also holds turns up to 1/64 above it (the stored histogram's precision)",
    histograms,
  );
  out.histogram(
    "chatedge_first_token_seconds",
    "Time from a request's arrival to the model's first token, of answered streamed turns (ok and error) since the beginning; a bound also holds turns up to 1/64 above it",
    firstTokens,
  );
  out.histogram(
    "chatedge_first_human_reply_seconds",
    "Time from a human first being asked for (escalation, else takeover) to the first operator message, of ended conversations since the beginning; a bound also holds times up to 1/64 above it",
    humanReplies,
  );
  for (const rule of Object.keys(GAUGES) as RuleName[]) {
    const g = GAUGES[rule];
    out.family(
      `chatedge_${g.name}`,
      "gauge",
      `${g.help}, per tenant`,
      active.map((s) => ({
        labels: { tenant: s.id },
        value: baseUnit(RULES[rule], metricOf(views.get(s.id), rule)),
      })),
    );
    out.family(`chatedge_platform_${g.name}`, "gauge", `${g.help}, all tenants (default windows)`, [
      { labels: {}, value: baseUnit(RULES[rule], metricOf(platform, rule)) },
    ]);
  }
  out.family(
    "chatedge_daily_active_users",
    "gauge",
    "Distinct users active today so far (UTC)",
    active.map((s) => ({ labels: { tenant: s.id }, value: sums.get(s.id)?.get("volume")?.dau_today ?? 0 })),
  );
  out.family(
    "chatedge_platform_daily_active_users",
    "gauge",
    "Distinct users active today so far, summed over tenants",
    [{ labels: {}, value: sums.get(PLATFORM)?.get("volume")?.dau_today ?? 0 }],
  );
  out.family(
    "chatedge_alert_threshold",
    "gauge",
    "Alert threshold of each enabled rule, in the metric's base unit",
    active.flatMap((s) =>
      s.rules
        .filter((r) => r.enabled)
        .map((r) => ({
          labels: { tenant: s.id, rule: r.name },
          value: baseUnit(RULES[r.name], r.threshold),
        })),
    ),
  );
  out.family(
    "chatedge_alert_firing",
    "gauge",
    "1 while the rule's alert is firing, else 0",
    active.flatMap((s) =>
      s.rules
        .filter((r) => r.enabled)
        .map((r) => ({
          labels: { tenant: s.id, rule: r.name },
          value: firing.has(`${s.id}\u0000${r.name}`) ? 1 : 0,
        })),
    ),
  );
  out.family(
    "chatedge_queue_lag_seconds",
    "gauge",
    "Time from a queue message being sent to its batch being written, over the last 5 minutes",
    queues.flatMap((q) => [
      { labels: { queue: q.queue, stat: "avg" }, value: q.avg_lag_seconds },
      { labels: { queue: q.queue, stat: "max" }, value: q.max_lag_seconds },
    ]),
  );
  out.family(
    "chatedge_queue_messages_written_total",
    "counter",
    "Queue messages written",
    queueTotals.rows.map((r) => ({ labels: { queue: String(r.queue) }, value: Number(r.messages) })),
  );
  out.family(
    "chatedge_queue_wait_seconds_total",
    "counter",
    "Time from send to write summed over written queue messages: divide its rate by the messages' rate for the mean",
    queueTotals.rows.map((r) => ({ labels: { queue: String(r.queue) }, value: Number(r.lag_sum_ms) / 1000 })),
  );
  out.family(
    "chatedge_queue_last_write_timestamp_seconds",
    "gauge",
    "When a batch of the queue was last written (a stalled consumer shows as an old value)",
    queues.map((q) => ({ labels: { queue: q.queue }, value: Date.parse(q.last_write) / 1000 })),
  );
  out.family(
    "chatedge_config_cache_lookups_total",
    "counter",
    "Config, key and experiment lookups by the tier that answered them, in the isolate that served this scrape",
    Object.entries(cacheStats).map(([tier, value]) => ({ labels: { tier }, value })),
  );
  return out.text();
}

function metricOf(views: Record<string, MetricView> | undefined, rule: RuleName): number | null {
  return views?.[RULES[rule].metric]?.value ?? null;
}
