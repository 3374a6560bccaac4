/**
 * Experiment results from the analytics tables: per variant users, conversations, resolution and
 * escalation rates, CSAT, cost per conversation and median latency, each against control, with the
 * sample ratio mismatch check and a verdict. One parameterized statement reads the aggregates; the
 * statistics are stats.ts. Methods: docs/experiments.md.
 */
import { sql } from "drizzle-orm";
import type { SqlExecutor } from "../analytics/sql";
import type { ExperimentRow } from "../db/schema";
import { statusAt } from "./assign";
import {
  ALPHA,
  type ClusteredSample,
  clusteredDifferenceTest,
  type Interval,
  MIN_SAMPLE_PER_ARM,
  type Moments,
  meanInterval,
  type SharedClusters,
  sampleRatioMismatch,
  type TestResult,
  wilsonInterval,
} from "./stats";

/** The metrics compared with control, each per conversation and clustered by user. */
const METRICS = ["resolution_rate", "escalation_rate", "csat", "cost_per_conversation_usd"] as const;
type Metric = (typeof METRICS)[number];

/** A metric's clusters in one arm: users, Σ E_g², and what it shares with control (users in both). */
interface MetricClusters {
  clusters: number;
  residualSquares: number;
  shared: SharedClusters;
}

/** One variant's sums, as the statement answers them. */
export interface VariantAggregate {
  variant: string;
  users: number;
  conversations: number;
  resolved: number;
  escalated: number;
  csat: Moments;
  cost: Moments;
  p50LatencyMs: number | null;
  clusters: Record<Metric, MetricClusters>;
}

const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
const maybe = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/**
 * Per-variant aggregates of an experiment since `since`. A row may carry several experiments
 * ("a,b" with variants "x,y", see apply.ts): the variant is the one at the experiment's position.
 * Users are distinct user ids with a turn or a conversation in the variant; latency counts turns
 * that reached a model (outcome ok or error), as the dashboard does.
 */
