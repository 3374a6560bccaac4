/** The public conversation API as the widget uses it: publishable key, visitor id, JSON or SSE. */

/** A refusal in the API's error envelope, with what the widget needs to explain it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly level: string | undefined,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
  }
}

/** No answer at all: offline, a dropped connection, a stream cut short, or a CORS refusal. */
export class NetworkError extends Error {}

export interface Client {
  base: string;
  key: string;
  visitor: string;
}

interface Envelope {
  error?: { code?: string; message?: string; details?: { level?: string } };
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); undefined when absent. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const n = Number(header);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: Envelope = {};
  try {
    body = (await res.json()) as Envelope;
  } catch {
    // not JSON: keep the status alone
  }
  const e = body.error ?? {};
  const level = e.details && typeof e.details === "object" ? e.details.level : undefined;
  return new ApiError(
    res.status,
    e.code ?? `HTTP_${res.status}`,
    e.message ?? res.statusText,
    level,
    retryAfterSeconds(res.headers.get("retry-after")),
  );
}

/** One call; resolves with an OK response, rejects with ApiError or NetworkError. */
export async function call(
  c: Client,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  accept = "application/json",
): Promise<Response> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${c.key}`,
    "X-Visitor-Id": c.visitor,
    Accept: accept,
  };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(c.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  } catch (err) {
    throw new NetworkError(String(err));
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** `call` for JSON answers. */
export async function json<T>(c: Client, method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
  const res = await call(c, method, path, body);
  try {
    return (await res.json()) as T;
  } catch (err) {
    throw new NetworkError(String(err));
  }
}
