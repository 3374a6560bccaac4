import type { Session } from "./session";

/** One problem the server named: a field path and what is wrong with it. */
export interface Issue {
  path: string;
  message: string;
}

/** A refusal in the server's error envelope {error:{code,message,requestId,details}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
    readonly issues: Issue[],
  ) {
    super(message);
  }
}

interface Envelope {
  error?: { code?: string; message?: string; requestId?: string; details?: unknown };
}

function issuesOf(details: unknown): Issue[] {
  if (!Array.isArray(details)) return [];
  return details.flatMap((d: unknown) => {
    if (typeof d !== "object" || d === null) return [];
    const { path, message } = d as { path?: unknown; message?: unknown };
    return typeof message === "string" ? [{ path: typeof path === "string" ? path : "", message }] : [];
  });
}

/** A tenant key's paths to its own resources (the admin's are /admin/tenants/{id}/<name>). */
const OWN = {
  dashboard: "/v1/analytics/dashboard",
  usage: "/v1/usage",
  experiments: "/v1/experiments",
  monitoring: "/v1/monitoring",
  alerts: "/v1/alerts",
  "alert-settings": "/v1/alert-settings",
} as const;

/** Calls the API as the signed-in operator; a 401 calls `onUnauthorized` (the session is over). */
export class Api {
  constructor(
    readonly session: Session,
    readonly onUnauthorized: () => void,
  ) {}

  get<T>(path: string): Promise<T> {
    return this.send<T>("GET", path);
  }

  async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.session.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.ok) return (await res.json()) as T;
    let env: Envelope = {};
    try {
      env = (await res.json()) as Envelope;
    } catch {
      // not the envelope: the status speaks alone
    }
    const e = env.error ?? {};
    const err = new ApiError(
      res.status,
      e.code ?? `HTTP_${res.status}`,
      e.message ?? res.statusText,
      e.requestId,
      issuesOf(e.details),
    );
    if (res.status === 401) this.onUnauthorized();
    throw err;
  }

  /** The path of a per-tenant resource, for the admin (any tenant) or a tenant key (its own). */
  tenantPath(tenantId: string, what: keyof typeof OWN): string {
    if (this.session.kind === "admin") return `/admin/tenants/${encodeURIComponent(tenantId)}/${what}`;
    return OWN[what];
  }
}
