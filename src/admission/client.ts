import type { Env } from "../env";
import { AppError } from "../errors";
import type { TenantConfig } from "../tenants/config";
import { gateFailure } from "./headers";
import { costOf } from "./pricing";
import type { TenantGate } from "./tenant-gate";
import {
  type AdmissionConfig,
  type AdmitResult,
  GLOBAL_GATE_NAME,
  GLOBAL_LIMIT_PER_MINUTE,
  type SettleItem,
  type Usage,
} from "./types";

/** What admission needs of the tenant's configuration (the DO never reads Postgres). */
export function admissionConfig(t: TenantConfig): AdmissionConfig {
  return {
    version: t.configVersion,
    rateLimitPerMinute: t.rateLimitPerMinute,
    userRateLimitPerMinute: t.userRateLimitPerMinute,
    monthlyTokenBudget: t.monthlyTokenBudget,
    dailyCostBudgetUsd: t.dailyCostBudgetUsd,
    conversationCostCapUsd: t.conversationCostCapUsd,
    fallbackModel: t.fallbackModel,
    timezone: t.timezone,
    pricingOverrides: t.pricingOverrides,
  };
}

/** The tenant's gate: one Durable Object per tenant, named by its id. */
export function tenantGate(env: Env, tenantId: string): DurableObjectStub<TenantGate> {
  if (!env.TENANT_GATE) {
    throw new AppError(
      "MISCONFIGURED",
      "worker misconfigured: the TENANT_GATE Durable Object binding is missing",
    );
  }
  return env.TENANT_GATE.getByName(tenantId);
}

/** The global limit and the GlobalGate that leases it. */
export function globalOf(env: Env): { gate: string; limitPerMinute: number } {
  return { gate: GLOBAL_GATE_NAME, limitPerMinute: env.GLOBAL_LIMIT_PER_MINUTE ?? GLOBAL_LIMIT_PER_MINUTE };
}

/** One chat message asking to be admitted. */
export interface MessageRequest {
  userId: string;
  conversationId: string;
  /** Estimated input tokens: an upper bound keeps the budgets exact. */
  inputTokens: number;
  /** Defaults to the tenant's model. */
  model?: string;
  /** Defaults to the tenant's max_tokens_per_response. */
  maxTokens?: number;
}

interface Pending {
  item: SettleItem;
  state: "pending" | "inflight" | "done";
  since: number;
}

// Isolate-wide on purpose: a settlement waits briefly here so the tenant's next admit from this
// isolate carries it (no RPC of its own). Bounded: entries leave once delivered, each is delivered
// by its own request's waitUntil at the latest, and a full queue is flushed at once.
const queued = new Map<string, Pending[]>();
/** How long a settlement waits for an admit to carry it before it is sent on its own. */
export const SETTLE_DELAY_MS = 25;
const MAX_QUEUED = 500;
const CARRY_TIMEOUT_MS = 10_000;

function take(tenantId: string, max: number): Pending[] {
  const out: Pending[] = [];
  for (const p of queued.get(tenantId) ?? []) {
    if (out.length >= max) break;
    if (p.state === "pending") {
      p.state = "inflight";
      p.since = Date.now();
      out.push(p);
    }
  }
  return out;
}

function finish(tenantId: string, batch: Pending[], delivered: boolean): void {
  for (const p of batch) p.state = delivered ? "done" : "pending";
  const left = (queued.get(tenantId) ?? []).filter((p) => p.state !== "done");
  if (left.length > 0) queued.set(tenantId, left);
  else queued.delete(tenantId);
}

/**
 * Admits one message: the one Durable Object call before the provider call. Settlements queued in
 * this isolate for the tenant ride along. Input errors from the gate become 4xx AppErrors; a gate
 * that cannot answer becomes 503. A refusal is returned, not thrown (see `refusalError`).
 */
export async function admitMessage(
  env: Env,
  tenant: TenantConfig,
  req: MessageRequest,
): Promise<AdmitResult> {
  const batch = take(tenant.id, 100);
  try {
    const result = await tenantGate(env, tenant.id).admit({
      tenantId: tenant.id,
      userId: req.userId,
      conversationId: req.conversationId,
      model: req.model ?? tenant.model,
      inputTokens: req.inputTokens,
      maxTokens: req.maxTokens ?? tenant.maxTokensPerResponse,
      config: admissionConfig(tenant),
      global: globalOf(env),
      settle: batch.length > 0 ? batch.map((p) => p.item) : undefined,
    });
    finish(tenant.id, batch, true);
    return result;
  } catch (err) {
    finish(tenant.id, batch, false);
    throw gateFailure(err);
  }
}

/**
 * Settles a message after its answer, off the response path: returns the actual cost at once
 * (the same pricing the gate uses) and delivers the settlement in `ctx.waitUntil`, riding on the
 * tenant's next admit or, after SETTLE_DELAY_MS, in one batched call. Settling twice is harmless.
 */
export function settleMessage(
  env: Env,
  ctx: ExecutionContext,
  tenant: TenantConfig,
  reservationId: string,
  usage: Usage,
): number {
  const entry: Pending = { item: { reservationId, usage }, state: "pending", since: Date.now() };
  const list = queued.get(tenant.id) ?? [];
  list.push(entry);
  queued.set(tenant.id, list);
  ctx.waitUntil(deliver(env, tenant.id, entry, list.length >= MAX_QUEUED ? 0 : SETTLE_DELAY_MS));
  return costOf(usage.model, usage.inputTokens, usage.outputTokens, tenant.pricingOverrides);
}

async function deliver(env: Env, tenantId: string, entry: Pending, delay: number): Promise<void> {
  await scheduler.wait(delay);
  for (let attempt = 1; attempt <= 5; attempt++) {
    // Another request's admit is carrying it: wait for that to land (or to fail and hand it back).
    while (entry.state === "inflight" && Date.now() - entry.since < CARRY_TIMEOUT_MS) await scheduler.wait(5);
    if (entry.state === "done") return;
    if (entry.state === "inflight") entry.state = "pending"; // the carrier never answered
    const batch = take(tenantId, MAX_QUEUED);
    if (batch.length === 0) continue;
    try {
      const results = await tenantGate(env, tenantId).settleMany(batch.map((p) => p.item));
      finish(tenantId, batch, true);
      const unknown = results.filter((r) => r.status === "unknown").map((r) => r.reservationId);
      if (unknown.length > 0) console.warn(JSON.stringify({ msg: "settle: unknown reservations", unknown }));
      return;
    } catch (err) {
      finish(tenantId, batch, false);
      console.warn(JSON.stringify({ msg: "settle failed", attempt, error: String(err) }));
      await scheduler.wait(50 * 2 ** attempt);
    }
  }
}
