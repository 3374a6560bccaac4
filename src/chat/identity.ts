import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { AppError } from "../errors";
import { verifyVisitorToken } from "./visitor-token";

/**
 * Browsers (publishable keys): the visitor their `X-Visitor-Token` names, when it is genuine,
 * unexpired and for this tenant. Runs after tenantAuth on the widget's routes.
 */
export const visitorAuth = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("apiKey").kind === "publishable") {
    const token = c.req.header("x-visitor-token");
    c.set("visitor", await verifyVisitorToken(c.get("svc").env, c.get("tenant").id, token));
  }
  await next();
});

/**
 * The end user a message counts against. Servers (secret keys) name it (`user`), or it defaults to
 * the key itself; browsers (publishable keys) are the visitor of their signed visitor token, which
 * the platform issued (a browser cannot pick a new identity by itself).
 */
export function endUserOf(c: Context<AppEnv>, given: string | undefined): string {
  const key = c.get("apiKey");
  if (key.kind === "publishable") {
    const visitor = c.get("visitor");
    if (!visitor) {
      throw new AppError(
        "UNAUTHORIZED",
        "publishable keys need a visitor token (X-Visitor-Token), issued by POST /v1/conversations",
        { details: [{ path: "X-Visitor-Token", message: "missing, invalid or expired" }] },
      );
    }
    return `visitor:${visitor.visitorId}`;
  }
  return given ? `user:${given}` : `key:${key.id}`;
}
