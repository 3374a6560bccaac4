import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppEnv, newRouter } from "../app.ts";
import { adminAuth } from "../auth/middleware.ts";
import { AppError } from "../errors.ts";
import { adminSecurity, errors, jsonBody, jsonResponse } from "../openapi.ts";
import { TenantIdParam } from "../tenants/schemas.ts";
import { type TenantScope, urlForReader } from "../tenants/scope.ts";
import { evaluateAlerts } from "./evaluate.ts";
import { renderMetrics } from "./prometheus.ts";
import { AlertSettingsInput, RULE_NAMES } from "./rules.ts";
import { listAlerts, platformMonitoring, tenantMonitoring } from "./service.ts";
import { getAlertSettings, putAlertSettings } from "./settings.ts";

export const Metric = z
  .object({
    rule: z.enum(RULE_NAMES),
    value: z.number().nullable(),
    unit: z.string().openapi({ description: "ms, pct, usd, score, ratio or s (seconds)" }),
    target: z.string().openapi({ description: "The reference design's target" }),
    threshold: z.number(),
    op: z.enum(["gt", "lt"]).openapi({ description: "Alerts when the value is above (gt) or below (lt)" }),
    window_hours: z.number(),
    min_events: z.number(),
    events: z.number(),
    enabled: z.boolean(),
    state: z.enum(["ok", "warning", "alert", "insufficient_data", "off"]),
    baseline: z.number().optional(),
    current: z.number().optional(),
  })
  .openapi("MonitoringMetric");

export const Volume = z
  .object({
    window_hours: z.number(),
    requests: z.number(),
    turns: z.number(),
    answered: z.number(),
    errors: z.number(),
    disconnected: z
      .number()
      .openapi({ description: "Turns the client left mid-answer: not answered, not errors" }),
    blocked: z.number(),
    human: z.number().openapi({ description: "Messages handed to a human without a model call" }),
    input_tokens: z.number(),
    output_tokens: z.number(),
    cost_usd: z.number(),
    conversations: z.number(),
    safety_violations: z.number(),
    rate_limit_refusals: z.object({
      user: z.number(),
      tenant: z.number(),
      global: z.number(),
      address: z.number().openapi({ description: "Browser messages over their address's window" }),
    }),
    budget_refusals: z.object({
      monthly_tokens: z.number(),
      visitor_tokens: z.number().openapi({ description: "A browser visitor's share of the month used up" }),
      daily_cost: z.number(),
      conversation_cost: z.number(),
    }),
    daily_active_users_today: z.number(),
  })
  .openapi("MonitoringVolume");

export const Alert = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    rule: z.string(),
    metric: z.string(),
    state: z.enum(["firing", "resolved"]),
    value: z.number(),
    first_value: z.number(),
    threshold: z.number(),
    window_hours: z.number(),
    events: z.number(),
    fired_at: z.string(),
    resolved_at: z.string().nullable(),
    evaluated_at: z.string(),
  })
  .openapi("Alert");

export const TenantMonitoring = z
  .object({
    tenant_id: z.string(),
    at: z.string(),
    metrics: z.record(z.string(), Metric),
    volume: Volume,
    alerts: z.array(Alert).openapi({ description: "Alerts firing now" }),
  })
  .openapi("TenantMonitoring");

export const PlatformMonitoring = z
  .object({
    at: z.string(),
    tenants: z.object({ active: z.number(), inactive: z.number() }),
    metrics: z.record(z.string(), Metric),
    volume: Volume,
    queues: z.array(
      z.object({
        queue: z.string(),
        messages_5m: z.number(),
        avg_lag_seconds: z.number().nullable(),
        max_lag_seconds: z.number().nullable(),
        last_write: z.string(),
      }),
    ),
    alerts_firing: z.record(z.string(), z.number()),
  })
  .openapi("PlatformMonitoring");

export const AlertSettings = z
  .object({
    tenant_id: z.string(),
    webhook_url: z.string().nullable(),
    webhook_secret: z.string().optional().openapi({
      description: "Shown once, when a new webhook_url is set: the secret its deliveries are signed with",
    }),
    handoff_wait_alert_seconds: z.number().openapi({
      description:
        "Alert when a conversation waits for a human longer than this (seconds); 0: off. The handoff_wait rule's threshold",
    }),
    overrides: z.record(z.string(), z.unknown()),
    rules: z.array(
      z.object({
        rule: z.string(),
        metric: z.string(),
        description: z.string(),
        unit: z.string(),
        op: z.enum(["gt", "lt"]),
        threshold: z.number(),
        default_threshold: z.number(),
        window_hours: z.number(),
        min_events: z.number(),
        enabled: z.boolean(),
        windowed: z.boolean().openapi({
          description:
            "False for handoff_wait, which reads the conversations waiting now: window_hours and min_events do not apply",
        }),
      }),
    ),
  })
  .openapi("AlertSettings");

