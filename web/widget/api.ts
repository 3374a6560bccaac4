/** The public conversation API as the widget uses it: publishable key, visitor token, JSON or SSE. */
import { apiErrorOf } from "../shared/api-error";
import type { VisitorToken } from "./storage";

/** No answer at all: offline, a dropped connection, a stream cut short, or a CORS refusal. */
export class NetworkError extends Error {}

export interface Client {
  base: string;
  key: string;
  visitor: VisitorToken;
  /** A logged-in user as the tenant's server signed it (data-user-id, data-user-hash). */
  user?: { user_id: string; user_hash: string } | undefined;
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
    Accept: accept,
  };
  const token = c.visitor.get();
  if (token) headers["X-Visitor-Token"] = token;
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
  if (!res.ok) throw await apiErrorOf(res);
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
