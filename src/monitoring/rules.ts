/**
 * The alert rules: the reference design's monitoring table, with its alert thresholds as defaults,
 * its targets for the state shown beside each value, and what a tenant may override (threshold,
 * window, minimum events, on/off). Values are in the dashboard's units: milliseconds, percent, USD.
 */
import { z } from "@hono/zod-openapi";
import type { AlertRuleOverride } from "../db/schema.ts";

export const RULE_NAMES = [
  "p50_response_time",
  "p99_response_time",
  "resolution_rate",
  "escalation_rate",
  "error_rate",
  "dau_change",
  "cost_per_conversation",
  "csat",
  "safety_spike",
  "handoff_wait",
] as const;
export type RuleName = (typeof RULE_NAMES)[number];

/** What the minimum-events guard counts for a rule. */
export type EventBase =
  | "answered_turns"
  | "conversations"
  | "csat_ratings"
  | "daily_users"
  | "safety_events"
  | "waiting_conversations";

export interface RuleDef {
  /** The metric the rule watches: a key of the monitoring JSON. */
  metric: string;
  description: string;
  unit: "ms" | "pct" | "usd" | "score" | "ratio" | "s";
  /** Fires when the value is above (gt) or below (lt) the threshold. */
  op: "gt" | "lt";
  threshold: number;
  /** The reference design's target: inside it the state is ok, outside it (not yet alerting) warning. */
  target: { op: "lt" | "gt"; value: number; text: string };
  windowHours: number;
  minEvents: number;
  events: EventBase;
  /** The range a threshold override must fall in. */
  range: [number, number];
}

export const RULES: Record<RuleName, RuleDef> = {
  p50_response_time: {
    metric: "p50_response_time_ms",
    description: "P50 response time above the threshold: slow bots get abandoned",
    unit: "ms",
    op: "gt",
    threshold: 5_000,
    target: { op: "lt", value: 2_000, text: "< 2 s" },
    windowHours: 1,
    minEvents: 20,
    events: "answered_turns",
    range: [1, 600_000],
  },
  p99_response_time: {
    metric: "p99_response_time_ms",
    description: "P99 response time above the threshold: tail latency shows system issues",
    unit: "ms",
    op: "gt",
    threshold: 15_000,
    target: { op: "lt", value: 8_000, text: "< 8 s" },
    windowHours: 1,
    minEvents: 20,
    events: "answered_turns",
    range: [1, 600_000],
  },
  resolution_rate: {
    metric: "resolution_rate_pct",
    description: "Resolution rate below the threshold: the bot is not doing its job",
    unit: "pct",
    op: "lt",
    threshold: 50,
    target: { op: "gt", value: 75, text: "> 75%" },
    windowHours: 24,
    minEvents: 20,
    events: "conversations",
    range: [0, 100],
  },
  escalation_rate: {
    metric: "escalation_rate_pct",
    description: "Escalation rate above the threshold: the bot hands too much to humans",
    unit: "pct",
    op: "gt",
    threshold: 30,
    target: { op: "lt", value: 15, text: "< 15%" },
    windowHours: 24,
    minEvents: 20,
    events: "conversations",
    range: [0, 100],
  },
  error_rate: {
    metric: "error_rate_pct",
    description:
      "Error rate above the threshold: failed model calls (provider failures, timeouts) and tool failures",
    unit: "pct",
    op: "gt",
    threshold: 5,
    target: { op: "lt", value: 1, text: "< 1%" },
    windowHours: 1,
    minEvents: 20,
    events: "answered_turns",
    range: [0, 100],
  },
  dau_change: {
    metric: "dau_change_pct",
    description: "Daily active users down week over week: adoption is falling",
    unit: "pct",
    op: "lt",
    threshold: -20,
    target: { op: "gt", value: 0, text: "growing" },
    windowHours: 168,
    minEvents: 10,
    events: "daily_users",
    range: [-100, 0],
  },
  cost_per_conversation: {
    metric: "cost_per_conversation_usd",
    description: "Cost per conversation above the threshold: financial sustainability",
    unit: "usd",
    op: "gt",
    threshold: 0.5,
    target: { op: "lt", value: 0.1, text: "< $0.10" },
    windowHours: 24,
    minEvents: 20,
    events: "conversations",
    range: [0, 1_000],
  },
  csat: {
    metric: "avg_csat",
    description: "Average CSAT below the threshold: visitors are unhappy",
    unit: "score",
    op: "lt",
    threshold: 3,
    target: { op: "gt", value: 4, text: "> 4.0" },
    windowHours: 24,
    minEvents: 10,
    events: "csat_ratings",
    range: [1, 5],
  },
  safety_spike: {
    metric: "safety_spike_ratio",
    description:
      "Safety violations in the window above this multiple of their baseline (the average per window over the 7 days before): attacks, policy gaps",
    unit: "ratio",
    op: "gt",
    threshold: 3,
    target: { op: "lt", value: 1.5, text: "tracked (near its baseline)" },
    windowHours: 1,
    minEvents: 5,
    events: "safety_events",
    range: [1, 1_000],
  },
  handoff_wait: {
    metric: "handoff_wait_seconds",
    description:
      "A conversation has waited for a human longer than the threshold (seconds since it was escalated, not yet taken over)",
    unit: "s",
    op: "gt",
    threshold: 300,
    target: { op: "lt", value: 60, text: "< 1 min" },
    // Not a window: the value is the longest wait now, from the inbox (src/monitoring/windows.ts).
    windowHours: 1,
    // Zero: with nobody waiting the value is 0 and a firing alert resolves.
    minEvents: 0,
    events: "waiting_conversations",
    range: [1, 7 * 86_400],
  },
};

