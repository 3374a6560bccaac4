import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { adminAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { adminSecurity, errors, jsonBody, jsonResponse } from "../openapi";
import type { TenantScope } from "../tenants/scope";
import { readDashboard } from "./dashboard";
import { deadLetterOut, listDeadLetters, replayDeadLetters } from "./dead-letters";

const DaysQuery = z.object({
  days: z.coerce
    .number()
    .int()
    .min(1)
    .max(365)
    .default(7)
    .openapi({
      param: { name: "days", in: "query" },
      description: "UTC days ending today, 1..365",
      example: 7,
    }),
});

const num = z.number();
const maybe = z.number().nullable();
const FigureFields = {
  total_conversations: num,
  avg_turns_per_conversation: maybe,
  resolution_rate_pct: maybe,
  escalation_rate_pct: maybe,
  avg_csat: maybe.openapi({ description: "Rated conversations only" }),
  csat_responses: num,
  total_turns: num.openapi({ description: "Answered visitor messages, every outcome" }),
  disconnected_turns: num.openapi({ description: "Turns the client left mid-answer (not errors)" }),
  human_turns: num.openapi({ description: "Messages handed to a human without a model call" }),
  total_tokens: num,
  total_cost_usd: num,
  avg_response_time_ms: maybe,
  p50_response_time_ms: maybe.openapi({ description: "Nearest rank, within 1/64 + 0.5 ms" }),
  p99_response_time_ms: maybe.openapi({ description: "Nearest rank, within 1/64 + 0.5 ms" }),
  streamed_answers: num.openapi({
    description: "Answered turns that were streamed (have a first-token time)",
  }),
  p50_first_token_ms: maybe.openapi({
    description: "Streamed answers: arrival to the first content token; nearest rank, within 1/64 + 0.5 ms",
  }),
  p95_first_token_ms: maybe.openapi({
    description: "Streamed answers: arrival to the first content token; nearest rank, within 1/64 + 0.5 ms",
  }),
  error_rate_pct: maybe,
  daily_active_users: num.openapi({ description: "Window: the average over its days" }),
  cost_per_conversation_usd: maybe,
  safety_violations_blocked: num,
  human_handled_conversations: num.openapi({
    description: "Ended conversations an operator held (took over) at some point",
  }),
  human_handled_pct: maybe.openapi({ description: "Of ended conversations" }),
  resolved_by_human: num.openapi({ description: "Resolved conversations an operator resolved" }),
  resolved_by_bot: num.openapi({ description: "Resolved conversations no operator resolved" }),
  resolved_by_human_pct: maybe.openapi({ description: "Of ended conversations" }),
  resolved_by_bot_pct: maybe.openapi({ description: "Of ended conversations" }),
  human_replies: num.openapi({
    description: "Ended conversations with an operator message: the base of the first-human-reply times",
  }),
  avg_first_human_reply_ms: maybe.openapi({
    description: "First operator message minus when a human was first asked for (escalation, else takeover)",
  }),
  p50_first_human_reply_ms: maybe.openapi({ description: "Nearest rank, within 1/64 + 0.5 ms" }),
  p95_first_human_reply_ms: maybe.openapi({ description: "Nearest rank, within 1/64 + 0.5 ms" }),
};
export const Dashboard = z
  .object({
    tenant_id: z.string(),
    days: z.number(),
    from: z.string().openapi({ example: "2026-11-23" }),
    to: z.string().openapi({ example: "2026-11-29" }),
    totals: z.object(FigureFields),
    series: z.array(z.object({ day: z.string(), ...FigureFields })),
    /** The tool loop's calls per tool over the window, most called first. */
    tools: z.array(
      z.object({
        tool: z.string(),
        calls: z.number(),
        failures: z.number(),
        failure_rate_pct: z.number().nullable(),
        avg_latency_ms: z.number().nullable(),
      }),
    ),
    knowledge: z
      .object({
        answers: num.openapi({
          description: "Model answers to messages the tenant's knowledge was searched for",
        }),
        grounded: num.openapi({ description: "Of them, answers citing at least one source" }),
        grounded_pct: maybe,
        unanswered: num.openapi({ description: "Of them, answers that are the tenant's \"I don't know\"" }),
        unanswered_pct: maybe,
        top_sources: z.array(
          z.object({
            source_id: z.string(),
            title: z.string().nullable().openapi({ description: "Null for a source deleted since" }),
            citations: num,
          }),
        ),
      })
      .openapi({ description: "Answers from the tenant's knowledge (docs/knowledge.md)" }),
  })
  .openapi("Dashboard");

const DeadLetter = z
  .object({
    id: z.number(),
    message_id: z.string(),
    queue: z.string(),
    reason: z.enum(["invalid", "rejected", "exhausted"]),
    error: z.string(),
    body: z.string().openapi({ description: "The message body as JSON text" }),
    tenant_id: z.string().nullable(),
    event_id: z.string().nullable(),
    attempts: z.number(),
    created_at: z.string(),
    replayed_at: z.string().nullable(),
    replays: z.number(),
  })
  .openapi("DeadLetter");

const filterFields = {
  reason: z.enum(["invalid", "rejected", "exhausted"]).optional(),
  tenant_id: z.string().min(1).max(63).optional(),
};

const listDeadLettersRoute = createRoute({
  method: "get",
  path: "/dead-letters",
  tags: ["admin: analytics"],
  security: adminSecurity,
  middleware: [adminAuth],
  summary: "Analytics dead letters not yet replayed, oldest first",
  request: {
    query: z.object({ ...filterFields, limit: z.coerce.number().int().min(1).max(100).default(50) }),
  },
  responses: {
    200: jsonResponse(
      z.object({ dead_letters: z.array(DeadLetter), pending: z.number() }),
      "Pending dead letters and their number",
    ),
    ...errors(400, 401),
  },
});

const ReplayInput = z
  .object({
    ...filterFields,
    ids: z.array(z.number().int().positive()).min(1).max(1000).optional(),
    limit: z.number().int().min(1).max(1000).default(100),
  })
  .strict()
  .openapi("DeadLetterReplay");

const replayRoute = createRoute({
  method: "post",
  path: "/dead-letters/replay",
  tags: ["admin: analytics"],
  security: adminSecurity,
  middleware: [adminAuth],
  summary: "Send pending dead letters back onto the analytics queue and mark them replayed",
  request: { body: jsonBody(ReplayInput) },
  responses: {
    200: jsonResponse(
      z.object({ replayed: z.number(), ids: z.array(z.number()), remaining: z.number() }),
      "What was replayed, and how many matching dead letters are still pending",
    ),
    ...errors(400, 401, 415, 503),
  },
});

/** Admin analytics: dead letters and their replay. */
export const adminAnalytics = newRouter()
  .openapi(listDeadLettersRoute, async (c) => {
    const q = c.req.valid("query");
    const svc = c.get("svc");
    const { rows, pending } = await listDeadLetters(
      svc.dbh.db,
      { queue: svc.env.ANALYTICS_QUEUE_NAME, reason: q.reason, tenantId: q.tenant_id },
      q.limit,
    );
    return c.json({ dead_letters: rows.map(deadLetterOut), pending }, 200);
  })
  .openapi(replayRoute, async (c) => {
    const svc = c.get("svc");
    const b = c.req.valid("json");
    const out = await replayDeadLetters(
      svc.dbh.db,
      svc.env.ANALYTICS_QUEUE,
      { queue: svc.env.ANALYTICS_QUEUE_NAME, reason: b.reason, tenantId: b.tenant_id, ids: b.ids },
      b.limit,
    );
    return c.json(out, 200);
  });

/** The tenant's analytics dashboard: /v1/analytics/dashboard and /admin/tenants/{id}/analytics/dashboard. */
export const dashboardRoutes = (scope: TenantScope) =>
  newRouter().openapi(
    scope.route({
      method: "get",
      path: "/analytics/dashboard",
      tags: ["analytics"],
      summary: "The tenant's analytics dashboard for the last N UTC days, with a series per day",
      request: { query: DaysQuery },
      responses: { 200: jsonResponse(Dashboard, "The dashboard"), ...errors(400) },
    }),
    async (c) => {
      const tenant = c.get("tenant");
      const data = await readDashboard(c.get("svc").dbh.db, tenant.id, c.req.valid("query").days);
      if (!data) throw new AppError("NOT_FOUND", `no tenant ${tenant.id}`);
      return c.json(data, 200);
    },
  );
