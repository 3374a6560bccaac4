/**
 * The admission benchmark's worker: the real TenantGate and GlobalGate behind the real worker-side
 * helpers, beside a bare SQLite-backed counter DO, so both are measured through the same runtime,
 * the same worker and the same number of hops. Bundled by bench/admission.ts; never deployed.
 */
import { DurableObject } from "cloudflare:workers";
import { admissionConfig, admitMessage, settleMessage, tenantGate } from "../../src/admission/client";
import { rateLimitHeaders } from "../../src/admission/headers";
import type { Env } from "../../src/env";
import type { TenantConfig } from "../../src/tenants/config";

export { GlobalGate } from "../../src/admission/global-gate";
export { TenantGate } from "../../src/admission/tenant-gate";

/** The baseline: the least a SQLite-backed DO can do per request, one row incremented. */
export class Counter extends DurableObject<BenchEnv> {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
      ctx.storage.sql.exec("INSERT OR IGNORE INTO c (id, n) VALUES (1, 0)");
    });
  }

  async increment(): Promise<number> {
    return this.ctx.storage.sql.exec<{ n: number }>("UPDATE c SET n = n + 1 WHERE id = 1 RETURNING n").one()
      .n;
  }
}

interface BenchEnv {
  TENANT_GATE: Env["TENANT_GATE"];
  GLOBAL_GATE: Env["GLOBAL_GATE"];
  COUNTER: DurableObjectNamespace<Counter>;
}

// One busy tenant with limits far above what the bench can reach: every admission runs every
// check (user window, tenant window, three budgets, a global lease unit) and passes.
const tenant: TenantConfig = {
  id: "bench-tenant",
  name: "Bench",
  systemPrompt: "You help.",
  model: "gpt-4o-mini",
  maxTokensPerResponse: 500,
  monthlyTokenBudget: 1e13,
  rateLimitPerMinute: 1_000_000,
  userRateLimitPerMinute: 100_000,
  dailyCostBudgetUsd: 1e7,
  conversationCostCapUsd: 1e5,
  visitorMonthlyTokenShare: 1,
  addressMessagesPerMinute: 30,
  addressConversationsPerHour: 20,
  conversationsPerMinute: null,
  fallbackModel: "gpt-4o-mini",
  timezone: "UTC",
  pricingOverrides: {},
  allowedTools: [],
  toolExecution: "client",
  maxToolSteps: 3,
  allowedModels: [],
  blockedTopics: [],
  escalationEmail: "",
  customGreeting: "",
  policyMessage: "",
  allowedOrigins: [],
  widgetTitle: null,
  widgetAccentColor: null,
  widgetAvatarUrl: null,
  widgetPosition: "bottom-right",
  widgetLocale: null,
  operatorNameDisplay: "full",
  turnstileSiteKey: null,
  turnstileSecretKey: null,
  identitySecret: null,
  retentionDays: null,
  redactPatterns: [],
  redactBeforeModel: false,
  active: true,
  configVersion: 1,
};

const USAGE = { model: "gpt-4o-mini", inputTokens: 100, outputTokens: 200 };

export default {
  async fetch(request, raw, ctx) {
    const env = { ...raw, GLOBAL_LIMIT_PER_MINUTE: 1_000_000_000 } as unknown as Env;
    const url = new URL(request.url);
    const user = url.searchParams.get("u") ?? "u0";
    const msg = { userId: user, conversationId: `c-${user}`, inputTokens: 100 };
    switch (url.pathname) {
      case "/noop":
        return new Response("ok");
      case "/counter":
        return new Response(String(await raw.COUNTER.getByName("bench").increment()));
      case "/admit": {
        // The chat path: one admit before the answer; the settlement off the response path.
        const r = await admitMessage(env, tenant, msg);
        if (!r.ok) return new Response(r.message, { status: 429, headers: rateLimitHeaders(r) });
        settleMessage(env, ctx, tenant, r.reservationId, { ...USAGE, model: r.model });
        return new Response(r.reservationId, { headers: rateLimitHeaders(r) });
      }
      case "/admit-only": {
        // Admission alone: what the gate costs before any settlement work. Its answer carries the
        // same rate-limit headers as /admit, so the two differ by the settlement alone (until
        // 2026-12-06 it had none; five such headers cost 0.02-0.025 ms a response, measured
        // beside the counter and a bare worker in this bench).
        const r = await admitMessage(env, tenant, msg);
        return new Response(r.ok ? r.reservationId : "no", {
          status: r.ok ? 200 : 429,
          headers: rateLimitHeaders(r),
        });
      }
      case "/admit-settle-rpc": {
        // The same with a settle RPC of its own per message (no batching, no piggyback).
        const r = await admitMessage(env, tenant, msg);
        if (!r.ok) return new Response(r.message, { status: 429 });
        ctx.waitUntil(tenantGate(env, tenant.id).settle(r.reservationId, { ...USAGE, model: r.model }));
        return new Response(r.reservationId, { headers: rateLimitHeaders(r) });
      }
      case "/usage": {
        const gate = tenantGate(env, tenant.id);
        await gate.drain();
        return Response.json(
          await gate.usage({ tenantId: tenant.id, days: 1, config: admissionConfig(tenant) }),
        );
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
} satisfies ExportedHandler<BenchEnv>;
