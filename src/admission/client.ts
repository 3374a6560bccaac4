import type { Env } from "../env";
import type { TenantConfig } from "../tenants/config";
import type { AddressHit } from "./address-windows";
import { gateFailure, rejectionError } from "./headers";
import { costOf } from "./pricing";
import type { TenantGate } from "./tenant-gate";
import {
  type AdmissionConfig,
  type AdmitInput,
  type AdmitResult,
  type GateOutcome,
  GLOBAL_GATE_NAME,
  GLOBAL_LIMIT_PER_MINUTE,
  type SettleItem,
  type Usage,
  type UsageQuery,
  VISITOR_MONTHLY_TOKEN_SHARE,
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
    // Configs cached before the setting existed lack it.
    visitorMonthlyTokenShare: t.visitorMonthlyTokenShare ?? VISITOR_MONTHLY_TOKEN_SHARE,
    timezone: t.timezone,
    pricingOverrides: t.pricingOverrides,
  };
}

/**
 * The tenant's gate (one Durable Object per tenant, named by its id) as the worker calls it: each
 * method answers the gate's value, throws the 4xx AppError of a call the gate rejected, and lets
 * through what a gate that cannot answer throws (`gateFailure` makes that a 503).
 */
export function tenantGate(env: Pick<Env, "TENANT_GATE">, tenantId: string) {
  const stub = gateStub(env, tenantId);
  return {
    admit: (input: AdmitInput) => unwrap(stub.admit(input)),
    settle: (reservationId: string, usage: Usage) => unwrap(stub.settle(reservationId, usage)),
    settleMany: (items: SettleItem[]) => unwrap(stub.settleMany(items)),
    usage: (query: UsageQuery) => unwrap(stub.usage(query)),
    hitAddress: (hit: AddressHit) => unwrap(stub.hitAddress(hit)),
    hitAddresses: (hits: AddressHit[]) => unwrap(stub.hitAddresses(hits)),
    /** Resolves once the gate's background lease traffic has finished. */
    drain: () => stub.drain(),
  };
}

// Isolate-wide on purpose: deriving an id from a name hashes it, on every admit and flush, and ids
// are plain values. Per namespace object (tests make several); bounded by starting over when full.
const gateIds = new WeakMap<DurableObjectNamespace, Map<string, DurableObjectId>>();
const MAX_GATE_IDS = 10_000;

/** Tenant `tenantId`'s gate as `getByName` would give it, without hashing the name each call. */
export function gateStub(env: Pick<Env, "TENANT_GATE">, tenantId: string): DurableObjectStub<TenantGate> {
  return env.TENANT_GATE.get(gateId(env.TENANT_GATE, tenantId));
}

/** The id of tenant `tenantId`'s gate, as `getByName` would derive it. */
function gateId(ns: DurableObjectNamespace, tenantId: string): DurableObjectId {
  let ids = gateIds.get(ns);
  if (!ids) {
    ids = new Map();
    gateIds.set(ns, ids);
  }
  let id = ids.get(tenantId);
  if (!id) {
    if (ids.size >= MAX_GATE_IDS) ids.clear();
    id = ns.idFromName(tenantId);
    ids.set(tenantId, id);
  }
  return id;
}

async function unwrap<T>(call: Promise<GateOutcome<T>>): Promise<T> {
  const out = await call;
  if (!out.ok) throw rejectionError(out);
  return out.value;
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
  /** The reservation of the message this call is a later tool-loop step of (see AdmitInput). */
  continues?: string;
  /** A message no model answers: counted in the rate windows, no tokens, no budget (see AdmitInput). */
  unpriced?: true;
}

interface Pending {
  item: SettleItem;
  state: "pending" | "inflight" | "done";
  /** When it was queued (Date.now()): the flush sends it once it has waited SETTLE_DELAY_MS. */
  queuedAt: number;
}

interface TenantQueue {
  entries: Pending[];
  /** A flush is scheduled and will take whatever is still pending when it fires. */
  armed: boolean;
}

// Isolate-wide on purpose: a settlement waits here so the tenant's next admit from this isolate
// carries it (no RPC of its own), or one delayed flush sends everything still waiting in one call.
// Bounded: entries leave once delivered and a full queue is flushed at once. Every entry is
// covered by the flush armed when it was queued (or a later one), which runs in the waitUntil of
// the request that armed it and stays until the entries it saw are delivered: one timer per batch,
// not one per message (a timer wake-up costs about as much CPU as the settlement itself). A flush
// sends nothing an admit may still carry: while admits flow, it sends nothing at all.
const queues = new Map<string, TenantQueue>();
/** How long a settlement waits for an admit to carry it before a batched flush sends it. */
export const SETTLE_DELAY_MS = 25;
const MAX_QUEUED = 500;
const FLUSH_ATTEMPTS = 5;
const CARRY_TIMEOUT_MS = 10_000;
const MAX_POLL_MS = 40;

function queueOf(tenantId: string): TenantQueue {
  let q = queues.get(tenantId);
  if (!q) {
    q = { entries: [], armed: false };
    queues.set(tenantId, q);
  }
  return q;
}

function take(tenantId: string, max: number): Pending[] {
  const out: Pending[] = [];
  for (const p of queues.get(tenantId)?.entries ?? []) {
    if (out.length >= max) break;
    if (p.state === "pending") {
      p.state = "inflight";
      out.push(p);
    }
  }
  return out;
}

