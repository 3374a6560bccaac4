/**
 * The live sockets of a conversation (docs/handoff.md): an operator's console and the visitor's
 * widget, both forwarded to the conversation's Durable Object, which accepts them with the
 * hibernation API. The worker checks who is calling and tells the object in headers it sets on a
 * request of its own: nothing the caller sent reaches the object.
 */
import { Hono } from "hono";
import type { AppEnv } from "../app";
import { admittedAddress, failedAttempt } from "../auth/throttle";
import { IsolateCache } from "../cache/isolate";
import { OPERATOR_SOCKET_MS } from "../chat/conversation-do";
import { AppError, type ErrorCode } from "../errors";
import { operatorAuth } from "../operators/middleware";
import { forgetOperatorSocket, MAX_SOCKETS_PER_SESSION, registerOperatorSocket } from "./operator-sockets";
import { CONVERSATION_ID } from "./routes";
import { TICKET_TTL_MS, verifyLiveTicket } from "./ticket";

// Tickets this isolate has seen used (or refused by their conversation), until they expire: a
// replay is refused here without a call to the conversation's object. The object stays the judge
// (it spends each ticket once); this only spares it the replays that reach this isolate.
const spentTickets = new IsolateCache<true>(10_000, TICKET_TTL_MS);

/** The socket's request to the object: only the upgrade and the checked identity. */
async function forward(
  stub: { fetch(request: Request): Promise<Response> },
  url: string,
  identity: Record<string, string>,
): Promise<Response> {
  const res = await stub.fetch(new Request(url, { headers: { upgrade: "websocket", ...identity } }));
  if (res.status === 101) return res;
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: ErrorCode; message?: string } };
  throw new AppError(body.error?.code ?? "UNAVAILABLE", body.error?.message ?? "live connection refused");
}

function conversationId(raw: string): string {
  if (!CONVERSATION_ID.test(raw))
    throw new AppError("VALIDATION_FAILED", "invalid request: id: not a conversation id", {
      details: [{ path: "id", message: "not a conversation id" }],
    });
  return raw;
}

function requireUpgrade(header: string | undefined) {
  if (header?.toLowerCase() !== "websocket")
    throw new AppError("VALIDATION_FAILED", "this route is a WebSocket: send Upgrade: websocket");
}

export const liveRoutes = new Hono<AppEnv>()
  /**
   * An operator's socket: the console session's cookie, and the page's Origin must be ours. A
   * cookie rides along on any site's WebSocket to us (no CORS on upgrades): without the Origin
   * check any page an operator visits could read their conversations (cross-site WebSocket hijacking).
   */
  .get("/operator/inbox/:id/live", operatorAuth, async (c) => {
    const id = conversationId(c.req.param("id"));
    const origin = c.req.header("origin");
    if (!origin || origin !== new URL(c.req.url).origin)
      throw new AppError("FORBIDDEN", "live connections are only for the console's own origin");
    requireUpgrade(c.req.header("upgrade"));
    const tenant = c.get("tenant");
    const op = c.get("operator");
    if (!op) throw new AppError("UNAUTHORIZED", "no console session: sign in first");
    const svc = c.get("svc");
    // Noted before it opens, so that the session's end finds it (./operator-sockets.ts).
    const socket = { sessionId: op.sessionId, tenantId: tenant.id, conversationId: id };
    const registered = await registerOperatorSocket(svc.dbh.db, socket, OPERATOR_SOCKET_MS);
    if (!registered.ok) {
      throw registered.reason === "ended"
        ? new AppError("UNAUTHORIZED", "no console session: sign in first")
        : new AppError(
            "RATE_LIMITED",
            `this session has live connections to ${MAX_SOCKETS_PER_SESSION} conversations already`,
          );
    }
    try {
      return await forward(svc.env.CONVERSATION.getByName(`${tenant.id}:${id}`), c.req.url, {
        "x-live-tenant": tenant.id,
        "x-live-kind": "operator",
        "x-live-operator": op.id,
        "x-live-session": op.sessionId,
        // The socket closes with the session's own expiry if that comes before its age limit.
        "x-live-session-expires": String(op.sessionExpiresAt),
      });
    } catch (err) {
      // Refused (no such conversation, ended, full): a row of its own would only be swept later.
      if (registered.inserted) await forgetOperatorSocket(svc.dbh.db, socket, registered.registration);
      throw err;
    }
  })
  /** A visitor's socket: its ticket (POST /v1/conversations/{id}/live) is the only credential. */
  .get("/v1/conversations/:id/live", async (c) => {
    const id = conversationId(c.req.param("id"));
    requireUpgrade(c.req.header("upgrade"));
    const svc = c.get("svc");
    const env = svc.env;
    // A refused ticket counts against the address as a failed key does (src/auth/throttle.ts).
    const ip = await admittedAddress(svc, c.req.raw.headers);
    const refuse = async (message: string): Promise<never> => {
      throw await failedAttempt(svc, ip, new AppError("UNAUTHORIZED", message));
    };
    const claims = await verifyLiveTicket(env, id, c.req.query("ticket"));
    if (!claims) return refuse("missing, invalid or expired live ticket");
    if (spentTickets.get(claims.id)) return refuse("this live ticket was used already: ask for a new one");
    let socket: Response;
    try {
      socket = await forward(env.CONVERSATION.getByName(`${claims.tenantId}:${id}`), c.req.url, {
        "x-live-tenant": claims.tenantId,
        "x-live-kind": "visitor",
        "x-live-user": claims.userId,
        "x-live-ticket": claims.id,
        "x-live-expires": String(claims.expiresAt),
      });
    } catch (err) {
      // The object refused the ticket (spent, or not this visitor's): so will it next time.
      if (!(err instanceof AppError && err.code === "UNAUTHORIZED")) throw err;
      spentTickets.set(claims.id, true);
      return refuse(err.message);
    }
    spentTickets.set(claims.id, true);
    return socket;
  });
