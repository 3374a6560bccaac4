/**
 * The admission gates' input shapes (zod). Loaded by each gate in its constructor's
 * blockConcurrencyWhile, not imported by the modules an isolate evaluates at start: building zod
 * costs about half the worker's startup (bench/startup.ts), and an isolate that only serves HTTP
 * loads it with the app anyway. Types are in ./types.
 */
import { z } from "zod";
import { ADDRESS_KINDS, LONGEST_WINDOW_MS } from "./address-windows";
import { isTimeZone } from "./periods";
import { RESERVATION_ID } from "./types";

// Same shapes as the tenant admin API accepts (src/tenants/schemas.ts).
const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MODEL = /^[A-Za-z0-9@][A-Za-z0-9._:/@-]{0,127}$/;

// The admit input's bounds, which the schema and its hand-written twin (`isAdmitRest`) both use.
/** Input or output tokens of one message. */
const MAX_TOKENS = 10_000_000;
/** The largest answer a request may allow. */
const MAX_ANSWER_TOKENS = 1_000_000;
/** A user's or a conversation's id. */
const MAX_ID_LENGTH = 256;
/** How long a reservation may live unsettled. */
const TTL_MS = { min: 1_000, max: 3_600_000 };
/** Settlements in one call, or riding along one admit. */
const MAX_SETTLEMENTS = 500;

const model = z.string().regex(MODEL, "not a model name");
const count = (max: number) => z.number().int().min(0).max(max);
const price = z
  .object({ input: z.number().min(0).max(10_000), output: z.number().min(0).max(10_000) })
  .strict();

/** The part of a tenant's configuration admission needs; the worker resolves it and passes it in. */
export const AdmissionConfigSchema = z
  .object({
    version: count(2 ** 31),
    rateLimitPerMinute: z.number().int().min(1).max(1_000_000),
    userRateLimitPerMinute: z.number().int().min(1).max(100_000),
    monthlyTokenBudget: count(1e13),
    dailyCostBudgetUsd: z.number().min(0).max(1e7).nullable(),
    conversationCostCapUsd: z.number().min(0).max(1e5),
    fallbackModel: model.nullable(),
    /** No browser visitor may use more than this fraction of the monthly token budget in a month. */
    visitorMonthlyTokenShare: z.number().gt(0).max(1),
    timezone: z.string().max(64).refine(isTimeZone, "not an IANA time zone"),
    pricingOverrides: z
      .record(model, price)
      .refine((o) => Object.keys(o).length <= 100, "at most 100 overrides"),
  })
  .strict();

/** Actual usage of one answered message. */
export const UsageSchema = z
  .object({ model, inputTokens: count(MAX_TOKENS), outputTokens: count(MAX_TOKENS) })
  .strict();

export const SettleItemSchema = z
  .object({ reservationId: z.string().regex(RESERVATION_ID, "not a reservation id"), usage: UsageSchema })
  .strict();

/** A batch of settlements in one call. */
export const SettleBatchSchema = SettleItemSchema.array().max(MAX_SETTLEMENTS);

export const AdmitInputSchema = z
  .object({
    tenantId: z.string().regex(TENANT_ID, "not a tenant id"),
    userId: z.string().min(1).max(MAX_ID_LENGTH),
    conversationId: z.string().min(1).max(MAX_ID_LENGTH),
    /** The model the request wants (the tenant's model unless an experiment overrides it). */
    model,
    /** Estimated input tokens; an upper bound keeps the budget exact. */
    inputTokens: count(MAX_TOKENS),
    /** The largest answer the request allows. */
    maxTokens: z.number().int().min(1).max(MAX_ANSWER_TOKENS),
    config: AdmissionConfigSchema,
    global: z
      .object({
        gate: z.string().regex(/^[a-z0-9-]{1,64}$/, "not a gate name"),
        limitPerMinute: z.number().int().min(1).max(1_000_000_000),
      })
      .strict(),
    /** How long the reservation lives unsettled (default RESERVATION_TTL_MS). */
    ttlMs: z.number().int().min(TTL_MS.min).max(TTL_MS.max).optional(),
    /** Settlements of earlier messages riding along, so they cost no RPC of their own. */
    settle: z.array(SettleItemSchema).max(MAX_SETTLEMENTS).optional(),
    /**
     * A later model call of a message admitted as this reservation (a tool-loop step): its tokens
     * and cost count in every budget, but the message is already one request in the rate windows.
     */
    continues: z.string().regex(RESERVATION_ID, "not a reservation id").optional(),
    /**
     * A message that reaches no model (a blocked topic, a request for a human, a conversation an
     * operator holds): one request in the user, tenant and global windows like any message, but no
     * tokens and no budget, and settled at nothing as it is admitted.
     */
    unpriced: z.literal(true).optional(),
  })
  .strict();

