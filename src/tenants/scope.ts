/**
 * Tenant-scoped routes are declared once and mounted three times: under `/v1` for the tenant's own
 * secret key, under `/admin/tenants/{id}` for the platform admin, and under `/operator` for the
 * tenant's operators signed into the console (src/operators/). A scope's middleware resolves the
 * tenant and the actor onto the context (`c.var.tenant`, `c.var.actor`), so a handler never asks
 * where the tenant came from.
 */
import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { App, AppEnv } from "../app";
import { adminAuth, tenantAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { adminSecurity, errors, operatorSecurity, tenantSecurity } from "../openapi";
import { operatorAuth, ownersOnly } from "../operators/middleware";
import { TenantIdParam } from "./chat-schemas";
import { getTenantConfig } from "./config";

/**
 * A stored URL as the caller may read it: an operator with the agent role (the console's read-only
 * one) gets its origin only. Such a URL can be a credential in itself (a Slack webhook's path, a
 * token in a query string); owners, the tenant's keys and the admin, who may change it, read it whole.
 */
export function urlForReader(c: Context<AppEnv>, url: string): string;
export function urlForReader(c: Context<AppEnv>, url: string | null): string | null;
export function urlForReader(c: Context<AppEnv>, url: string | null): string | null {
  if (url === null || c.get("operator")?.role !== "agent") return url;
  try {
    return new URL(url).origin;
  } catch {
    return "";
  }
}

/** Which credential reached the tenant: a secret key, the admin token, or an operator's console session. */
export type ScopeKind = "key" | "admin" | "operator";

/** A route of a tenant scope: a route config whose tags, security, auth and scope errors are added. */
export type ScopedRoute = Omit<RouteConfig, "security" | "middleware"> & {
  middleware?: MiddlewareHandler<AppEnv>[];
  /** Operators with the agent role may call it too; otherwise only owners may, for anything but GET. */
  agents?: boolean;
};

export interface TenantScope {
  readonly kind: ScopeKind;
  /** Where the scope's routers are mounted. */
  readonly prefix: "/v1" | "/admin/tenants/:id" | "/operator";
  /** Declares a route in this scope (the admin scope adds the `{id}` path parameter). */
  route<const R extends ScopedRoute>(def: R): R;
}

/**
 * The tenant's own key. Every scoped route is the tenant's business (costs, settings, experiments),
 * and a publishable key sits in public web pages, so only secret keys pass.
 */
export const secretKeyOnly = createMiddleware<AppEnv>(async (c, next) => {
  const key = c.get("apiKey");
  if (key.kind !== "secret") {
    throw new AppError(
      "FORBIDDEN",
      "this route needs a secret key (sk_...): publishable keys (pk_...) serve only the widget's routes",
    );
  }
  c.set("actor", { actor: `key:${key.id}`, requestId: c.get("requestId") });
  await next();
});

/** The admin path's `{id}`: an unknown tenant is 404; a deactivated one is still the admin's to see. */
const adminScopeAuth = createMiddleware<AppEnv>(async (c, next) => {
  const parsed = TenantIdParam.safeParse({ id: c.req.param("id") });
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => i.message).join("; ");
    throw new AppError("VALIDATION_FAILED", `invalid request: id: ${message}`, {
      details: [{ path: "id", message }],
    });
  }
  const tenant = await getTenantConfig(c.get("svc"), parsed.data.id);
  if (!tenant) throw new AppError("NOT_FOUND", `no tenant ${parsed.data.id}`);
  c.set("tenant", tenant);
  c.set("actor", { actor: "admin", requestId: c.get("requestId") });
  await next();
});

type Params = NonNullable<RouteConfig["request"]>["params"];

/** The admin path's params: the tenant id and the route's own. */
function withTenantId(params: Params): Params {
  if (!params) return TenantIdParam;
  if (params instanceof z.ZodObject) return TenantIdParam.extend(params.shape);
  throw new Error("scoped routes declare their path params as a z.object");
}

const AUTH: Record<ScopeKind, MiddlewareHandler<AppEnv>[]> = {
  key: [tenantAuth, secretKeyOnly],
  admin: [adminAuth, adminScopeAuth],
  operator: [operatorAuth],
};
const PREFIX = { key: "/v1", admin: "/admin/tenants/:id", operator: "/operator" } as const;
const SECURITY = { key: tenantSecurity, admin: adminSecurity, operator: operatorSecurity };

function scope(kind: ScopeKind): TenantScope {
  const statuses = kind === "admin" ? [400, 401, 404] : [401, 403];
  return {
    kind,
    prefix: PREFIX[kind],
    route(def) {
      const request =
        kind === "admin" ? { ...def.request, params: withTenantId(def.request?.params) } : def.request;
      const roles = kind === "operator" && def.method !== "get" && !def.agents ? [ownersOnly] : [];
      // `agents` is this scope's own field: kept out of the route config (and so out of /openapi.json).
      const { agents: _agents, ...config } = def;
      return createRoute({
        ...config,
        tags: (def.tags ?? []).map((t) => (kind === "key" ? t : `${kind}: ${t}`)),
        security: SECURITY[kind],
        middleware: [...AUTH[kind], ...roles, ...(def.middleware ?? [])],
        request,
        responses: { ...errors(...statuses), ...def.responses },
      }) as unknown as typeof def;
    },
  };
}

export const keyScope = scope("key");
export const adminScope = scope("admin");
export const operatorScope = scope("operator");

/** Mounts a scoped router under the three prefixes. */
export function mountTenantScoped(app: App, routes: (scope: TenantScope) => App): void {
  for (const s of [keyScope, adminScope, operatorScope]) app.route(s.prefix, routes(s));
}
