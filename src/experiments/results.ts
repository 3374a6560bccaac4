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
  type Interval,
  MIN_SAMPLE_PER_ARM,
  type Moments,
  meanInterval,
  sampleRatioMismatch,
  type TestResult,
  twoProportionTest,
  welchTest,
  wilsonInterval,
} from "./stats";

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
    )
    select users.v as variant, users.users, conv.conversations, conv.resolved, conv.escalated,
           conv.csat_n, conv.csat_mean, conv.csat_var, conv.cost_mean, conv.cost_var, lat.p50
    from users left join conv on conv.v = users.v left join lat on lat.v = users.v
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
  }));
}

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

const empty = (variant: string): VariantAggregate => ({
  variant,
  users: 0,
  conversations: 0,
  resolved: 0,
  escalated: 0,
  csat: { n: 0, mean: 0, variance: 0 },
  cost: { n: 0, mean: 0, variance: 0 },
  p50LatencyMs: null,
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
    const resolution = isControl
      ? null
      : twoProportionTest(control.resolved, control.conversations, a.resolved, a.conversations);
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
            escalation_rate: comparison(
              twoProportionTest(control.escalated, control.conversations, a.escalated, a.conversations),
            ),
            csat: comparison(welchTest(control.csat, a.csat)),
            cost_per_conversation_usd: comparison(welchTest(control.cost, a.cost)),
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
