import { AppError } from "../errors";
import type { AdmitResult, GateErrorCode, Refused } from "./types";

/** RateLimit-Limit/-Remaining/-Reset for any admission answer, plus Retry-After on a refusal. */
export function rateLimitHeaders(r: AdmitResult): Record<string, string> {
  const h: Record<string, string> = {
    "RateLimit-Limit": String(r.rateLimit.limit),
    "RateLimit-Remaining": String(r.rateLimit.remaining),
    "RateLimit-Reset": String(r.rateLimit.resetSeconds),
  };
  if (!r.ok) h["Retry-After"] = String(r.retryAfterSeconds);
  return h;
}

/** The 429 for a refusal: RATE_LIMITED or BUDGET_EXCEEDED, the level in details, the headers set. */
export function refusalError(r: Refused): AppError {
  return new AppError(r.code, r.message, {
    details: { level: r.level, budget: r.budget, retry_after_seconds: r.retryAfterSeconds },
    headers: rateLimitHeaders(r),
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
