/** The API's error envelope as the console and the widget read it. */
import type { ApiErrorBody, ErrorCode } from "../../src/api-types";

/** What a refusal says besides its message. */
export interface Refusal {
  status: number;
  /** `HTTP_<status>` when the body was not the envelope (a proxy's error page, say). */
  code: ErrorCode | `HTTP_${number}`;
  requestId?: string;
  details?: unknown;
  retryAfterSeconds?: number;
}

/** A refusal in the API's error envelope. */
export class ApiError extends Error {
  declare readonly status: number;
  declare readonly code: Refusal["code"];
  declare readonly requestId?: string;
  declare readonly details?: unknown;
  declare readonly retryAfterSeconds?: number;

  constructor(message: string, refusal: Refusal) {
    super(message);
    Object.assign(this, refusal);
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const n = Number(header);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The refusal a failed response carries: its envelope, or its status alone. */
export async function apiErrorOf(res: Response): Promise<ApiError> {
  let e: Partial<ApiErrorBody["error"]> = {};
  try {
    e = ((await res.json()) as Partial<ApiErrorBody>).error ?? {};
  } catch {
    // not JSON: the status speaks alone
  }
  return new ApiError(e.message ?? res.statusText, {
    status: res.status,
    code: e.code ?? `HTTP_${res.status}`,
    requestId: e.requestId,
    details: e.details,
    retryAfterSeconds: retryAfterSeconds(res.headers.get("retry-after")),
  });
}
