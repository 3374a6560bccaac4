import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every error code the API answers with; the status follows from the code alone. */
export type ErrorCode =
  | "BAD_REQUEST"
  | "VALIDATION_FAILED"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "CONFLICT"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "RATE_LIMITED"
  | "BUDGET_EXCEEDED"
  | "MISCONFIGURED"
  | "UNAVAILABLE"
  | "UPSTREAM_ERROR"
  | "INTERNAL";

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
