import { AppError } from "../errors";
import type { AdmitResult, GateErrorCode, RateLevelInfo, Refused } from "./types";

/** A quota policy as the RateLimit fields name it: a rate level, or another limit (an address's). */
export type RatePolicy = Omit<RateLevelInfo, "level"> & { level: string };

/**
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11): Structured Field Lists
 * of String items named after the level, with `q` (quota) and `w` (window, seconds) in the policy,
 * `r` (remaining) and `t` (seconds until a slot frees) in the service limit. A level whose remaining
 * is unknown (global, unless it refused) has a policy item and no service limit item.
 */
export function rateLimitFields(policies: readonly RatePolicy[]): Record<string, string> {
  // One pass, no intermediate arrays: every admitted message's response builds these.
  let policy = "";
  let limit = "";
  for (const p of policies) {
    const name = `"${p.level}"`; // fixed lower-case names: nothing to escape
    policy += `${policy ? ", " : ""}${name};q=${p.limit};w=${p.windowSeconds}`;
    if (p.remaining !== null && p.resetSeconds !== null)
      limit += `${limit ? ", " : ""}${name};r=${p.remaining};t=${p.resetSeconds}`;
  }
  return { "RateLimit-Policy": policy, RateLimit: limit };
}

/**
 * RateLimit-Policy and RateLimit with every level in force, the legacy RateLimit-Limit/-Remaining/
 * -Reset (the most constrained level; kept until 2027-06-30, docs/admission.md; the OpenAI route's
 * x-ratelimit-*-requests are made from them, src/chat/openai-routes.ts, and its test checks both), and
 * Retry-After on a refusal.
 */
export function rateLimitHeaders(r: AdmitResult): Record<string, string> {
  const h: Record<string, string> = {
    ...rateLimitFields(r.rateLevels),
    "RateLimit-Limit": String(r.rateLimit.limit),
    "RateLimit-Remaining": String(r.rateLimit.remaining),
    "RateLimit-Reset": String(r.rateLimit.resetSeconds),
  };
  if (!r.ok) h["Retry-After"] = String(r.retryAfterSeconds);
  return h;
}

/**
 * The 429 for a refusal: RATE_LIMITED or BUDGET_EXCEEDED, the level in details, the headers set. A
 * spent budget also says `x-should-retry: false`: it comes back in hours, and OpenAI's clients, which
 * ignore a Retry-After over a minute, would otherwise try again within seconds.
 */
export function refusalError(r: Refused): AppError {
  const headers = rateLimitHeaders(r);
  if (r.code === "BUDGET_EXCEEDED") headers["x-should-retry"] = "false";
  return new AppError(r.code, r.message, {
    details: { level: r.level, budget: r.budget, retry_after_seconds: r.retryAfterSeconds },
    headers,
  });
}

/** The 4xx for a call a gate rejected: bad input 400, an unknown reservation 404, another tenant's gate 409. */
export function rejectionError(r: { code: GateErrorCode; message: string }): AppError {
  return new AppError(r.code === "INVALID_INPUT" ? "VALIDATION_FAILED" : r.code, r.message);
}

/** Maps what a gate call threw to the envelope: an AppError (a rejection) as is, anything else 503. */
export function gateFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  console.error(JSON.stringify({ msg: "admission gate failed", error: String(err) }));
  return new AppError("UNAVAILABLE", "admission is unavailable; retry shortly", {
    headers: { "Retry-After": "1" },
  });
}