export async function readAggregates(
  db: SqlExecutor,
  tenantId: string,
  experiment: string,
  since: Date,
  control: string,
): Promise<VariantAggregate[]> {
  const from = since.toISOString();
  const res = await db.execute(sql`
    with c as (
      select (string_to_array(variant, ','))[array_position(string_to_array(experiment, ','), ${experiment}::text)] as v,
             user_id, resolved, escalated, csat, total_cost_usd
      from conversations
      where tenant_id = ${tenantId} and started_at >= ${from}::timestamptz
        and ${experiment}::text = any(string_to_array(experiment, ','))
    ), t as (
      select (string_to_array(variant, ','))[array_position(string_to_array(experiment, ','), ${experiment}::text)] as v,
             user_id, latency_ms, outcome
      from turns
      where tenant_id = ${tenantId} and at >= ${from}::timestamptz
        and ${experiment}::text = any(string_to_array(experiment, ','))
    ), users as (
      select v, count(distinct user_id) as users
      from (select v, user_id from c union all select v, user_id from t) u
      where v is not null group by v
    ), conv as (
      select v, count(*) as conversations,
             count(*) filter (where resolved) as resolved,
             count(*) filter (where escalated) as escalated,
             count(csat) as csat_n, avg(csat)::float8 as csat_mean, coalesce(var_samp(csat), 0)::float8 as csat_var,
             avg(total_cost_usd)::float8 as cost_mean, coalesce(var_samp(total_cost_usd), 0)::float8 as cost_var
      from c where v is not null group by v
    ), lat as (
      select v, percentile_cont(0.5) within group (order by latency_ms) as p50
      from t where v is not null and outcome in ('ok', 'error') group by v
    ), per_user as (
      select v, user_id, count(*)::float8 as n, count(*) filter (where resolved)::float8 as r,
             count(*) filter (where escalated)::float8 as e, count(csat)::float8 as k,
             coalesce(sum(csat), 0)::float8 as s, sum(total_cost_usd)::float8 as cost
      from c where v is not null group by v, user_id
    ), resid as (
      -- Each user's residual sum per metric: what the cluster-robust variance adds up.
      select p.v, p.user_id, p.k,
             p.r - p.n * conv.resolved::float8 / conv.conversations as er,
             p.e - p.n * conv.escalated::float8 / conv.conversations as ee,
             p.s - p.k * coalesce(conv.csat_mean, 0) as ec,
             p.cost - p.n * conv.cost_mean as ek
      from per_user p join conv on conv.v = p.v
    ), clu as (
      select v, count(*) as g, count(*) filter (where k > 0) as g_csat,
             sum(er * er) as rr, sum(ee * ee) as ee, sum(ec * ec) as cc, sum(ek * ek) as kk
      from resid group by v
    ), shared as (
      select a.v, count(*) as g, count(*) filter (where a.k > 0 and b.k > 0) as g_csat,
             sum(a.er * b.er) as rr, sum(a.ee * b.ee) as ee, sum(a.ec * b.ec) as cc, sum(a.ek * b.ek) as kk
      from resid a join resid b on b.user_id = a.user_id and b.v = ${control}::text and a.v <> b.v
      group by a.v
    )
    select users.v as variant, users.users, conv.conversations, conv.resolved, conv.escalated,
           conv.csat_n, conv.csat_mean, conv.csat_var, conv.cost_mean, conv.cost_var, lat.p50,
           clu.g, clu.g_csat, clu.rr, clu.ee, clu.cc, clu.kk,
           shared.g as s_g, shared.g_csat as s_g_csat, shared.rr as s_rr, shared.ee as s_ee,
           shared.cc as s_cc, shared.kk as s_kk
    from users left join conv on conv.v = users.v left join lat on lat.v = users.v
      left join clu on clu.v = users.v left join shared on shared.v = users.v
    order by users.v`);
  return res.rows.map((r) => ({
    variant: String(r.variant),
    users: num(r.users),
    conversations: num(r.conversations),
    resolved: num(r.resolved),
    escalated: num(r.escalated),
    csat: { n: num(r.csat_n), mean: num(r.csat_mean), variance: num(r.csat_var) },
    cost: { n: num(r.conversations), mean: num(r.cost_mean), variance: num(r.cost_var) },
    p50LatencyMs: maybe(r.p50),
    clusters: {
      resolution_rate: metricClusters(r.g, r.rr, r.s_g, r.s_rr),
      escalation_rate: metricClusters(r.g, r.ee, r.s_g, r.s_ee),
      csat: metricClusters(r.g_csat, r.cc, r.s_g_csat, r.s_cc),
      cost_per_conversation_usd: metricClusters(r.g, r.kk, r.s_g, r.s_kk),
    },
  }));
}

function metricClusters(g: unknown, squares: unknown, sharedG: unknown, products: unknown): MetricClusters {
  return {
    clusters: num(g),
    residualSquares: num(squares),
    shared: { clusters: num(sharedG), residualProducts: num(products) },
  };
}

/** An arm's sample of one metric, as the clustered comparison reads it. */
function sampleOf(a: VariantAggregate, metric: Metric): ClusteredSample {
  const { clusters, residualSquares } = a.clusters[metric];
  const n = metric === "csat" ? a.csat.n : a.conversations;
  const mean =
    metric === "resolution_rate"
      ? a.resolved / Math.max(n, 1)
      : metric === "escalation_rate"
        ? a.escalated / Math.max(n, 1)
        : metric === "csat"
          ? a.csat.mean
          : a.cost.mean;
  return { n, clusters, mean, residualSquares };
}

/** Variant against control on one metric, conversations clustered by user (stats.ts). */
function versus(control: VariantAggregate, a: VariantAggregate, metric: Metric): TestResult | null {
  return clusteredDifferenceTest(sampleOf(control, metric), sampleOf(a, metric), a.clusters[metric].shared);
}

/**
 * How results are analysed, stated in every answer: users are randomized, conversations observed;
 * comparisons with control use a variance clustered by user, so repeat visitors do not count as
 * independent evidence. The per-variant intervals treat conversations as independent.
 */
const ANALYSIS = {
  randomization_unit: "user",
  observation_unit: "conversation",
  comparison_variance: "user_clustered",
  comparison_test: "z",
  interval_variance: "conversation",
} as const;

const estimate = (value: number, ci: Interval | null) => (ci ? { value, ci95: ci } : null);

function comparison(t: TestResult | null) {
  return t
    ? {
        difference: t.difference,
        relative_lift: t.relativeLift,
        statistic: t.statistic,
        df: t.df,
        p_value: t.pValue,
      }
    : null;
}

