import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { AppError } from "../errors";
import { findApiKey, freshApiKey, getTenantConfig } from "../tenants/config";
import { clientIp, ipHash } from "./client-ip";
import { hashesEqual, secretsEqual } from "./compare";
import { bearerToken, parseKey, sha256Hex } from "./keys";
import { admittedAddress, failedAttempt, throttled } from "./throttle";

const WWW = { "WWW-Authenticate": 'Bearer realm="chatedge"' };

// The SHA-256 of keys this isolate has seen match their record, so a key's next request skips the
// digest (about 7% of the OpenAI path's CPU profile). Only verified keys get in, so made-up keys
// cannot fill it; the hash is still compared with the record's on every request, so revocation
// and rotation work as before. Bounded: dropped whole when full.
const verifiedHashes = new Map<string, string>();
const VERIFIED_MAX = 1_000;

/**
 * Admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. A wrong token
 * counts against the address as a failed API key does; past the limit the address is refused
 * before any comparison, the right token included, until its minute is over.
 */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const svc = c.get("svc");
  const ip = await admittedAddress(svc, c.req.raw.headers);
  const token = bearerToken(c.req.header("authorization"));
  if (!token)
    throw new AppError("UNAUTHORIZED", "missing admin token (Authorization: Bearer <ADMIN_TOKEN>)", {
      headers: WWW,
    });
  if (!(await secretsEqual(token, svc.env.ADMIN_TOKEN))) {
    throw await failedAttempt(svc, ip, new AppError("UNAUTHORIZED", "invalid admin token", { headers: WWW }));
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
 * allowed origins). Sets `tenant`, `apiKey` and, for browsers, `clientIp` (the address, hashed); every
 * refusal is decided before any other work. Failed attempts are counted per address; past the limit
 * only keys the caches already hold get through, and nothing from that address reaches Postgres
 * (src/auth/throttle.ts).
 */
export const tenantAuth = createMiddleware<AppEnv>(async (c, next) => {
  const svc = c.get("svc");
  const address = clientIp(c.req.raw.headers);
  // The address's keyed hash, computed once and only when something needs it: a lookup past this
  // isolate's memory (the throttle decides how far it may go), a failure, or a browser key. A
  // server key this isolate knows costs no HMAC. Without an address (only in tests that call the
  // worker directly) nothing is counted per address.
  let hashing: Promise<string | undefined> | undefined;
  const ipOf = () =>
    (hashing ??= address === "unknown" ? Promise.resolve(undefined) : ipHash(svc.env, address));
  const fail = async (message: string): Promise<never> => {
    const ip = await ipOf();
    const over = throttled(ip);
    if (over) throw over;
    throw await failedAttempt(svc, ip, new AppError("UNAUTHORIZED", message, { headers: WWW }));
  };
  const token = bearerToken(c.req.header("authorization"));
  if (!token)
    throw new AppError("UNAUTHORIZED", "missing API key (Authorization: Bearer <key>)", { headers: WWW });
  const parsed = parseKey(token);
  if (!parsed) return fail("malformed API key");
  const known = verifiedHashes.get(token);
  const presented = known ?? sha256Hex(token);
  // A key this isolate holds fresh gets through whatever its address did (a real visitor behind
  // the same NAT as a script). Any other lookup asks first whether the address is over its limit:
  // then only keys the caches already hold get through, and nothing from it reaches Postgres.
  let record = freshApiKey(svc, parsed.prefix);
  if (!record) {
    const over = throttled(await ipOf());
    record = await findApiKey(svc, parsed.prefix, { cachedOnly: over !== undefined });
  }
  const presentedHash = await presented;
  if (!record || !hashesEqual(presentedHash, record.hash)) return fail("invalid API key");
  if (known === undefined) {
    if (verifiedHashes.size >= VERIFIED_MAX) verifiedHashes.clear();
    verifiedHashes.set(token, presentedHash);
  }
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
  // Only browsers' traffic is counted per address (src/chat/address-limits.ts).
  c.set("clientIp", record.kind === "publishable" ? await ipOf() : undefined);
  c.set("apiKey", record);
  c.set("tenant", tenant);
  // Set before the answer exists, so it is built with them (set after, each would copy it whole).
  const corsOrigin = c.req.header("origin");
  if (corsOrigin && tenant.allowedOrigins.includes(corsOrigin)) {
    c.header("Access-Control-Allow-Origin", corsOrigin);
    c.header("Vary", "Origin", { append: true });
    c.header(
      "Access-Control-Expose-Headers",
      "X-Request-Id, Retry-After, RateLimit-Policy, RateLimit, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
    );
  }
  await next();
});
