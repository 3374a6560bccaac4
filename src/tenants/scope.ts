/**
 * Tenant-scoped routes are declared once and mounted twice: under `/v1` for the tenant's own secret
 * key, and under `/admin/tenants/{id}` for the platform admin. A scope's middleware resolves the
 * tenant and the actor onto the context (`c.var.tenant`, `c.var.actor`), so a handler never asks
 * where the tenant came from.
 */
import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { App, AppEnv } from "../app";
import { adminAuth, tenantAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { adminSecurity, errors, tenantSecurity } from "../openapi";
import { getTenantConfig } from "./config";
import { TenantIdParam } from "./schemas";

/** Which credential reached the tenant. */
export type ScopeKind = "key" | "admin";

/** A route of a tenant scope: a route config whose tags, security, auth and scope errors are added. */
export type ScopedRoute = Omit<RouteConfig, "security" | "middleware"> & {
  middleware?: MiddlewareHandler<AppEnv>[];
};

export interface TenantScope {
  readonly kind: ScopeKind;
  /** Where the scope's routers are mounted. */
  readonly prefix: "/v1" | "/admin/tenants/:id";
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

function scope(kind: ScopeKind): TenantScope {
  const auth = kind === "key" ? [tenantAuth, secretKeyOnly] : [adminAuth, adminScopeAuth];
  const statuses = kind === "key" ? [401, 403] : [400, 401, 404];
  return {
    kind,
    prefix: kind === "key" ? "/v1" : "/admin/tenants/:id",
    route(def) {
      const request =
        kind === "admin" ? { ...def.request, params: withTenantId(def.request?.params) } : def.request;
      return createRoute({
        ...def,
        tags: (def.tags ?? []).map((t) => (kind === "admin" ? `admin: ${t}` : t)),
        security: kind === "key" ? tenantSecurity : adminSecurity,
        middleware: [...auth, ...(def.middleware ?? [])],
        request,
        responses: { ...errors(...statuses), ...def.responses },
      }) as typeof def;
    },
  };
}

export const keyScope = scope("key");
export const adminScope = scope("admin");

/** Mounts a scoped router under both prefixes. */
export function mountTenantScoped(app: App, routes: (scope: TenantScope) => App): void {
  for (const s of [keyScope, adminScope]) app.route(s.prefix, routes(s));
}