function finish(tenantId: string, batch: Pending[], delivered: boolean): void {
  if (batch.length === 0) return;
  for (const p of batch) p.state = delivered ? "done" : "pending";
  const q = queues.get(tenantId);
  if (!q) return;
  q.entries = q.entries.filter((p) => p.state !== "done");
  if (q.entries.length === 0 && !q.armed) queues.delete(tenantId);
}

/** Schedules one flush of the tenant's settlements in this request, unless one is already due. */
function arm(env: Env, ctx: ExecutionContext, tenantId: string, delay: number): void {
  const q = queueOf(tenantId);
  if (q.armed) return;
  q.armed = true;
  ctx.waitUntil(flushAfter(env, tenantId, delay));
}

/**
 * After `delay`, sends in one call every settlement still pending once one of them has waited
 * `delay` (until then an admit may still take them along), and stays until each one
 * queued before it fired is delivered: those an admit is carrying are waited for, and sent here
 * if that admit fails. Settling is idempotent, so a resend after a lost answer is harmless.
 */
async function flushAfter(env: Env, tenantId: string, delay: number): Promise<void> {
  await scheduler.wait(delay);
  const q = queueOf(tenantId);
  q.armed = false;
  const watched = q.entries.filter((p) => p.state !== "done");
  const started = Date.now();
  let poll = 5;
  for (let failures = 0; ; ) {
    const now = Date.now();
    // Once one has waited its delay, no admit is coming to carry the rest either: all go now.
    const due = q.entries.some((p) => p.state === "pending" && p.queuedAt <= now - delay);
    const batch = due ? take(tenantId, MAX_QUEUED) : [];
    if (batch.length > 0) {
      try {
        const results = await tenantGate(env, tenantId).settleMany(batch.map((p) => p.item));
        finish(tenantId, batch, true);
        const unknown = results.filter((r) => r.status === "unknown").map((r) => r.reservationId);
        if (unknown.length > 0)
          console.warn(JSON.stringify({ msg: "settle: unknown reservations", unknown }));
      } catch (err) {
        finish(tenantId, batch, false);
        failures += 1;
        console.warn(JSON.stringify({ msg: "settle failed", failures, error: String(err) }));
        if (failures >= FLUSH_ATTEMPTS) {
          // Give up on these: their reservations expire and are refunded by the gate's alarm.
          finish(
            tenantId,
            watched.filter((p) => p.state !== "done"),
            true,
          );
          return;
        }
        await scheduler.wait(50 * 2 ** failures);
        continue;
      }
      continue;
    }
    if (watched.every((p) => p.state === "done")) return;
    if (now - started > CARRY_TIMEOUT_MS) {
      // A carrier that never answered: send its settlements again.
      for (const p of watched) if (p.state === "inflight") p.state = "pending";
      continue;
    }
    // Admits carrying them answer within a round trip: look again after it, or when the oldest
    // watched one still pending comes due. Polled (a timer of this request's own), since another
    // request's admit cannot wake this one: I/O crosses no request.
    let wait = poll;
    for (const p of watched) if (p.state === "pending") wait = Math.min(wait, p.queuedAt + delay - now);
    await scheduler.wait(Math.max(1, wait));
    poll = Math.min(poll * 2, MAX_POLL_MS);
  }
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
  const call = admissionCall(env, tenant, req);
  try {
    const result = await tenantGate(env, tenant.id).admit(call.input);
    call.done(true);
    return result;
  } catch (err) {
    call.done(false);
    throw gateFailure(err);
  }
}

/**
 * The gate's admit input for one message, carrying the settlements queued in this isolate for the
 * tenant, for `admitMessage` and for a caller that reaches the gate another way (the Conversation
 * object asks it on the conversation path). `done(true)` once the gate applied the input;
 * `done(false)` otherwise: what it carried is pending again, and the flush that is due sends it.
 */
export function admissionCall(
  env: Env,
  tenant: TenantConfig,
  req: MessageRequest,
): { input: AdmitInput; done: (delivered: boolean) => void } {
  const batch = take(tenant.id, 100);
  return {
    input: {
      tenantId: tenant.id,
      userId: req.userId,
      conversationId: req.conversationId,
      model: req.model ?? tenant.model,
      inputTokens: req.inputTokens,
      maxTokens: req.maxTokens ?? tenant.maxTokensPerResponse,
      config: admissionConfig(tenant),
      global: globalOf(env),
      settle: batch.length > 0 ? batch.map((p) => p.item) : undefined,
      continues: req.continues,
      unpriced: req.unpriced,
    },
    done: (delivered) => finish(tenant.id, batch, delivered),
  };
}

/**
 * Settles a message after its answer, off the response path: returns the actual cost at once
 * (the same pricing the gate uses) and queues the settlement, which rides on the tenant's next
 * admit or goes, after SETTLE_DELAY_MS, in one batched call from the `ctx.waitUntil` of the first
 * request of the batch. Settling twice is harmless.
 */
export function settleMessage(
  env: Env,
  ctx: ExecutionContext,
  tenant: TenantConfig,
  reservationId: string,
  usage: Usage,
): number {
  const q = queueOf(tenant.id);
  q.entries.push({ item: { reservationId, usage }, state: "pending", queuedAt: Date.now() });
  arm(env, ctx, tenant.id, q.entries.length >= MAX_QUEUED ? 0 : SETTLE_DELAY_MS);
  return costOf(usage.model, usage.inputTokens, usage.outputTokens, tenant.pricingOverrides);
}
