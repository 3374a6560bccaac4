/**
 * Monitoring of tenants and of the platform: each reference metric with its value over the rule's
 * window, the target, the alert threshold and a state; the last 24 hours' volume (requests,
 * tokens, cost, refusals by level and budget); queue lag. Read from rollups only (windows.ts).
 */
import { sql } from "drizzle-orm";
import type { SqlExecutor } from "../analytics/sql.ts";
import type { AlertRuleOverride } from "../db/schema.ts";
import {
  crosses,
  type EffectiveRule,
  effectiveRules,
  onTarget,
  RULE_NAMES,
  RULES,
  type RuleName,
} from "./rules.ts";
import { PLATFORM, readRule, readWindows, type WindowRequest, type WindowSums } from "./windows.ts";

export { PLATFORM };

/** The window of the volume figures. */
export const VOLUME_HOURS = 24;

/** A tenant as monitoring sees it. */
export interface TenantScope {
  id: string;
  name: string;
  active: boolean;
  escalationEmail: string;
  webhookUrl: string | null;
  overrides: Record<string, AlertRuleOverride>;
  rules: EffectiveRule[];
}

/** Tenants with their alert settings: one, or all (active ones only when `activeOnly`). */
export async function loadScopes(
  db: SqlExecutor,
  opts: { tenantId?: string; activeOnly?: boolean } = {},
): Promise<TenantScope[]> {
  const res = await db.execute(sql`
    select t.id, t.name, t.active, t.escalation_email, s.webhook_url, coalesce(s.rules, '{}'::jsonb) as rules
    from tenants t left join alert_settings s on s.tenant_id = t.id
    where (${opts.tenantId ?? null}::text is null or t.id = ${opts.tenantId ?? null})
      and (${opts.activeOnly ?? false} = false or t.active)
    order by t.id`);
  return res.rows.map((r) => {
    const overrides = (typeof r.rules === "string" ? JSON.parse(r.rules) : r.rules) as Record<
      string,
      AlertRuleOverride
    >;
    return {
      id: String(r.id),
      name: String(r.name),
      active: r.active === true,
      escalationEmail: String(r.escalation_email ?? ""),
      webhookUrl: r.webhook_url === null || r.webhook_url === undefined ? null : String(r.webhook_url),
      overrides,
      rules: effectiveRules(overrides),
    };
  });
}

/**
 * The windows to read: the own rules and volume of each tenant in `scopes` (`tenants`; "active":
 * of the active ones only), and the platform's default rules and volume (`platform`).
 *
 * The platform counts every tenant in `scopes`, active or not, and callers pass all tenants: a
 * deactivated tenant's traffic still happened on the platform, as the platform counters
 * (tenant_totals) say, so the platform figures of the JSON and of the scrape are one answer.
 * A tenant without rows in a window adds nothing to it.
 */
export function windowRequests(
  scopes: readonly TenantScope[],
  want: { tenants: boolean | "active"; platform: boolean },
): WindowRequest[] {
  const out: WindowRequest[] = [];
  const defaults = effectiveRules();
  for (const t of scopes) {
    if (want.tenants === true || (want.tenants === "active" && t.active)) {
      for (const r of t.rules) out.push({ scope: t.id, tenantId: t.id, rule: r.name, hours: r.windowHours });
      out.push({ scope: t.id, tenantId: t.id, rule: "volume", hours: VOLUME_HOURS });
    }
    if (want.platform) {
      for (const r of defaults)
        out.push({ scope: PLATFORM, tenantId: t.id, rule: r.name, hours: r.windowHours });
      out.push({ scope: PLATFORM, tenantId: t.id, rule: "volume", hours: VOLUME_HOURS });
    }
  }
  return out;
}

export type MetricState = "ok" | "warning" | "alert" | "insufficient_data" | "off";

/** One metric of the reference table, as the monitoring JSON shows it. */
export interface MetricView {
  rule: RuleName;
  value: number | null;
  unit: string;
  target: string;
  threshold: number;
  op: "gt" | "lt";
  window_hours: number;
  min_events: number;
  events: number;
  enabled: boolean;
  state: MetricState;
  baseline?: number;
  current?: number;
}

