import { type ApiError, apiErrorOf } from "../shared/api-error";
import type { Session } from "./session";

/** One problem the server named: a field path and what is wrong with it. */
export interface Issue {
  path: string;
  message: string;
}

/** The field problems a refusal names (a validation failure's details); none for other refusals. */
export function issuesOf({ details }: ApiError): Issue[] {
  if (!Array.isArray(details)) return [];
  return details.flatMap((d: unknown) => {
    if (typeof d !== "object" || d === null) return [];
    const { path, message } = d as { path?: unknown; message?: unknown };
    return typeof message === "string" ? [{ path: typeof path === "string" ? path : "", message }] : [];
  });
}

/**
 * A tenant's resources: the same paths under /v1 (its own key), /admin/tenants/{id} (the admin)
 * and /operator (an operator's console session).
 */
type TenantResource =
  | "analytics/dashboard"
  | "usage"
  | "experiments"
  | "monitoring"
  | "alerts"
  | "alert-settings"
  | "tools"
  | "privacy/export"
  | "privacy/erase"
  | "operators"
  | "inbox"
  | "knowledge/sources"
  | "knowledge/settings"
  | "knowledge/unanswered";

/** Calls the API as the signed-in operator; a 401 calls `onUnauthorized` (the session is over). */
export class Api {
  constructor(
    readonly session: Session,
    readonly onUnauthorized: () => void,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.send<T>("GET", path);
  }

  async send<T>(
    method: string,
    path: string,
    body?: unknown,
    init: { keepalive?: boolean } = {},
  ): Promise<T> {
    const headers: Record<string, string> = {};
    // An operator's session rides in its HttpOnly cookie; writes carry the CSRF token.
    if (this.session.kind !== "operator") headers.Authorization = `Bearer ${this.session.token}`;
    else if (method !== "GET") headers["X-CSRF-Token"] = this.session.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive: init.keepalive,
    });
    if (res.status === 204) return undefined as T;
    if (res.ok) return (await res.json()) as T;
    const err = await apiErrorOf(res);
    if (res.status === 401) this.onUnauthorized();
    throw err;
  }

  /** The path of a per-tenant resource, for the admin (any tenant), a tenant key or an operator (its own). */
  tenantPath(tenantId: string, what: TenantResource): string {
    const kind = this.session.kind;
    const base =
      kind === "admin"
        ? `/admin/tenants/${encodeURIComponent(tenantId)}`
        : kind === "operator"
          ? "/operator"
          : "/v1";
    return `${base}/${what}`;
  }
}
