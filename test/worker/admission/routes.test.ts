import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admissionConfig, admitMessage, settleMessage } from "../../../src/admission/client";
import { rateLimitHeaders, refusalError } from "../../../src/admission/headers";
import { GLOBAL_LIMIT_PER_MINUTE } from "../../../src/admission/types";
import { newRouter } from "../../../src/app";
import { type Env, loadEnv } from "../../../src/env";
import { newServices } from "../../../src/services";
import { getTenantConfig, type TenantConfig } from "../../../src/tenants/config";
import { admin, createKey, createTenant, envelope, send, uniqueId } from "../helpers";
import { admitted, clientOf, gateOf, refused, setClock, T0 } from "./helpers";

const DAY = 86_400_000;

function workerEnv(): Env {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return loaded.env;
}

async function tenantConfig(id: string): Promise<TenantConfig> {
  const svc = newServices(workerEnv());
  try {
    const t = await getTenantConfig(svc, id);
    if (!t) throw new Error(`no tenant ${id}`);
    return t;
  } finally {
    await svc.dbh.close();
  }
}

/** Admits and settles one message through the worker-side helpers, as the chat path will. */
async function chat(t: TenantConfig, userId: string, inputTokens: number, outputTokens: number) {
  const r = admitted(
    await admitMessage(workerEnv(), t, { userId, conversationId: `conv-${userId}`, inputTokens }),
  );
  const ctx = createExecutionContext();
  const cost = settleMessage(workerEnv(), ctx, t, r.reservationId, {
    model: r.model,
    inputTokens,
    outputTokens,
  });
  await waitOnExecutionContext(ctx);
  return { r, cost };
}

describe("usage views", () => {
  it("answers GET /v1/usage and /admin/tenants/{id}/usage with exact figures", async () => {
    const created = await createTenant({ monthly_token_budget: 100_000, daily_cost_budget_usd: 1 });
    const id = created.tenant_id;
    const { key } = await createKey(id);
    const t = await tenantConfig(id);
    const gate = gateOf(id);
    // Two days ago, then today (2030-01-15, UTC): gpt-4o-mini is $0.15 in / $0.60 out per million.
    await setClock(gate, T0 - 2 * DAY);
    const old = await chat(t, "ann", 1_000, 500);
    expect(old.cost).toBe(0.00045);
    await setClock(gate, T0);
    await chat(t, "ann", 2_000, 1_000);
    await chat(t, "bob", 100, 100);
    const open = admitted(
      await admitMessage(workerEnv(), t, { userId: "cid", conversationId: "x", inputTokens: 10 }),
    );
    expect(open.maxTokens).toBe(500);

    const res = await send("GET", "/v1/usage?days=3", key);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({
      tenant_id: id,
      timezone: "UTC",
      as_of: new Date(T0).toISOString(),
      month: {
        month: "2030-01",
        token_budget: 100_000,
        tokens_used: 1_500 + 3_000 + 200,
        tokens_reserved: 510,
        tokens_left: 100_000 - 4_700 - 510,
        cost_usd: 0.001425,
        resets_at: "2030-02-01T00:00:00.000Z",
      },
      today: {
        date: "2030-01-15",
        cost_usd: 0.000975,
        reserved_usd: 0.0003015, // 10 in, 500 out
        budget_usd: 1,
        left_usd: 0.9987235,
        resets_at: "2030-01-16T00:00:00.000Z",
      },
      daily: [
        { date: "2030-01-15", cost_usd: 0.000975, input_tokens: 2_100, output_tokens: 1_100, messages: 2 },
        { date: "2030-01-14", cost_usd: 0, input_tokens: 0, output_tokens: 0, messages: 0 },
        { date: "2030-01-13", cost_usd: 0.00045, input_tokens: 1_000, output_tokens: 500, messages: 1 },
      ],
      total_7d_usd: 0.001425,
      avg_daily_7d_usd: 0.000203571, // 1,425,000 nano-dollars / 7, to the nano-dollar
      window: {
        seconds: 60,
        tenant_limit: 60,
        tenant_used: 3,
        tenant_remaining: 57,
        reset_seconds: 60,
        active_users: 3,
        open_reservations: 1,
        leased_global_units: expect.any(Number),
      },
    });

    const viaAdmin = await admin("GET", `/tenants/${id}/usage?days=3`);
    expect(viaAdmin.status).toBe(200);
    expect(await viaAdmin.json()).toEqual(body);
    const ninety = (await (await send("GET", "/v1/usage?days=90", key)).json()) as { daily: unknown[] };
    expect(ninety.daily.length).toBe(90);
    const byDefault = (await (await send("GET", "/v1/usage", key)).json()) as { daily: unknown[] };
    expect(byDefault.daily.length).toBe(7);
  });

  it.each(["0", "91", "abc", "2.5", "", "-1"])("refuses days=%s with 400 in the envelope", async (days) => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    for (const res of [
      await send("GET", `/v1/usage?days=${days}`, key),
      await admin("GET", `/tenants/${t.tenant_id}/usage?days=${days}`),
    ]) {
      expect(res.status).toBe(400);
      const err = await envelope(res);
      expect(err.code).toBe("VALIDATION_FAILED");
      expect(err.message).toContain("days");
    }
  });

  it("guards both routes: no key, wrong credential, unknown or malformed tenant, another tenant", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const keyB = (await createKey(b.tenant_id)).key;
    expect((await send("GET", "/v1/usage", undefined)).status).toBe(401);
    expect((await send("GET", "/v1/usage", "sk_nottherightshape")).status).toBe(401);
    // A tenant key is not an admin token, whichever tenant it names.
    const asTenant = await send("GET", `/admin/tenants/${b.tenant_id}/usage`, keyB);
    expect(asTenant.status).toBe(401);
    expect((await envelope(asTenant)).code).toBe("UNAUTHORIZED");
    const unknown = await admin("GET", `/tenants/${uniqueId("nobody")}/usage`);
    expect(unknown.status).toBe(404);
    expect((await envelope(unknown)).code).toBe("NOT_FOUND");
    expect((await admin("GET", "/tenants/NOT_AN_ID/usage")).status).toBe(400);
    // B's key sees B, never A: /v1/usage takes no tenant id at all.
    const own = (await (await send("GET", "/v1/usage?days=1", keyB)).json()) as { tenant_id: string };
    expect(own.tenant_id).toBe(b.tenant_id);
    expect(own.tenant_id).not.toBe(a.tenant_id);
  });
});

