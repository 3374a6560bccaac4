/**
 * The monitoring metrics in words and numbers, and the alert settings form's checks: what the
 * Monitoring pages show, kept free of the DOM so test/web can check it.
 */

import type {
  AlertRuleOverride,
  AlertSettings,
  AlertSettingsInput,
  AlertSettingsRule,
  MonitoringMetric,
} from "../../src/api-types";
import { fixed, int, ms, pct, usd } from "./format";

/** Each metric's name on screen, by its key in the monitoring JSON (src/monitoring/rules.ts). */
export const METRIC_LABELS: Record<string, string> = {
  p50_response_time_ms: "Response time P50",
  p99_response_time_ms: "Response time P99",
  resolution_rate_pct: "Resolution rate",
  escalation_rate_pct: "Escalation rate",
  error_rate_pct: "Error rate",
  dau_change_pct: "Daily active users, week over week",
  cost_per_conversation_usd: "Cost per conversation",
  avg_csat: "Average CSAT",
  safety_spike_ratio: "Safety violations vs. baseline",
  handoff_wait_seconds: "Longest wait for a human",
};

/** "1 tenant", "3 tenants". */
export const count = (n: number, word: string): string => `${int(n)} ${n === 1 ? word : `${word}s`}`;

export const metricLabel = (metric: string): string => METRIC_LABELS[metric] ?? metric;

export const STATE_LABELS: Record<MonitoringMetric["state"], string> = {
  ok: "ok",
  warning: "warning",
  alert: "alert",
  insufficient_data: "insufficient data",
  off: "off",
};

/** A value in its unit: milliseconds, seconds, percent, USD, a 1-5 score, or a multiple of a baseline. */
export function inUnit(v: number | null, unit: string): string {
  if (unit === "ms") return ms(v);
  if (unit === "s") return v === null ? "—" : v < 120 ? `${int(v)} s` : `${fixed(v / 60, 1)} min`;
  if (unit === "pct") return pct(v);
  // Below a cent, two significant digits: a mock model's $0.000069 is not "$0.00".
  if (unit === "usd")
    return v !== null && v > 0 && v < 0.01
      ? `$${v.toLocaleString("en-US", { maximumSignificantDigits: 2 })}`
      : usd(v);
  if (unit === "ratio") return v === null ? "—" : `${fixed(v, 1)}×`;
  return fixed(v, unit === "score" ? 2 : 1);
}

/** "> 5,000 ms": the side of the threshold that alerts. */
export function thresholdText(op: "gt" | "lt", threshold: number, unit: string): string {
  return `${op === "gt" ? ">" : "<"} ${inUnit(threshold, unit)}`;
}

/** "1 hour", "24 hours", "7 days". */
export function windowText(hours: number): string {
  if (hours === 1) return "1 hour";
  if (hours > 24 && hours % 24 === 0) return `${hours / 24} days`;
  return `${hours} hours`;
}

/** The editable fields of one rule, as the form holds them (text from inputs, a checkbox). */
export interface RuleEdit {
  threshold: string;
  window_hours: string;
  min_events: string;
  enabled: boolean;
}

export type SettingsField = "threshold" | "window_hours" | "min_events" | "enabled";

/** The form's key of a control: `<rule>.<field>`, or `webhook_url`. */
export type ControlKey = `${string}.${SettingsField}` | "webhook_url";

/** The browser's checks; ranges that depend on the rule are the server's (shown as it words them). */
function number(raw: string, integer: boolean, min?: number, max?: number): number | string {
  const s = raw.trim();
  if (s === "") return "required";
  const n = Number(s);
  if (!Number.isFinite(n)) return "not a number";
  if (integer && !Number.isInteger(n)) return "a whole number";
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) return `between ${min} and ${max}`;
  return n;
}

/** The PUT body for what changed (only changed rules, only changed fields), or the problems found. */
export function settingsPut(
  current: AlertSettings,
  edits: Record<string, RuleEdit>,
  webhook: string,
): { ok: true; body: AlertSettingsInput } | { ok: false; problems: Partial<Record<ControlKey, string>> } {
  const problems: Partial<Record<ControlKey, string>> = {};
  const rules: Record<string, AlertRuleOverride> = {};
  for (const r of current.rules) {
    const e = edits[r.rule];
    if (!e) continue;
    const parsed = {
      threshold: number(e.threshold, false),
      window_hours: number(e.window_hours, true, 1, 720),
      min_events: number(e.min_events, true, 1, 1_000_000),
    };
    const o: AlertRuleOverride = {};
    const was = editOf(r);
    for (const f of ["threshold", "window_hours", "min_events"] as const) {
      // A field left as it was is not checked again: handoff_wait's minimum of 0 is the server's.
      if (e[f].trim() === was[f]) continue;
      const v = parsed[f];
      if (typeof v === "string") problems[`${r.rule}.${f}`] = v;
      else if (v !== r[f]) o[f] = v;
    }
    if (e.enabled !== r.enabled) o.enabled = e.enabled;
    if (Object.keys(o).length > 0) rules[r.rule] = o;
  }
  const hook = webhook.trim();
  if (hook !== "" && !/^https?:\/\//i.test(hook)) problems.webhook_url = "an http(s) URL, or empty for none";
  if (Object.keys(problems).length > 0) return { ok: false, problems };
  const body: AlertSettingsInput = {};
  if (Object.keys(rules).length > 0) body.rules = rules;
  if ((hook || null) !== current.webhook_url) body.webhook_url = hook || null;
  return { ok: true, body };
}

/** Where the server's issue path (`rules.csat.threshold`, `webhook_url`) belongs in the form. */
export function controlOf(path: string): ControlKey | undefined {
  if (path === "webhook_url") return "webhook_url";
  const [top, rule, field] = path.split(".");
  if (top !== "rules" || !rule) return undefined;
  const f = (["threshold", "window_hours", "min_events", "enabled"] as const).find((x) => x === field);
  return `${rule}.${f ?? "threshold"}`;
}

/** The form's starting values for a rule. */
export function editOf(r: AlertSettingsRule): RuleEdit {
  return {
    threshold: String(r.threshold),
    window_hours: String(r.window_hours),
    min_events: String(r.min_events),
    enabled: r.enabled,
  };
}
