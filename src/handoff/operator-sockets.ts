/**
 * An operator's live sockets end with the console session they were opened under (docs/handoff.md,
 * "Live"). A socket lives in its conversation's Durable Object, which cannot see Postgres, so before
 * it opens the worker writes which session opened it into which conversation (`operator_sockets`),
 * under a lock on the session's row; whatever ends sessions (sign-out, "sign out everywhere", the
 * operator's removal) takes those rows in the same transaction and, once it commits, tells each
 * conversation to close the session's sockets. Either the socket's row is written before the
 * session ends (and the end finds it) or the session's end is seen by the row's write (and the
 * socket is refused): the lock leaves no third order.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { operatorSockets } from "../db/schema";
import type { Env } from "../env";
import type { Tx } from "../tenants/service";

/** A socket a session may still hold: its conversation, by the object's name. */
export interface OpenSocket {
  sessionId: string;
  tenantId: string;
  conversationId: string;
}

/**
 * How long a row outlives its socket's own age limit (the object's clock and the worker's differ):
 * past it the object has closed the socket itself.
 */
const ROW_MARGIN_MS = 60_000;

/** Conversations told at once when sessions end (each a call to its object). */
const CLOSE_CONCURRENCY = 8;

/**
 * Live sockets one session may hold at once, in as many conversations: a console shows one
 * conversation a tab, and a row outlives its socket until the socket's age (up to 11 minutes), so
 * this is room for an operator clicking through conversations. Past it a socket is refused (429)
 * until one of the others ages out. About: two of a session's sockets opening at once may both pass.
 */
export const MAX_SOCKETS_PER_SESSION = 200;

/**
 * What registering a socket found: the session has ended (or was ending: the lock waits for that
 * transaction), and the socket must not open; the session holds MAX_SOCKETS_PER_SESSION already;
 * or the row is written, `inserted` when there was none for this conversation.
 */
export type Registration =
  | { ok: false; reason: "ended" | "full" }
  | { ok: true; inserted: boolean; registration: string };

/**
 * Notes the socket the session is about to open into a conversation, for as long as it may live.
 * Also clears the session's rows whose sockets are past their age.
 */
export async function registerOperatorSocket(
  db: Db,
  socket: OpenSocket,
  socketMs: number,
  now = Date.now(),
): Promise<Registration> {
  const at = new Date(now).toISOString();
  const expires = new Date(now + socketMs + ROW_MARGIN_MS).toISOString();
  const registration = crypto.randomUUID();
  // One statement, one round trip. `for share` waits for a transaction ending the session, then
  // reads the row again: an ended session is no longer `live`, and nothing is written.
  const result = await db.execute<{ live: number; inserted: boolean | null }>(sql`
    with live as (
      select id from operator_sessions
      where id = ${socket.sessionId} and revoked_at is null and expires_at > ${at}::timestamptz
      for share
    ), others as (
      select count(*) as n from operator_sockets
      where session_id = ${socket.sessionId} and conversation_id <> ${socket.conversationId}
        and expires_at > ${at}::timestamptz
    ), cleared as (
      delete from operator_sockets
      where session_id in (select id from live) and conversation_id <> ${socket.conversationId}
        and expires_at <= ${at}::timestamptz
    ), written as (
      insert into operator_sockets (session_id, tenant_id, conversation_id, expires_at, registration)
      select id, ${socket.tenantId}, ${socket.conversationId}, ${expires}::timestamptz, ${registration}
      from live, others where others.n < ${MAX_SOCKETS_PER_SESSION}
      on conflict (session_id, conversation_id)
        do update set expires_at = excluded.expires_at, registration = excluded.registration
      returning (xmax = 0) as inserted
    )
    select (select count(*) from live)::int as live, (select inserted from written) as inserted`);
  const row = result.rows[0];
  if (!row?.live) return { ok: false, reason: "ended" };
  if (row.inserted === null) return { ok: false, reason: "full" };
  return { ok: true, inserted: row.inserted, registration };
}

/**
 * Drops the row a registration wrote for a socket that did not open (and had no row before), unless
 * another socket of the session into the conversation renewed it since (its registration then
 * differs). Best effort: a row left behind is swept by the cron.
 */
export async function forgetOperatorSocket(db: Db, socket: OpenSocket, registration: string): Promise<void> {
  try {
    await db
      .delete(operatorSockets)
      .where(
        and(
          eq(operatorSockets.sessionId, socket.sessionId),
          eq(operatorSockets.conversationId, socket.conversationId),
          eq(operatorSockets.registration, registration),
        ),
      );
  } catch (err) {
    console.error(JSON.stringify({ msg: "operator socket row not dropped", error: String(err) }));
  }
}

/** The cron's sweep: rows of sockets past their age, of sessions that ended no other way. */
export async function pruneOperatorSockets(db: Db, now: number): Promise<number> {
  const { rows } = await db.execute(sql`
    delete from operator_sockets where ctid in (
      select ctid from operator_sockets where expires_at <= ${new Date(now).toISOString()}::timestamptz limit 10000
    ) returning 1`);
  return rows.length;
}

/**
 * Within the transaction that ends the sessions, after their rows are updated (that update waits for
 * any socket's registration under way): takes their sockets' rows, and answers the ones that may
 * still be open, for `closeOperatorSockets` once the transaction commits.
 */
export async function takeOperatorSockets(tx: Tx, sessionIds: string[]): Promise<OpenSocket[]> {
  if (sessionIds.length === 0) return [];
  const rows = await tx
    .delete(operatorSockets)
    .where(inArray(operatorSockets.sessionId, sessionIds))
    .returning({
      sessionId: operatorSockets.sessionId,
      tenantId: operatorSockets.tenantId,
      conversationId: operatorSockets.conversationId,
      expiresAt: operatorSockets.expiresAt,
    });
  const now = Date.now();
  return rows
    .filter((r) => r.expiresAt.getTime() > now)
    .map(({ sessionId, tenantId, conversationId }) => ({ sessionId, tenantId, conversationId }));
}

/**
 * Tells each conversation to close the ended sessions' sockets (and to refuse them from now on).
 * A conversation that cannot be reached is logged and left: its sockets still close at their age.
 * Answers how many sockets were closed.
 */
export async function closeOperatorSockets(env: Env, sockets: OpenSocket[]): Promise<number> {
  // Each conversation's object once, with every ended session that had a socket there.
  const byConversation = new Map<string, { tenantId: string; sessions: string[] }>();
  for (const s of sockets) {
    const name = `${s.tenantId}:${s.conversationId}`;
    const entry = byConversation.get(name) ?? { tenantId: s.tenantId, sessions: [] };
    entry.sessions.push(s.sessionId);
    byConversation.set(name, entry);
  }
  const conversations = [...byConversation];
  let closed = 0;
  for (let i = 0; i < conversations.length; i += CLOSE_CONCURRENCY) {
    const batch = conversations.slice(i, i + CLOSE_CONCURRENCY);
    const answers = await Promise.allSettled(
      batch.map(([name, { tenantId, sessions }]) =>
        env.CONVERSATION.getByName(name).closeSessions(tenantId, sessions),
      ),
    );
    for (const [j, a] of answers.entries()) {
      if (a.status === "fulfilled") closed += a.value;
      else
        console.error(
          JSON.stringify({
            msg: "could not close an ended session's live sockets",
            conversation: batch[j]?.[0],
            error: String(a.reason),
          }),
        );
    }
  }
  return closed;
}