describe("the worker-side admission helpers", () => {
  it("carries a queued settlement on the tenant's next admit, then does not settle it twice", async () => {
    const t = await tenantConfig((await createTenant()).tenant_id);
    await setClock(gateOf(t.id), T0);
    const e = workerEnv();
    const first = admitted(await admitMessage(e, t, { userId: "u", conversationId: "c", inputTokens: 100 }));
    const ctx = createExecutionContext();
    settleMessage(e, ctx, t, first.reservationId, { model: first.model, inputTokens: 100, outputTokens: 40 });
    // The next admit leaves before the settlement's own delay is up, and takes it along.
    await admitMessage(e, t, { userId: "u", conversationId: "c", inputTokens: 100 });
    const cfg = { tenantId: t.id, days: 1, config: admissionConfig(t) };
    expect((await clientOf(t.id).usage(cfg)).month.tokensUsed).toBe(140);
    await waitOnExecutionContext(ctx);
    expect((await clientOf(t.id).usage(cfg)).month.tokensUsed).toBe(140);
  });

  it("sends settlements no admit carried in one batched flush, kept alive by the first request only", async () => {
    const t = await tenantConfig((await createTenant()).tenant_id);
    await setClock(gateOf(t.id), T0);
    const e = workerEnv();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        admitted(await admitMessage(e, t, { userId: `u${i}`, conversationId: "c", inputTokens: 10 }))
          .reservationId,
      );
    }
    const contexts = ids.map((id) => {
      const ctx = createExecutionContext();
      settleMessage(e, ctx, t, id, { model: "gpt-4o-mini", inputTokens: 10, outputTokens: 10 });
      return ctx;
    });
    // Waiting on the first request is enough: its flush sends all five in one call.
    await waitOnExecutionContext(contexts[0]!);
    const u = await clientOf(t.id).usage({ tenantId: t.id, days: 1, config: admissionConfig(t) });
    expect(u.month).toMatchObject({ tokensUsed: 100, tokensReserved: 0 });
    expect(u.window.openReservations).toBe(0);
    for (const ctx of contexts.slice(1)) await waitOnExecutionContext(ctx);
  });

  it("turns a bad request into a 4xx AppError before anything is admitted", async () => {
    const t = await tenantConfig((await createTenant()).tenant_id);
    const err = await admitMessage(workerEnv(), t, {
      userId: "u",
      conversationId: "c",
      inputTokens: -3,
    }).catch((x: unknown) => x);
    expect(err).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
  });

  it("answers refusals as 429 with Retry-After, RateLimit-* and the level in the envelope", async () => {
    const t = await tenantConfig((await createTenant({ user_rate_limit_per_minute: 1 })).tenant_id);
    await setClock(gateOf(t.id), T0);
    const e = workerEnv();
    const ok = admitted(await admitMessage(e, t, { userId: "u", conversationId: "c", inputTokens: 1 }));
    expect(rateLimitHeaders(ok)).toEqual({
      "RateLimit-Policy": `"user";q=1;w=60, "tenant";q=60;w=60, "global";q=${GLOBAL_LIMIT_PER_MINUTE};w=60`,
      RateLimit: '"user";r=0;t=60, "tenant";r=59;t=60',
      "RateLimit-Limit": "1",
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": "60",
    });
    await setClock(gateOf(t.id), T0 + 15_000);
    const no = refused(await admitMessage(e, t, { userId: "u", conversationId: "c", inputTokens: 1 }));
    const app = newRouter().get("/x", () => {
      throw refusalError(no);
    });
    const res = await app.request("/x");
    expect(res.status).toBe(429);
    expect(
      Object.fromEntries(
        ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"].map((h) => [
          h,
          res.headers.get(h),
        ]),
      ),
    ).toEqual({
      "retry-after": "45",
      "ratelimit-limit": "1",
      "ratelimit-remaining": "0",
      "ratelimit-reset": "45",
    });
    expect(await res.json()).toMatchObject({
      error: { code: "RATE_LIMITED", details: { level: "user", budget: null, retry_after_seconds: 45 } },
    });
  });
});
