/**
 * Visitor tokens: the identity of a browser visitor, issued by the platform and signed, so a script
 * holding a tenant's publishable key cannot name itself a new visitor at will. A token is
 * `vt1.<payload>.<mac>` (base64url): the tenant it is for, a random visitor id and an expiry, under
 * HMAC-SHA256 with a key derived from ADMIN_TOKEN. New visitors get one when they start a
 * conversation, which the tenant gate counts per address. A logged-in user's token also carries the
 * user id the tenant's server signed (`u`, checked in src/chat/identity.ts before it is issued);
 * tokens without `u` are anonymous visitors.
 */
import { randomToken } from "../auth/keys";
import { openToken, signToken } from "../auth/signed-token";

/** How long a visitor keeps its identity without starting a conversation again. */
export const VISITOR_TOKEN_TTL_SECONDS = 30 * 86_400;

interface Payload {
  /** Tenant id. */
  t: string;
  /** Visitor id. */
  v: string;
  /** Expiry, epoch seconds. */
  e: number;
  /** The verified user id, for a logged-in user. */
  u?: string;
  /** With `u`: the tag of the identity secret that verified it (src/chat/identity.ts). */
  k?: string;
}

export interface Visitor {
  tenantId: string;
  visitorId: string;
  expiresAt: number;
  /** The user id the tenant's server signed, when the visitor is a verified logged-in user. */
  userId?: string;
  /** With `userId`: the tag of the identity secret that verified it. */
  secretTag?: string;
}

/**
 * Issues a token for a new visitor of the tenant (or renews a known visitor's); `user` only when
 * the caller has verified it, with the tag of the identity secret it was verified with.
 */
export async function issueVisitorToken(
  env: { ADMIN_TOKEN: string },
  tenantId: string,
  visitorId = randomToken(22),
  user?: { id: string; secretTag: string },
  now = Date.now(),
): Promise<{ token: string; visitor: Visitor }> {
  const expiresAt = Math.floor(now / 1000) + VISITOR_TOKEN_TTL_SECONDS;
  const p: Payload = { t: tenantId, v: visitorId, e: expiresAt, u: user?.id, k: user?.secretTag };
  const token = await signToken(env, "visitor token", "vt1", p);
  return {
    token,
    visitor: { tenantId, visitorId, expiresAt, userId: user?.id, secretTag: user?.secretTag },
  };
}

/** The visitor a token names, if it is genuine, unexpired and for this tenant. */
export async function verifyVisitorToken(
  env: { ADMIN_TOKEN: string },
  tenantId: string,
  token: string | undefined,
  now = Date.now(),
): Promise<Visitor | undefined> {
  const p = (await openToken(env, "visitor token", "vt1", token)) as Partial<Payload> | undefined;
  if (!p) return undefined;
  if (p.t !== tenantId || typeof p.v !== "string" || typeof p.e !== "number") return undefined;
  if (p.u !== undefined && typeof p.u !== "string") return undefined;
  if (p.k !== undefined && typeof p.k !== "string") return undefined;
  if (p.e * 1000 <= now) return undefined;
  return { tenantId: p.t, visitorId: p.v, expiresAt: p.e, userId: p.u, secretTag: p.k };
}