const AlertsQuery = z.object({
  state: z
    .enum(["firing", "resolved"])
    .optional()
    .openapi({ param: { name: "state", in: "query" } }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(500)
    .default(100)
    .openapi({ param: { name: "limit", in: "query" } }),
});

export const Evaluation = z
  .object({
    at: z.string(),
    tenants: z.number(),
    evaluated: z.number(),
    insufficient: z.number(),
    fired: z.array(Alert),
    resolved: z.array(Alert),
    still_firing: z.number(),
    notices: z.number(),
  })
  .openapi("AlertEvaluation");

const SettingsBody = jsonBody(AlertSettingsInput.openapi("AlertSettingsInput"));

const admin = { security: adminSecurity, middleware: [adminAuth] };
const adminTags = ["admin: monitoring"];

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: adminTags,
  ...admin,
  summary: "Every metric in the Prometheus text format, tenant as a label (point a scraper here)",
  responses: {
    200: {
      description: "Prometheus text exposition format 0.0.4",
      content: { "text/plain": { schema: z.string() } },
    },
    ...errors(401),
  },
});

const platformRoute = createRoute({
  method: "get",
  path: "/monitoring",
  tags: adminTags,
  ...admin,
  summary: "Platform-wide monitoring: the reference metrics over all tenants, volume, queue lag",
  responses: { 200: jsonResponse(PlatformMonitoring, "Platform monitoring"), ...errors(401) },
});

const evaluateRoute = createRoute({
  method: "post",
  path: "/monitoring/evaluate",
  tags: adminTags,
  ...admin,
  summary: "Evaluate the alert rules now (the cron trigger does this every 5 minutes)",
  request: {
    query: z.object({
      tenant_id: TenantIdParam.shape.id
        .optional()
        .openapi({ param: { name: "tenant_id", in: "query" }, description: "Only this tenant" }),
    }),
  },
  responses: { 200: jsonResponse(Evaluation, "What changed"), ...errors(400, 401) },
});

async function monitoringOrNotFound(c: Context<AppEnv>, tenantId: string) {
  const data = await tenantMonitoring(c.get("svc").dbh.db, tenantId, Date.now());
  if (!data) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
  return data;
}

async function alertsOf(c: Context<AppEnv>, tenantId: string, q: z.infer<typeof AlertsQuery>) {
  return { alerts: await listAlerts(c.get("svc").dbh.db, { tenantId, state: q.state, limit: q.limit }) };
}

/** Admin monitoring: Prometheus metrics, platform monitoring, evaluation. */
export const adminMonitoring = newRouter()
  .openapi(metricsRoute, async (c) => {
    const text = await renderMetrics(c.get("svc").dbh.db, Date.now());
    return c.text(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  })
  .openapi(platformRoute, async (c) => c.json(await platformMonitoring(c.get("svc").dbh.db, Date.now()), 200))
  .openapi(evaluateRoute, async (c) => {
    const svc = c.get("svc");
    const report = await evaluateAlerts(svc.env, svc.dbh.db, Date.now(), {
      tenantId: c.req.valid("query").tenant_id,
      origin: new URL(c.req.url).origin,
    });
    return c.json(report, 200);
  });

/** A tenant's monitoring, alerts and alert settings: under /v1 (secret key) and /admin/tenants/{id}. */
export const monitoringRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/monitoring",
        tags: ["monitoring"],
        summary: "The tenant's monitoring: each metric's value, target, threshold and state",
        responses: { 200: jsonResponse(TenantMonitoring, "Monitoring") },
      }),
      async (c) => c.json(await monitoringOrNotFound(c, c.get("tenant").id), 200),
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/alerts",
        tags: ["monitoring"],
        summary: "The tenant's alerts, newest first",
        request: { query: AlertsQuery },
        responses: { 200: jsonResponse(z.object({ alerts: z.array(Alert) }), "Alerts"), ...errors(400) },
      }),
      async (c) => c.json(await alertsOf(c, c.get("tenant").id, c.req.valid("query")), 200),
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/alert-settings",
        tags: ["monitoring"],
        summary: "The tenant's alert rules (defaults with its overrides) and alert webhook",
        responses: { 200: jsonResponse(AlertSettings, "Alert settings") },
      }),
      async (c) => {
        const settings = await getAlertSettings(c.get("svc").dbh.db, c.get("tenant").id);
        // A webhook URL is a credential (a Slack hook posts to the channel): an agent reads its origin.
        return c.json({ ...settings, webhook_url: urlForReader(c, settings.webhook_url) }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "put",
        path: "/alert-settings",
        tags: ["monitoring"],
        summary: "Override the tenant's alert thresholds, windows, minimum events; set its alert webhook",
        request: { body: SettingsBody },
        responses: { 200: jsonResponse(AlertSettings, "Alert settings"), ...errors(400, 415) },
      }),
      async (c) => {
        const db = c.get("svc").dbh.db;
        const out = await putAlertSettings(db, c.get("tenant").id, c.req.valid("json"), c.get("actor"));
        // A new webhook's secret is in this answer: no cache keeps it.
        return c.json(out, 200, { "Cache-Control": "no-store" });
      },
    );