/** The last 24 hours in numbers. */
export interface Volume {
  window_hours: number;
  requests: number;
  turns: number;
  answered: number;
  errors: number;
  disconnected: number;
  blocked: number;
  human: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  conversations: number;
  safety_violations: number;
  rate_limit_refusals: { user: number; tenant: number; global: number; address: number };
  budget_refusals: {
    monthly_tokens: number;
    visitor_tokens: number;
    daily_cost: number;
    conversation_cost: number;
  };
  daily_active_users_today: number;
}

const NO_WINDOWS = new Map<string, WindowSums>();

/** A metric's state: off, too few events, past the threshold, outside the target, or fine. */
function stateOf(rule: EffectiveRule, value: number | null, events: number): MetricState {
  if (!rule.enabled) return "off";
  if (value === null || events < rule.minEvents) return "insufficient_data";
  if (crosses(rule.name, value, rule.threshold)) return "alert";
  return onTarget(rule.name, value) ? "ok" : "warning";
}

/** The metrics of one scope, keyed by their JSON names. */
export function metricViews(
  rules: readonly EffectiveRule[],
  sums: Map<string, WindowSums> = NO_WINDOWS,
): Record<string, MetricView> {
  const out: Record<string, MetricView> = {};
  for (const rule of rules) {
    const def = RULES[rule.name];
    const s = sums.get(rule.name);
    const reading = s ? readRule(rule.name, s, rule.windowHours) : { value: null, events: 0 };
    out[def.metric] = {
      rule: rule.name,
      value: reading.value,
      unit: def.unit,
      target: def.target.text,
      threshold: rule.threshold,
      op: def.op,
      window_hours: rule.windowHours,
      min_events: rule.minEvents,
      events: reading.events,
      enabled: rule.enabled,
      state: stateOf(rule, reading.value, reading.events),
      ...(reading.baseline === undefined ? {} : { baseline: reading.baseline, current: reading.current }),
    };
  }
  return out;
}

/** The volume figures of a window's sums. */
export function volumeOf(s: WindowSums | undefined): Volume {
  const n = (v: number | undefined) => v ?? 0;
  const refusals =
    n(s?.refused_user) +
    n(s?.refused_tenant) +
    n(s?.refused_global) +
    n(s?.refused_address) +
    n(s?.refused_monthly_tokens) +
    n(s?.refused_visitor_tokens) +
    n(s?.refused_daily_cost) +
    n(s?.refused_conversation_cost);
  return {
    window_hours: VOLUME_HOURS,
    requests: n(s?.turns) + refusals,
    turns: n(s?.turns),
    answered: n(s?.answered),
    errors: n(s?.errors),
    disconnected: n(s?.disconnected),
    blocked: n(s?.blocked),
    human: n(s?.human),
    input_tokens: n(s?.input_tokens),
    output_tokens: n(s?.output_tokens),
    cost_usd: n(s?.cost_usd),
    conversations: n(s?.conversations),
    safety_violations: n(s?.safety_events),
    rate_limit_refusals: {
      user: n(s?.refused_user),
      tenant: n(s?.refused_tenant),
      global: n(s?.refused_global),
      address: n(s?.refused_address),
    },
    budget_refusals: {
      monthly_tokens: n(s?.refused_monthly_tokens),
      visitor_tokens: n(s?.refused_visitor_tokens),
      daily_cost: n(s?.refused_daily_cost),
      conversation_cost: n(s?.refused_conversation_cost),
    },
    daily_active_users_today: n(s?.dau_today),
  };
}

/** A firing or resolved alert as the API shows it. */
export interface AlertView {
  id: string;
  tenant_id: string;
  rule: string;
  metric: string;
  state: "firing" | "resolved";
  value: number;
  first_value: number;
  threshold: number;
  window_hours: number;
  events: number;
  fired_at: string;
  resolved_at: string | null;
  evaluated_at: string;
}

const isoOf = (v: unknown) => new Date(String(v)).toISOString();

export function alertView(r: Record<string, unknown>): AlertView {
  const rule = String(r.rule);
  return {
    id: String(r.id),
    tenant_id: String(r.tenant_id),
    rule,
    metric: RULES[rule as RuleName]?.metric ?? rule,
    state: r.state === "firing" ? "firing" : "resolved",
    value: Number(r.value),
    first_value: Number(r.first_value),
    threshold: Number(r.threshold),
    window_hours: Number(r.window_hours),
    events: Number(r.events),
    fired_at: isoOf(r.fired_at),
    resolved_at: r.resolved_at === null || r.resolved_at === undefined ? null : isoOf(r.resolved_at),
    evaluated_at: isoOf(r.evaluated_at),
  };
}

