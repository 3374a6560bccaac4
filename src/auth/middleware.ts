import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { AppError } from "../errors";
import { findApiKey, getTenantConfig } from "../tenants/config";
import { hashesEqual, secretsEqual } from "./compare";
import { bearerToken, parseKey, sha256Hex } from "./keys";

const WWW = { "WWW-Authenticate": 'Bearer realm="chatedge"' };

/** Admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearerToken(c.req.header("authorization"));
  if (!token)
    throw new AppError("UNAUTHORIZED", "missing admin token (Authorization: Bearer <ADMIN_TOKEN>)", {
      headers: WWW,
    });
  if (!(await secretsEqual(token, c.get("svc").env.ADMIN_TOKEN))) {
    throw new AppError("UNAUTHORIZED", "invalid admin token", { headers: WWW });
  }
  await next();
});

/**
 * Tenant routes: a secret key (servers) or a publishable key (browsers, only from the tenant's
 * allowed origins). Sets `tenant` and `apiKey`; every refusal is decided before any other work.
 */
export const tenantAuth = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearerToken(c.req.header("authorization"));
  if (!token)
    throw new AppError("UNAUTHORIZED", "missing API key (Authorization: Bearer <key>)", { headers: WWW });
  const parsed = parseKey(token);
  if (!parsed) throw new AppError("UNAUTHORIZED", "malformed API key", { headers: WWW });
  const svc = c.get("svc");
  const [record, presentedHash] = await Promise.all([findApiKey(svc, parsed.prefix), sha256Hex(token)]);
  if (!record || !hashesEqual(presentedHash, record.hash)) {
    throw new AppError("UNAUTHORIZED", "invalid API key", { headers: WWW });
  }
  if (record.revoked) throw new AppError("UNAUTHORIZED", "API key revoked", { headers: WWW });
  const tenant = await getTenantConfig(svc, record.tenantId);
  if (!tenant) throw new AppError("UNAUTHORIZED", "invalid API key", { headers: WWW });
  if (!tenant.active) throw new AppError("FORBIDDEN", "tenant is deactivated");
  const origin = c.req.header("origin");
  if (record.kind === "publishable") {
    if (!origin) throw new AppError("FORBIDDEN", "publishable keys are for browsers: Origin header required");
    if (!tenant.allowedOrigins.includes(origin)) {
      throw new AppError("FORBIDDEN", `origin ${origin} is not allowed for this tenant`);
    }
  }
  c.set("apiKey", record);
  c.set("tenant", tenant);
  await next();
  if (origin && tenant.allowedOrigins.includes(origin)) {
    c.header("Access-Control-Allow-Origin", origin);
    c.header("Vary", "Origin", { append: true });
    c.header(
      "Access-Control-Expose-Headers",
      "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
    );
  }
});
