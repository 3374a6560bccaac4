import type { z } from "zod";
import { type Outcome, Rejection } from "../outcome";
import { preloaded } from "../preload";
import type {
  AdmissionConfigSchema,
  AdmitInputSchema,
  SettleItemSchema,
  UsageQuerySchema,
  UsageSchema,
} from "./schemas";

/** The default global limit, messages per minute across all tenants; env GLOBAL_LIMIT_PER_MINUTE overrides it. */
export const GLOBAL_LIMIT_PER_MINUTE = 10_000;
/** The default per-user limit, messages per minute (tenants set their own). */
export const USER_LIMIT_PER_MINUTE = 30;
/** Every rate limit counts over this trailing window. */
export const WINDOW_MS = 60_000;
/**
 * Conversation ids that start with this are one request's (the OpenAI path without
 * `x-conversation-id`): their cost total matters while that request's steps run, so the gate keeps
 * it an hour after its last settlement, as long as the admission rows, not the 30 days a
 * conversation's total is kept. One such row per API request would otherwise pile up for a month.
 */
export const REQUEST_CONVERSATION = "req:";
/** An unsettled reservation is refunded this long after admission (a crash, a lost client). */
export const RESERVATION_TTL_MS = 10 * 60_000;
/** Degradation never answers with fewer output tokens than this (or the request's own max, if smaller). */
export const MIN_OUTPUT_TOKENS = 16;
/** The default share of the monthly token budget one browser visitor may use in a month (1: no limit). */
export const VISITOR_MONTHLY_TOKEN_SHARE = 0.05;
/** End users that are browser visitors (src/chat/identity.ts): the visitor token share applies to them. */
export const isVisitor = (userId: string): boolean => userId.startsWith("visitor:");
/** The GlobalGate every tenant gate leases from unless told otherwise. */
export const GLOBAL_GATE_NAME = "global";

/** Reservation ids: `rsv_<sequence base36>_<8 hex tag>`; the tag catches ids from another gate. */
export const RESERVATION_ID = /^rsv_([0-9a-z]{1,11})_([0-9a-f]{8})$/;

/**
 * The gates' input shapes (./schemas, zod): each gate loads them in its constructor, so an isolate
 * evaluating its modules at start does not build zod (bench/startup.ts).
 */
export const gateShapes = preloaded(() => import("./schemas"));

export type AdmissionConfig = z.infer<typeof AdmissionConfigSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type SettleItem = z.infer<typeof SettleItemSchema>;
export type AdmitInput = z.infer<typeof AdmitInputSchema>;
export type UsageQuery = z.infer<typeof UsageQuerySchema>;

/** Who refused: a rate level, or the budget. */
export type Level = "user" | "tenant" | "global" | "budget";
export type RateLevel = Exclude<Level, "budget">;
/** Which budget refused or degraded a request. */
export type BudgetKind = "monthly_tokens" | "visitor_tokens" | "daily_cost" | "conversation_cost";
export type Degradation = "max_tokens" | "fallback_model";

/** The values of the legacy RateLimit-Limit/-Remaining/-Reset headers: the most constrained rate level. */
export interface RateLimitInfo {
  level: RateLevel;
  limit: number;
  remaining: number;
  /** Seconds until the window frees a slot at this level. */
  resetSeconds: number;
}

/** One rate level in force, for the RateLimit-Policy and RateLimit fields (src/admission/headers.ts). */
export interface RateLevelInfo {
  level: RateLevel;
  limit: number;
  windowSeconds: number;
  /**
   * Messages left in the window, and whole seconds until it frees a slot; both null where the tenant
   * gate cannot know them: the global level, which it only leases from, unless the global level refused.
   */
  remaining: number | null;
  resetSeconds: number | null;
}

export interface Admitted {
  ok: true;
  reservationId: string;
  /** The model to call: the requested one, or the tenant's fallback when the budget demanded it. */
  model: string;
  /** The max output tokens to send: the requested value, or lower when the budget demanded it. */
  maxTokens: number;
  requestedModel: string;
  requestedMaxTokens: number;
  degraded: Degradation[];
  /** What binds after this admission, when a budget lowered the request. */
  budget: BudgetKind | null;
  reservedTokens: number;
  reservedCostUsd: number;
  /** Epoch ms at which the reservation is refunded unless settled. */
  expiresAt: number;
  rateLimit: RateLimitInfo;
  /** Every rate level in force: user, tenant, global. */
  rateLevels: RateLevelInfo[];
}

export interface Refused {
  ok: false;
  level: Level;
  code: "RATE_LIMITED" | "BUDGET_EXCEEDED";
  message: string;
  retryAfterSeconds: number;
  /** For budget refusals: which budget. */
  budget: BudgetKind | null;
  rateLimit: RateLimitInfo;
  /** Every rate level in force: user, tenant, global; the refusing level with nothing left. */
  rateLevels: RateLevelInfo[];
}

export type AdmitResult = Admitted | Refused;

export interface SettleResult {
  reservationId: string;
  /** settled; late (after the reservation had expired and been refunded); duplicate (already settled: nothing changed). */
  status: "settled" | "late" | "duplicate";
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  /** Tokens used beyond the reservation (an input estimate that was too low); 0 normally. */
  overrunTokens: number;
}

/** Why a gate refuses a call that does not fit (a rate or budget refusal is an answer, not this). */
export type GateErrorCode = "INVALID_INPUT" | "NOT_FOUND" | "CONFLICT";

/** What every gate method that can refuse its call answers across RPC. */
export type GateOutcome<T> = Outcome<T, GateErrorCode>;

/** Parses `raw` with `schema` (from ./schemas) or rejects the call as INVALID_INPUT, naming each bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.map(String).join(".") || what}: ${i.message}`);
  throw new Rejection<GateErrorCode>("INVALID_INPUT", `invalid ${what}: ${issues.join("; ")}`);
}
