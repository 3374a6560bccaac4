/**
 * The console's operator sessions on the request path: an HttpOnly, Secure, SameSite=Strict cookie
 * holding a random token, checked against Postgres on every request (revocation is immediate), and
 * for every write an `X-CSRF-Token` header derived from that token, which only the console's own
 * page can read (GET /operator/session answers it; no other origin may read that answer).
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { hashesEqual } from "../auth/compare";
import { admittedAddress, failedAttempt } from "../auth/throttle";
import { AppError } from "../errors";
import { getTenantConfig } from "../tenants/config";
import { csrfToken, operatorActor, SESSION_TTL_MS, sessionOf } from "./service";

/** `__Host-`: the browser keeps it only if Secure, Path=/ and no Domain (no subdomain can set it). */
export const SESSION_COOKIE = "__Host-chatedge_session";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function setSessionCookie(c: Context<AppEnv>, token: string): void {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
}

export function clearSessionCookie(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
}

/** What `randomToken(43)` makes: anything else is refused without a lookup. */
const SESSION_TOKEN = /^[A-Za-z0-9]{43}$/;

/** The cookie's session token, if the request carries one. */
export function sessionToken(c: Context<AppEnv>): string | undefined {
  return getCookie(c, SESSION_COOKIE) || undefined;
}

/**
 * Operator routes: a live session, the CSRF header on writes, an active tenant. Sets `operator`,
 * `tenant` and `actor` (the audit log names the operator).
 */
export const operatorAuth = createMiddleware<AppEnv>(async (c, next) => {
  const svc = c.get("svc");
  const token = sessionToken(c);
  const signIn = new AppError("UNAUTHORIZED", "no console session: sign in first");
  if (!token) throw signIn;
  // A cookie that is no session counts against its address, as a failed key does: past the limit
  // the address's cookies reach Postgres no more until the minute ends.
  const ip = await admittedAddress(svc, c.req.raw.headers);
  const op = SESSION_TOKEN.test(token) ? await sessionOf(svc.dbh.db, token) : undefined;
  if (!op) throw await failedAttempt(svc, ip, signIn);
  if (!SAFE_METHODS.has(c.req.method)) {
    const presented = c.req.header("x-csrf-token") ?? "";
    if (!hashesEqual(presented, await csrfToken(token))) {
      throw new AppError(
        "FORBIDDEN",
        "missing or wrong X-CSRF-Token header (read it from GET /operator/session)",
      );
    }
  }
  const tenant = await getTenantConfig(svc, op.tenantId);
  if (!tenant?.active) throw new AppError("FORBIDDEN", "this tenant is deactivated");
  c.set("operator", op);
  c.set("tenant", tenant);
  c.set("actor", operatorActor(op, c.get("requestId")));
  await next();
});

/** Writes are for owners; agents read, and write only where a route lets them (answering visitors). */
export const ownersOnly = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("operator")?.role !== "owner") {
    throw new AppError(
      "FORBIDDEN",
      "this needs an owner of the tenant; agents may read and answer conversations",
    );
  }
  await next();
});