/** The tenant setting `handoff_wait_alert_seconds`: the handoff_wait rule's threshold, 0 for off. */
export function handoffWaitSeconds(overrides: Record<string, AlertRuleOverride>): number {
  const o = overrides.handoff_wait;
  if (o?.enabled === false) return 0;
  return o?.threshold ?? RULES.handoff_wait.threshold;
}

/** A rule as it applies to one tenant: the defaults with the tenant's overrides. */
export interface EffectiveRule {
  name: RuleName;
  threshold: number;
  windowHours: number;
  minEvents: number;
  enabled: boolean;
}

export function effectiveRules(overrides: Record<string, AlertRuleOverride> = {}): EffectiveRule[] {
  return RULE_NAMES.map((name) => {
    const d = RULES[name];
    const o = overrides[name] ?? {};
    return {
      name,
      threshold: o.threshold ?? d.threshold,
      windowHours: o.window_hours ?? d.windowHours,
      minEvents: o.min_events ?? d.minEvents,
      enabled: o.enabled ?? true,
    };
  });
}

/** Whether `value` crosses the rule's threshold. */
export function crosses(name: RuleName, value: number, threshold: number): boolean {
  return RULES[name].op === "gt" ? value > threshold : value < threshold;
}

/** Whether `value` is inside the reference design's target. */
export function onTarget(name: RuleName, value: number): boolean {
  const t = RULES[name].target;
  return t.op === "lt" ? value < t.value : value > t.value;
}

/** The longest window a tenant may set: 30 days. */
export const MAX_WINDOW_HOURS = 720;

const Override = z
  .object({
    threshold: z.number().finite().optional(),
    window_hours: z.number().int().min(1).max(MAX_WINDOW_HOURS).optional(),
    min_events: z.number().int().min(1).max(1_000_000).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

/** A PUT of alert settings: overrides per rule (null removes one), and an optional webhook. */
export const AlertSettingsInput = z
  .object({
    rules: z.partialRecord(z.enum(RULE_NAMES), Override.nullable()).optional(),
    /**
     * Alert when a conversation waits for a human longer than this many seconds; 0 turns it off.
     * The same setting as the handoff_wait rule's threshold (and enabled), written there.
     */
    handoff_wait_alert_seconds: z.number().int().min(0).max(RULES.handoff_wait.range[1]).optional(),
    webhook_url: z
      .url({ protocol: /^https?$/, error: "webhook_url must be an http(s) URL" })
      .max(2048)
      .nullable()
      .optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.handoff_wait_alert_seconds !== undefined && v.rules?.handoff_wait !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["handoff_wait_alert_seconds"],
        message: "set handoff_wait_alert_seconds or rules.handoff_wait, not both",
      });
    }
    for (const [name, o] of Object.entries(v.rules ?? {})) {
      if (!o) continue;
      const def = RULES[name as RuleName];
      if (o.threshold !== undefined && (o.threshold < def.range[0] || o.threshold > def.range[1])) {
        ctx.addIssue({
          code: "custom",
          path: ["rules", name, "threshold"],
          message: `must be between ${def.range[0]} and ${def.range[1]} (${def.unit})`,
        });
      }
      if (name === "handoff_wait" && (o.window_hours !== undefined || o.min_events !== undefined)) {
        ctx.addIssue({
          code: "custom",
          path: ["rules", name],
          message: "handoff_wait looks at the conversations waiting now: it has no window or minimum",
        });
      }
      if (name === "dau_change" && o.window_hours !== undefined && o.window_hours % 24 !== 0) {
        ctx.addIssue({
          code: "custom",
          path: ["rules", name, "window_hours"],
          message: "dau_change compares whole days: a multiple of 24",
        });
      }
    }
  });
export type AlertSettingsInput = z.infer<typeof AlertSettingsInput>;

/**
 * Merges a PUT into stored overrides: fields given replace, null removes the rule's override;
 * `handoff_wait_alert_seconds` becomes the handoff_wait rule's threshold (0: the rule off).
 */
export function mergeOverrides(
  stored: Record<string, AlertRuleOverride>,
  patch: AlertSettingsInput["rules"],
  handoffWaitAlertSeconds?: number,
): Record<string, AlertRuleOverride> {
  const out: Record<string, AlertRuleOverride> = { ...stored };
  for (const [name, o] of Object.entries(patch ?? {})) {
    if (o === null) delete out[name];
    else if (o) out[name] = { ...out[name], ...o };
  }
  if (handoffWaitAlertSeconds === 0) out.handoff_wait = { ...out.handoff_wait, enabled: false };
  else if (handoffWaitAlertSeconds !== undefined)
    out.handoff_wait = { ...out.handoff_wait, threshold: handoffWaitAlertSeconds, enabled: true };
  return out;
}
