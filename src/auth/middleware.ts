import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { AppError } from "../errors";
import { findApiKey, getTenantConfig } from "../tenants/config";
import { clientIp, ipHash } from "./client-ip";
import { hashesEqual, secretsEqual } from "./compare";
import { bearerToken, parseKey, sha256Hex } from "./keys";
import { failedAttempt, throttled } from "./throttle";

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
 * The browser origin a request comes from: its `Origin` header, or, for a same-origin request
 * (a browser sends no Origin on a same-origin GET, and says so in `Sec-Fetch-Site`), the origin of
 * the URL it was sent to. Scripts can forge either; the origin check keeps other sites' pages out,
 * and the per-address and per-visitor limits bound what a script gets.
 */
function browserOrigin(c: Context<AppEnv>): string | undefined {
  const origin = c.req.header("origin");
  if (origin) return origin;
  if (c.req.header("sec-fetch-site") === "same-origin") return new URL(c.req.url).origin;
  return undefined;
}

/**
 * Tenant routes: a secret key (servers) or a publishable key (browsers, only from the tenant's
 * allowed origins). Sets `tenant`, `apiKey` and `clientIp` (the caller's address, hashed); every
 * refusal is decided before any other work. Failed attempts are counted per address; past the limit
 * only keys the caches already hold get through, and nothing from that address reaches Postgres
 * (src/auth/throttle.ts).
 */
export const tenantAuth = createMiddleware<AppEnv>(async (c, next) => {
  const svc = c.get("svc");
  const address = clientIp(c.req.raw.headers);
  // Without an address (only in tests that call the worker directly) nothing is counted per address.
  const ip = address === "unknown" ? undefined : await ipHash(svc.env, address);
  c.set("clientIp", ip);
  // An address over its limit still gets through with a key the caches already know (a real
  // visitor behind the same NAT); anything else is refused without reaching Postgres.
  const over = ip ? throttled(ip) : undefined;
  const fail = async (message: string): Promise<never> => {
    if (over) throw over;
    const err = new AppError("UNAUTHORIZED", message, { headers: WWW });
    throw ip ? await failedAttempt(svc, ip, err) : err;
  };
  const token = bearerToken(c.req.header("authorization"));
  if (!token)
    throw new AppError("UNAUTHORIZED", "missing API key (Authorization: Bearer <key>)", { headers: WWW });
  const parsed = parseKey(token);
  if (!parsed) return fail("malformed API key");
  const [record, presentedHash] = await Promise.all([
    findApiKey(svc, parsed.prefix, { cachedOnly: over !== undefined }),
    sha256Hex(token),
  ]);
  if (!record || !hashesEqual(presentedHash, record.hash)) return fail("invalid API key");
  if (record.revoked) return fail("API key revoked");
  const tenant = await getTenantConfig(svc, record.tenantId);
  if (!tenant) return fail("invalid API key");
  if (!tenant.active) throw new AppError("FORBIDDEN", "tenant is deactivated");
  const origin = browserOrigin(c);
  if (record.kind === "publishable") {
    if (!origin) throw new AppError("FORBIDDEN", "publishable keys are for browsers: Origin header required");
    if (!tenant.allowedOrigins.includes(origin)) {
      throw new AppError("FORBIDDEN", `origin ${origin} is not allowed for this tenant`);
    }
  }
  c.set("apiKey", record);
  c.set("tenant", tenant);
  await next();
  const corsOrigin = c.req.header("origin");
  if (corsOrigin && tenant.allowedOrigins.includes(corsOrigin)) {
    c.header("Access-Control-Allow-Origin", corsOrigin);
    c.header("Vary", "Origin", { append: true });
    c.header(
      "Access-Control-Expose-Headers",
      "X-Request-Id, Retry-After, RateLimit-Policy, RateLimit, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
    );
  }
});
