import { AppError } from "../errors";
import { type AdmitResult, gateErrorOf, type Refused } from "./types";

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

/** Maps what a gate threw to the envelope: its input errors are 4xx, anything else is 503. */
export function gateFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const gate = gateErrorOf(err);
  if (gate) {
    const code = gate.code === "INVALID_INPUT" ? "VALIDATION_FAILED" : gate.code;
    return new AppError(code, gate.message);
  }
  console.error(JSON.stringify({ msg: "admission gate failed", error: String(err) }));
  return new AppError("UNAVAILABLE", "admission is unavailable; retry shortly", {
    headers: { "Retry-After": "1" },
  });
}
