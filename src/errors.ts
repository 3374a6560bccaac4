import { DrizzleQueryError } from "drizzle-orm";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every error code the API answers with; the status follows from the code alone. */
export const ERROR_CODES = [
  "BAD_REQUEST",
  "VALIDATION_FAILED",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "CONFLICT",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "RATE_LIMITED",
  "BUDGET_EXCEEDED",
  "MISCONFIGURED",
  "UNAVAILABLE",
  "UPSTREAM_ERROR",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Maps a code to its HTTP status; exhaustive so a new code cannot ship without one. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case "BAD_REQUEST":
    case "VALIDATION_FAILED":
      return 400;
    case "UNAUTHORIZED":
      return 401;
    case "FORBIDDEN":
      return 403;
    case "NOT_FOUND":
      return 404;
    case "METHOD_NOT_ALLOWED":
      return 405;
    case "CONFLICT":
      return 409;
    case "PAYLOAD_TOO_LARGE":
      return 413;
    case "UNSUPPORTED_MEDIA_TYPE":
      return 415;
    case "RATE_LIMITED":
    case "BUDGET_EXCEEDED":
      return 429;
    case "UPSTREAM_ERROR":
      return 502;
    case "UNAVAILABLE":
      return 503;
    case "MISCONFIGURED":
    case "INTERNAL":
      return 500;
  }
}

/** Maps a bare HTTP status (from Hono's own exceptions) back to a code. */
export function codeOf(status: number): ErrorCode {
  switch (status) {
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 409:
      return "CONFLICT";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 429:
      return "RATE_LIMITED";
    case 502:
      return "UPSTREAM_ERROR";
    case 503:
      return "UNAVAILABLE";
    default:
      return status >= 500 ? "INTERNAL" : "BAD_REQUEST";
  }
}

export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    requestId: string;
    details?: unknown;
  };
}

/** The one application error: a typed code, a message safe to show, optional details and headers. */
export class AppError extends HTTPException {
  readonly code: ErrorCode;
  readonly details?: unknown;
  readonly headers?: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(statusOf(code), { message });
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers;
  }
}

/** Builds the envelope every error answer uses. */
export function errorBody(code: ErrorCode, message: string, requestId: string, details?: unknown): ErrorBody {
  return {
    error: details === undefined ? { code, message, requestId } : { code, message, requestId, details },
  };
}

export interface ErrorSummary {
  /** The error's class, e.g. DrizzleQueryError. */
  error: string;
  /** A machine code: a Postgres SQLSTATE, a driver or system code. */
  code?: string;
  /** The class and code of what caused it (the driver's error under an ORM's). */
  cause?: string;
  /** Where it was thrown: stack frames only, without the message line. */
  frames?: string[];
}

const SAFE_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

function nameAndCode(e: unknown): { name: string; code?: string } {
  if (!(e instanceof Error)) return { name: typeof e };
  const code = (e as { code?: unknown }).code;
  // drizzle's DrizzleQueryError keeps the name "Error"; the deployed bundle drops class names
  // (wrangler.jsonc keep_names: false), so it is named here rather than read off its constructor.
  const name =
    e instanceof DrizzleQueryError
      ? "DrizzleQueryError"
      : e.name === "Error" && e.constructor.name
        ? e.constructor.name
        : e.name;
  return { name, code: typeof code === "string" && SAFE_CODE.test(code) ? code : undefined };
}

/**
 * What a log may say about an unexpected error: class, code (SQLSTATE) and stack frames, never
 * its message. A failed query's message holds the SQL parameters (system prompts, visitors'
 * words), and a driver's detail repeats values; request ids tie a log line to a request instead.
 */
export function errorSummary(err: unknown): ErrorSummary {
  const top = nameAndCode(err);
  const out: ErrorSummary = { error: top.name };
  const cause = err instanceof Error ? err.cause : undefined;
  const under = cause === undefined ? undefined : nameAndCode(cause);
  const code = top.code ?? under?.code;
  if (code) out.code = code;
  if (under) out.cause = under.code ? `${under.name} ${under.code}` : under.name;
  const stack = err instanceof Error ? err.stack : undefined;
  if (stack)
    out.frames = stack
      .split("\n")
      .filter((l) => /^\s+at /.test(l))
      .slice(0, 8)
      .map((l) => l.trim());
  return out;
}
