import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app";
import { hashesEqual } from "../auth/compare";
import { hmacSha256Hex } from "../auth/keys";
import { AppError } from "../errors";
import { verifyVisitorToken } from "./visitor-token";

/**
 * Browsers (publishable keys): the visitor their `X-Visitor-Token` names, when it is genuine,
 * unexpired and for this tenant. Runs after tenantAuth on the widget's routes.
 */
export const visitorAuth = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("apiKey").kind === "publishable") {
    const token = c.req.header("x-visitor-token");
    const visitor = await verifyVisitorToken(c.get("svc").env, c.get("tenant").id, token);
    // A user the tenant's identity secret verified is that user while the secret is the same: a
    // rotated secret (a leaked one, say) leaves its tokens' holders anonymous visitors.
    if (visitor?.userId !== undefined) {
      const secret = c.get("tenant").identitySecret;
      if (!secret || visitor.secretTag !== (await identityTag(secret))) {
        visitor.userId = undefined;
        visitor.secretTag = undefined;
      }
    }
    c.set("visitor", visitor);
  }
  await next();
});

// Tags by secret, per isolate; bounded by the tenants whose verified users it serves.
const tags = new Map<string, Promise<string>>();

/**
 * A tag of an identity secret, carried in the visitor tokens of the users it verified: short, and
 * telling nothing of the secret (an HMAC under it).
 */
export function identityTag(secret: string): Promise<string> {
  let tag = tags.get(secret);
  if (!tag) {
    if (tags.size >= 1_000) tags.clear();
    tag = hmacSha256Hex(secret, "chatedge visitor token").then((h) => h.slice(0, 16));
    tags.set(secret, tag);
  }
  return tag;
}

/**
 * The end user a message counts against. Servers (secret keys) name it (`user`), or it defaults to
 * the key itself; browsers (publishable keys) are the visitor of their signed visitor token, which
 * the platform issued (a browser cannot pick a new identity by itself), or the user it names when the
 * tenant's server signed that user's id: the same `user:` a server names, on every device.
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
    return visitor.userId !== undefined ? `user:${visitor.userId}` : `visitor:${visitor.visitorId}`;
  }
  return given ? `user:${given}` : `key:${key.id}`;
}

/**
 * A browser's claim to be a logged-in user of the tenant: `user_id` with `user_hash`, the hex
 * HMAC-SHA256 of the id under the tenant's identity secret, which only the tenant's server knows.
 * Answers the verified id, with the tag of the secret that verified it (undefined when nothing is
 * claimed); a wrong hash is 401.
 */
export async function verifiedUser(
  c: Context<AppEnv>,
  claim: { user_id?: string | undefined; user_hash?: string | undefined },
): Promise<{ id: string; secretTag: string } | undefined> {
  const { user_id: userId, user_hash: hash } = claim;
  if (userId === undefined && hash === undefined) return undefined;
  const invalid = (path: string, message: string) =>
    new AppError("VALIDATION_FAILED", message, { details: [{ path, message }] });
  if (c.get("apiKey").kind !== "publishable") {
    throw invalid(
      "user_id",
      "user_id and user_hash are for browsers; a secret key names the end user with user",
    );
  }
  if (userId === undefined || hash === undefined) {
    throw invalid(userId === undefined ? "user_id" : "user_hash", "user_id and user_hash go together");
  }
  const secret = c.get("tenant").identitySecret;
  if (!secret) {
    throw invalid(
      "user_id",
      "the tenant has no identity secret to verify user_id with (POST /v1/identity-secret makes one)",
    );
  }
  // The project's constant-time comparison of hex digests (the schema allows either case).
  if (!hashesEqual(await hmacSha256Hex(secret, userId), hash.toLowerCase())) {
    throw new AppError("UNAUTHORIZED", "user_hash does not match user_id", {
      details: [{ path: "user_hash", message: "not the HMAC-SHA256 of user_id under the identity secret" }],
    });
  }
  return { id: userId, secretTag: await identityTag(secret) };
}