/** Alerts of one tenant (or all), newest first. */
export async function listAlerts(
  db: SqlExecutor,
  opts: { tenantId?: string; state?: "firing" | "resolved"; limit: number },
): Promise<AlertView[]> {
  const res = await db.execute(sql`
    select * from alerts
    where (${opts.tenantId ?? null}::text is null or tenant_id = ${opts.tenantId ?? null})
      and (${opts.state ?? null}::text is null or state = ${opts.state ?? null})
    order by fired_at desc, id
    limit ${opts.limit}`);
  return res.rows.map(alertView);
}

export interface TenantMonitoring {
  tenant_id: string;
  at: string;
  metrics: Record<string, MetricView>;
  volume: Volume;
  alerts: AlertView[];
}

/** One tenant's monitoring; undefined when there is no such tenant. */
export async function tenantMonitoring(
  db: SqlExecutor,
  tenantId: string,
  now: number,
): Promise<TenantMonitoring | undefined> {
  const [scope] = await loadScopes(db, { tenantId });
  if (!scope) return undefined;
  const [sums, alerts] = await Promise.all([
    readWindows(db, windowRequests([scope], { tenants: true, platform: false }), now),
    listAlerts(db, { tenantId, state: "firing", limit: RULE_NAMES.length }),
  ]);
  const mine = sums.get(scope.id);
  const metrics = metricViews(scope.rules, mine);
  // A firing alert is the state until the evaluation resolves it, whatever the window shows now.
  for (const a of alerts) {
    const m = metrics[a.metric];
    if (m?.enabled) m.state = "alert";
  }
  return {
    tenant_id: scope.id,
    at: new Date(now).toISOString(),
    metrics,
    volume: volumeOf(mine?.get("volume")),
    alerts,
  };
}

export interface QueueLagView {
  queue: string;
  /** Messages written in the last five minutes, and their average and longest wait (seconds). */
  messages_5m: number;
  avg_lag_seconds: number | null;
  max_lag_seconds: number | null;
  /** The last minute any batch of this queue was written. */
  last_write: string;
}

/** Queue lag over the last five minutes, per queue. */
export async function readQueueLag(db: SqlExecutor, now: number): Promise<QueueLagView[]> {
  const since = new Date(now - 5 * 60_000).toISOString();
  const res = await db.execute(sql`
    select queue,
      coalesce(sum(messages) filter (where minute >= ${since}::timestamptz), 0)::float8 as messages,
      sum(lag_sum_ms) filter (where minute >= ${since}::timestamptz)::float8 as lag_sum,
      max(lag_max_ms) filter (where minute >= ${since}::timestamptz)::float8 as lag_max,
      max(minute) as last_write
    from queue_lag group by queue order by queue`);
  return res.rows.map((r) => {
    const messages = Number(r.messages);
    return {
      queue: String(r.queue),
      messages_5m: messages,
      avg_lag_seconds: messages === 0 ? null : Number(r.lag_sum) / messages / 1000,
      max_lag_seconds: r.lag_max === null ? null : Number(r.lag_max) / 1000,
      last_write: isoOf(r.last_write),
    };
  });
}

export interface PlatformMonitoring {
  at: string;
  tenants: { active: number; inactive: number };
  metrics: Record<string, MetricView>;
  volume: Volume;
  queues: QueueLagView[];
  alerts_firing: Record<string, number>;
}

/** Platform-wide monitoring: every tenant's rollups together, inactive included, under the default rules. */
export async function platformMonitoring(db: SqlExecutor, now: number): Promise<PlatformMonitoring> {
  const scopes = await loadScopes(db);
  const [sums, queues, firing] = await Promise.all([
    readWindows(db, windowRequests(scopes, { tenants: false, platform: true }), now),
    readQueueLag(db, now),
    db.execute(sql`select rule, count(*)::int as n from alerts where state = 'firing' group by rule`),
  ]);
  const mine = sums.get(PLATFORM);
  return {
    at: new Date(now).toISOString(),
    tenants: {
      active: scopes.filter((s) => s.active).length,
      inactive: scopes.filter((s) => !s.active).length,
    },
    metrics: metricViews(effectiveRules(), mine),
    volume: volumeOf(mine?.get("volume")),
    queues,
    alerts_firing: Object.fromEntries(firing.rows.map((r) => [String(r.rule), Number(r.n)])),
  };
}