type Verdict =
  | "control"
  | "insufficient_sample"
  | "sample_ratio_mismatch"
  | "better"
  | "worse"
  | "no_significant_difference";

const noClusters = (): MetricClusters => ({
  clusters: 0,
  residualSquares: 0,
  shared: { clusters: 0, residualProducts: 0 },
});

const empty = (variant: string): VariantAggregate => ({
  variant,
  users: 0,
  conversations: 0,
  resolved: 0,
  escalated: 0,
  csat: { n: 0, mean: 0, variance: 0 },
  cost: { n: 0, mean: 0, variance: 0 },
  p50LatencyMs: null,
  clusters: {
    resolution_rate: noClusters(),
    escalation_rate: noClusters(),
    csat: noClusters(),
    cost_per_conversation_usd: noClusters(),
  },
});

/**
 * Assembles the results of an experiment from its aggregates. The verdict reads the primary
 * metric, resolution rate, at ALPHA divided by the number of variants compared with control
 * (Bonferroni), and only when both arms have MIN_SAMPLE_PER_ARM conversations and no SRM is flagged.
 */
export function buildResults(row: ExperimentRow, aggregates: VariantAggregate[], now = Date.now()) {
  const byName = new Map(aggregates.map((a) => [a.variant, a]));
  const names = row.variants.map((v) => v.name);
  const observed = Object.fromEntries(names.map((n) => [n, byName.get(n)?.users ?? 0]));
  const srm = sampleRatioMismatch(observed, row.split);
  const control = byName.get(row.controlVariant) ?? empty(row.controlVariant);
  const alpha = ALPHA / Math.max(names.length - 1, 1);
  const variants = names.map((name) => {
    const a = byName.get(name) ?? empty(name);
    const isControl = name === row.controlVariant;
    const resolution = isControl ? null : versus(control, a, "resolution_rate");
    let verdict: Verdict = "control";
    if (!isControl) {
      if (srm?.flagged) verdict = "sample_ratio_mismatch";
      else if (a.conversations < MIN_SAMPLE_PER_ARM || control.conversations < MIN_SAMPLE_PER_ARM)
        verdict = "insufficient_sample";
      else if (resolution && resolution.pValue < alpha)
        verdict = resolution.difference > 0 ? "better" : "worse";
      else verdict = "no_significant_difference";
    }
    const n = a.conversations;
    return {
      name,
      control: isControl,
      split: row.split[name] ?? 0,
      users: a.users,
      conversations: n,
      resolution_rate: estimate(a.resolved / n, wilsonInterval(a.resolved, n)),
      escalation_rate: estimate(a.escalated / n, wilsonInterval(a.escalated, n)),
      csat: estimate(a.csat.mean, meanInterval(a.csat)),
      csat_responses: a.csat.n,
      cost_per_conversation_usd: estimate(a.cost.mean, meanInterval(a.cost)),
      p50_latency_ms: a.p50LatencyMs,
      vs_control: isControl
        ? null
        : {
            resolution_rate: comparison(resolution),
            escalation_rate: comparison(versus(control, a, "escalation_rate")),
            csat: comparison(versus(control, a, "csat")),
            cost_per_conversation_usd: comparison(versus(control, a, "cost_per_conversation_usd")),
          },
      verdict,
    };
  });
  return {
    tenant_id: row.tenantId,
    experiment: row.name,
    status: statusAt(
      {
        active: row.active,
        startsAt: row.startsAt ? row.startsAt.getTime() : null,
        endsAt: row.endsAt ? row.endsAt.getTime() : null,
      },
      now,
    ),
    control: row.controlVariant,
    since: row.createdAt.toISOString(),
    min_sample_per_arm: MIN_SAMPLE_PER_ARM,
    alpha: ALPHA,
    analysis: ANALYSIS,
    variants,
    srm: srm && {
      // JSON has no Infinity: an arm with no share but with users reads as null (and p = 0).
      chi_square: Number.isFinite(srm.chiSquare) ? srm.chiSquare : null,
      df: srm.df,
      p_value: srm.pValue,
      flagged: srm.flagged,
      observed,
      expected: srm.expected,
    },
    unlisted_variants: aggregates
      .filter((a) => !names.includes(a.variant))
      .map((a) => ({ name: a.variant, users: a.users, conversations: a.conversations })),
  };
}
