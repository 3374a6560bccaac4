import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { tenantGate } from "../../../src/admission/client";
import type { GlobalGate } from "../../../src/admission/global-gate";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import type {
  AdmissionConfig,
  AdmitInput,
  AdmitResult,
  Admitted,
  Refused,
} from "../../../src/admission/types";
import { uniqueId } from "../helpers";

const tenantGates = env.TENANT_GATE;
const globalGates = env.GLOBAL_GATE;

/** A fixed instant in the future, so real alarms scheduled from pinned clocks never fire on their own. */
export const T0 = Date.UTC(2030, 0, 15, 12, 0, 0);

/**
 * A fresh tenant gate (a tenant id no other test uses), its clock pinned to `at`: the stub, and
 * the worker's client of it (`gate`), which answers values and throws what the gate rejects.
 */
export async function freshGate(at = T0, stem = "gate") {
  const tenantId = uniqueId(stem);
  const stub = tenantGates.getByName(tenantId);
  await setClock(stub, at);
  return { tenantId, stub, gate: clientOf(tenantId) };
}

/** The worker's client of a tenant's gate (src/admission/client.ts). */
export function clientOf(tenantId: string) {
  return tenantGate(env, tenantId);
}

/** Pins a tenant gate's clock. */
export function setClock(stub: DurableObjectStub<TenantGate>, at: number) {
  return runInDurableObject(stub, (g: TenantGate) => g.clock.set(at));
}

/** A GlobalGate no other test uses, its clock pinned to `at`. */
export async function freshGlobal(at = T0) {
  const name = uniqueId("global");
  const stub = globalGates.getByName(name);
  await runInDurableObject(stub, (g: GlobalGate) => g.clock.set(at));
  return { name, stub };
}

export function setGlobalClock(stub: DurableObjectStub<GlobalGate>, at: number) {
  return runInDurableObject(stub, (g: GlobalGate) => g.clock.set(at));
}

export function runAlarm(stub: DurableObjectStub<TenantGate>) {
  return runDurableObjectAlarm(stub);
}

export function gateOf(tenantId: string) {
  return tenantGates.getByName(tenantId);
}

/** A generous configuration; tests narrow the limit they exercise. */
export function config(over: Partial<AdmissionConfig> = {}): AdmissionConfig {
  return {
    version: 1,
    rateLimitPerMinute: 100_000,
    userRateLimitPerMinute: 30,
    monthlyTokenBudget: 1_000_000_000,
    dailyCostBudgetUsd: null,
    conversationCostCapUsd: 100_000,
    fallbackModel: null,
    visitorMonthlyTokenShare: 0.05,
    timezone: "UTC",
    pricingOverrides: {},
    ...over,
  };
}

/** An admit input for `tenantId`; `cfg` narrows the configuration. */
export function input(
  tenantId: string,
  over: Partial<Omit<AdmitInput, "config">> = {},
  cfg: Partial<AdmissionConfig> = {},
): AdmitInput {
  return {
    tenantId,
    userId: "u1",
    conversationId: "c1",
    model: "gpt-4o-mini",
    inputTokens: 100,
    maxTokens: 500,
    config: config(cfg),
    global: { gate: "test-global", limitPerMinute: 1_000_000 },
    ...over,
  };
}

export function admitted(r: AdmitResult): Admitted {
  if (!r.ok) throw new Error(`expected admission, got ${JSON.stringify(r)}`);
  return r;
}

export function refused(r: AdmitResult): Refused {
  if (r.ok) throw new Error(`expected refusal, got ${JSON.stringify(r)}`);
  return r;
}