/** An admit input whose config and global target are checked apart (TenantGate's #admitInput). */
export const AdmitInputRestSchema = AdmitInputSchema.extend({ config: z.unknown(), global: z.unknown() });

/**
 * Whether `raw` passes AdmitInputRestSchema, checked by hand: the check every message's admission
 * makes. zod interprets its checks in a Worker (it compiles them only where code generation is
 * allowed), and that was about a twentieth of the gate's sampled JavaScript (about 0.02 ms of an
 * admission's 1.1 ms, too little for a paired run to show). Only a yes is trusted: a no is
 * answered by the schema itself, with its messages, so this may refuse what the schema would
 * accept (an object of another prototype), never the other way round
 * (test/worker/admission/input.test.ts holds the two to that on generated inputs).
 */
export function isAdmitRest(raw: unknown): boolean {
  if (!isPlainObject(raw)) return false;
  for (const k in raw) if (!REST_KEYS.has(k)) return false;
  const r = raw as Record<string, unknown>;
  // The config and global target are only required here: the caller compares them with checked ones.
  return (
    "config" in r &&
    "global" in r &&
    matches(r.tenantId, TENANT_ID) &&
    isString(r.userId, 1, MAX_ID_LENGTH) &&
    isString(r.conversationId, 1, MAX_ID_LENGTH) &&
    matches(r.model, MODEL) &&
    isInt(r.inputTokens, 0, MAX_TOKENS) &&
    isInt(r.maxTokens, 1, MAX_ANSWER_TOKENS) &&
    (r.ttlMs === undefined || isInt(r.ttlMs, TTL_MS.min, TTL_MS.max)) &&
    (r.continues === undefined || matches(r.continues, RESERVATION_ID)) &&
    (r.unpriced === undefined || r.unpriced === true) &&
    (r.settle === undefined ||
      (Array.isArray(r.settle) &&
        Object.getPrototypeOf(r.settle) === Array.prototype &&
        r.settle.length <= MAX_SETTLEMENTS &&
        r.settle.every(isSettleItem)))
  );
}

const REST_KEYS = new Set([
  "tenantId",
  "userId",
  "conversationId",
  "model",
  "inputTokens",
  "maxTokens",
  "config",
  "global",
  "ttlMs",
  "settle",
  "continues",
  "unpriced",
]);

function isPlainObject(v: unknown): v is object {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function isString(v: unknown, min: number, max: number): v is string {
  return typeof v === "string" && v.length >= min && v.length <= max;
}

function isInt(v: unknown, min: number, max: number): boolean {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

function matches(v: unknown, pattern: RegExp): boolean {
  return typeof v === "string" && pattern.test(v);
}

function hasOnly(v: object, keys: number): boolean {
  let n = 0;
  for (const _ in v) n++;
  return n === keys;
}

function isSettleItem(v: unknown): boolean {
  if (!isPlainObject(v) || !hasOnly(v, 2)) return false;
  const { reservationId, usage } = v as { reservationId?: unknown; usage?: unknown };
  if (!matches(reservationId, RESERVATION_ID)) return false;
  if (!isPlainObject(usage) || !hasOnly(usage, 3)) return false;
  const u = usage as { model?: unknown; inputTokens?: unknown; outputTokens?: unknown };
  return (
    matches(u.model, MODEL) && isInt(u.inputTokens, 0, MAX_TOKENS) && isInt(u.outputTokens, 0, MAX_TOKENS)
  );
}

export const UsageQuerySchema = z
  .object({
    tenantId: z.string().regex(TENANT_ID, "not a tenant id"),
    days: z.number().int().min(1).max(90),
    config: AdmissionConfigSchema,
  })
  .strict();

/** A browser address's hit on its window (address-windows.ts). */
export const AddressHitSchema = z
  .object({
    tenantId: z.string().min(1).max(63),
    /** The address's keyed hash, or TENANT_WIDE: the whole tenant's window. */
    address: z.string().regex(/^(?:[0-9a-f]{32}|\*)$/, "not an address hash"),
    kind: z.enum(ADDRESS_KINDS),
    limit: z.number().int().min(1).max(1_000_000),
    windowMs: z.number().int().min(1_000).max(LONGEST_WINDOW_MS),
  })
  .strict();

// The GlobalGate's calls (global-gate.ts).
const Releases = z
  .array(z.object({ leaseId: z.string().regex(/^g\d{1,15}$/), used: z.number().int().min(0) }).strict())
  .max(1_000);
const Holder = z.string().min(1).max(128);

export const AcquireSchema = z
  .object({
    holder: Holder,
    want: z.number().int().min(1).max(1_000_000),
    limitPerMinute: z.number().int().min(1).max(1_000_000_000),
    release: Releases,
  })
  .strict();
export const ReleaseSchema = z.object({ holder: Holder, release: Releases }).strict();
