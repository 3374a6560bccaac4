/**
 * Visitor live tickets: what lets a browser open its conversation's live socket (docs/handoff.md).
 * A WebSocket from a page cannot carry the publishable key and visitor token as headers, so the
 * widget first asks for a ticket with them (POST /v1/conversations/{id}/live) and puts it in the
 * socket's URL. A ticket is `lt1.<payload>.<mac>` (base64url, HMAC-SHA256 under a key derived from
 * ADMIN_TOKEN): the tenant, the conversation, its user, a random id and an expiry 60 s away. The
 * conversation's object spends the id on first use, so a ticket opens one socket, once.
 */
import { randomToken } from "../auth/keys";
import { openToken, signToken } from "../auth/signed-token";

export const TICKET_TTL_MS = 60_000;

export interface LiveTicketClaims {
  tenantId: string;
  conversationId: string;
  userId: string;
  /** Random: the object refuses an id it has seen. */
  id: string;
  /** Epoch ms. */
  expiresAt: number;
}

interface Payload {
  t: string;
  c: string;
  u: string;
  n: string;
  e: number;
}

export async function issueLiveTicket(
  env: { ADMIN_TOKEN: string },
  claims: Omit<LiveTicketClaims, "id" | "expiresAt">,
  now = Date.now(),
): Promise<{ ticket: string; claims: LiveTicketClaims }> {
  const full: LiveTicketClaims = { ...claims, id: randomToken(22), expiresAt: now + TICKET_TTL_MS };
  const p: Payload = {
    t: full.tenantId,
    c: full.conversationId,
    u: full.userId,
    n: full.id,
    e: full.expiresAt,
  };
  return { ticket: await signToken(env, "live ticket", "lt1", p), claims: full };
}

/** The claims of a genuine, unexpired ticket for this conversation; undefined for anything else. */
export async function verifyLiveTicket(
  env: { ADMIN_TOKEN: string },
  conversationId: string,
  ticket: string | undefined,
  now = Date.now(),
): Promise<LiveTicketClaims | undefined> {
  const p = (await openToken(env, "live ticket", "lt1", ticket)) as Partial<Payload> | undefined;
  if (!p) return undefined;
  if (typeof p.t !== "string" || typeof p.u !== "string" || typeof p.n !== "string") return undefined;
  if (typeof p.e !== "number" || p.e <= now || p.c !== conversationId) return undefined;
  return { tenantId: p.t, conversationId: p.c, userId: p.u, id: p.n, expiresAt: p.e };
}
