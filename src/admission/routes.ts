import { z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import type { Env } from "../env";
import { errors, jsonResponse } from "../openapi";
import type { TenantConfig } from "../tenants/config";
import type { TenantScope } from "../tenants/scope";
import { admissionConfig, tenantGate } from "./client";
import { gateFailure } from "./headers";
import type { UsageView } from "./usage-view";

const DaysQuery = z.object({
  days: z.coerce
    .number({ error: "days must be a whole number from 1 to 90" })
    .int("days must be a whole number from 1 to 90")
    .min(1, "days must be at least 1")
    .max(90, "days must be at most 90")
    .default(7)
    .openapi({ param: { name: "days", in: "query" }, example: 7 }),
});

const Day = z.object({
  date: z.string().openapi({ example: "2026-11-29" }),
  cost_usd: z.number(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  messages: z.number().int(),
});

export const Usage = z
  .object({
    tenant_id: z.string(),
    timezone: z.string(),
    as_of: z.string(),
    month: z.object({
      month: z.string().openapi({ example: "2026-11" }),
      token_budget: z.number().int(),
      tokens_used: z.number().int(),
      tokens_reserved: z.number().int().openapi({ description: "Held by admitted, unsettled messages" }),
      tokens_left: z.number().int(),
      cost_usd: z.number(),
      resets_at: z.string(),
    }),
    today: z.object({
      date: z.string(),
      cost_usd: z.number(),
      reserved_usd: z.number(),
      budget_usd: z.number().nullable(),
      left_usd: z.number().nullable(),
      resets_at: z.string(),
    }),
    daily: z.array(Day).openapi({ description: "Cost per tenant-local day, newest first" }),
    total_7d_usd: z.number(),
    avg_daily_7d_usd: z.number(),
    window: z.object({
      seconds: z.number().int(),
      tenant_limit: z.number().int(),
      tenant_used: z.number().int(),
      tenant_remaining: z.number().int(),
      reset_seconds: z.number().int(),
      active_users: z.number().int(),
      open_reservations: z.number().int(),
      leased_global_units: z.number().int(),
    }),
  })
  .openapi("Usage");

async function usageOf(env: Env, tenant: TenantConfig, days: number): Promise<UsageView> {
  try {
    return await tenantGate(env, tenant.id).usage({
      tenantId: tenant.id,
      days,
      config: admissionConfig(tenant),
    });
  } catch (err) {
    throw gateFailure(err);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The API's view of a usage answer. */
export function usageOut(u: UsageView): z.infer<typeof Usage> {
  return {
    tenant_id: u.tenantId,
    timezone: u.timezone,
    as_of: iso(u.asOf),
    month: {
      month: u.month.month,
      token_budget: u.month.tokenBudget,
      tokens_used: u.month.tokensUsed,
      tokens_reserved: u.month.tokensReserved,
      tokens_left: u.month.tokensLeft,
      cost_usd: u.month.costUsd,
      resets_at: iso(u.month.resetsAt),
    },
    today: {
      date: u.today.date,
      cost_usd: u.today.costUsd,
      reserved_usd: u.today.reservedUsd,
      budget_usd: u.today.budgetUsd,
      left_usd: u.today.leftUsd,
      resets_at: iso(u.today.resetsAt),
    },
    daily: u.daily.map((d) => ({
      date: d.date,
      cost_usd: d.costUsd,
      input_tokens: d.inputTokens,
      output_tokens: d.outputTokens,
      messages: d.messages,
    })),
    total_7d_usd: u.total7dUsd,
    avg_daily_7d_usd: u.avgDaily7dUsd,
    window: {
      seconds: u.window.seconds,
      tenant_limit: u.window.tenantLimit,
      tenant_used: u.window.tenantUsed,
      tenant_remaining: u.window.tenantRemaining,
      reset_seconds: u.window.resetSeconds,
      active_users: u.window.activeUsers,
      open_reservations: u.window.openReservations,
      leased_global_units: u.window.leasedGlobalUnits,
    },
  };
}

/** GET /v1/usage and /admin/tenants/{id}/usage: the tenant's usage. */
export const usageRoutes = (scope: TenantScope) =>
  newRouter().openapi(
    scope.route({
      method: "get",
      path: "/usage",
      tags: ["usage"],
      summary: "The tenant's tokens used and left this month, cost per day, current rate window",
      request: { query: DaysQuery },
      responses: { 200: jsonResponse(Usage, "Usage and what is left"), ...errors(400, 503) },
    }),
    async (c) => {
      const usage = await usageOf(c.get("svc").env, c.get("tenant"), c.req.valid("query").days);
      return c.json(usageOut(usage), 200);
    },
  );
