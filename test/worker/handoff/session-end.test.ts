/**
 * An operator's live sockets end with the console session (docs/handoff.md, "Live"): a sign-out, an
 * owner's or the admin's "sign out everywhere" and the operator's removal close the session's open
 * sockets at once (4003), in every conversation, and no one else's; a socket still on its way when
 * the session ends is refused; a socket past its age is closed (4001) and reopens while the session lives.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../../src/auth/keys";
import { type Conversation, OPERATOR_SOCKET_MS } from "../../../src/chat/conversation-do";
import { openDb } from "../../../src/db/client";
import { operatorSessions } from "../../../src/db/schema";
import { loadEnv } from "../../../src/env";
import {
  forgetOperatorSocket,
  MAX_SOCKETS_PER_SESSION,
  pruneOperatorSockets,
  registerOperatorSocket,
} from "../../../src/handoff/operator-sockets";
import { admin, BASE, envelope } from "../helpers";
import {
  consoleSend,
  type Live,
  operator,
  operatorLive,
  type Session,
  visitor,
  widgetTenant,
} from "./helpers";

/** An operator's socket into a conversation, resumed and shown its state. */
async function watching(conversationId: string, session: Session): Promise<Live> {
  const { live, res } = await operatorLive(conversationId, session);
  if (!live) throw new Error(`refused: ${res.status} ${await res.text()}`);
  live.ws.send(JSON.stringify({ type: "resume", after: 0 }));
  await live.until((f) => f.type === "state", "state");
  return live;
}

const closedWith = async (live: Live) => {
  await live.until(() => live.closed, "close");
  return live.closeCode;
};

/** A database handle of the worker's own kind, on the test database. */
function testDb() {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return openDb(loaded.env);
}

/** The session's id as Postgres keeps it: the SHA-256 of the cookie's token. */
const sessionId = (s: Session) => sha256Hex(s.cookie.split("=")[1] as string);

describe("an operator's live sockets end with the session", () => {
  it("signing out closes the session's sockets in every conversation at once, and no one else's", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const bob = await operator(t.id, "agent", "Bob");
    const v = visitor(t.pk);
    const first = await v.start();
    const second = await v.start();
    const annas = [await watching(first.id, anna.session), await watching(second.id, anna.session)];
    const bobs = await watching(first.id, bob.session);

    expect((await consoleSend("DELETE", "/operator/session", anna.session)).status).toBe(204);
    // No clock moved and nothing written: the sign-out alone closes them.
    expect(await closedWith(annas[0] as Live)).toBe(4003);
    expect(await closedWith(annas[1] as Live)).toBe(4003);
    expect((await operatorLive(first.id, anna.session)).res.status).toBe(401);

    // Bob's socket into the same conversation reads on.
    expect((await v.say(first.id, "hello?")).status).toBe(200);
    await bobs.until((f) => f.type === "entry" && f.role === "user", "the visitor's entry");
    expect(bobs.closed).toBe(false);
    expect((annas[0] as Live).entries().some((e) => e.role === "user")).toBe(false);
    bobs.ws.close();
  });

  it("an owner signing an operator out everywhere closes every session's sockets", async () => {
    const t = await widgetTenant();
    const owner = await operator(t.id, "owner", "Olga");
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const annas = await watching(conv.id, anna.session);
    const olgas = await watching(conv.id, owner.session);

    const out = await consoleSend("DELETE", `/operator/operators/${anna.id}/sessions`, owner.session);
    expect(await out.json()).toEqual({ revoked: 1 });
    expect(await closedWith(annas)).toBe(4003);
    expect(olgas.closed).toBe(false);
    olgas.ws.close();
  });

  it("the admin's sign-out everywhere, and removing an operator, close their sockets", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const bob = await operator(t.id, "agent", "Bob");
    const conv = await visitor(t.pk).start();
    const annas = await watching(conv.id, anna.session);
    const bobs = await watching(conv.id, bob.session);

    const revoked = await admin("DELETE", `/tenants/${t.id}/operators/${anna.id}/sessions`);
    expect(await revoked.json()).toEqual({ revoked: 1 });
    expect(await closedWith(annas)).toBe(4003);

    expect((await admin("DELETE", `/tenants/${t.id}/operators/${bob.id}`)).status).toBe(200);
    expect(await closedWith(bobs)).toBe(4003);
    expect((await operatorLive(conv.id, bob.session)).res.status).toBe(401);
  });

  it("a socket on its way when its session ends is refused by the conversation", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const stub = env.CONVERSATION.getByName(`${t.id}:${conv.id}`);
    const ended = await sessionId(anna.session);
    // Another tenant's word, or an unknown conversation's, closes and stores nothing.
    expect(await stub.closeSessions("t_other", [ended])).toBe(0);
    const nobody = env.CONVERSATION.getByName(`${t.id}:c_never_started`);
    expect(await nobody.closeSessions(t.id, [ended])).toBe(0);
    await runInDurableObject(nobody, (_c, state) =>
      expect(
        state.storage.sql.exec("select name from sqlite_master where name = 'ended_sessions'").toArray(),
      ).toEqual([]),
    );

    expect(await stub.closeSessions(t.id, [ended])).toBe(0);
    const open = (session: string) =>
      stub.fetch(
        new Request(`${BASE}/operator/inbox/${conv.id}/live`, {
          headers: {
            upgrade: "websocket",
            "x-live-tenant": t.id,
            "x-live-kind": "operator",
            "x-live-operator": anna.id,
            "x-live-session": session,
          },
        }),
      );
    const refused = await open(ended);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: "UNAUTHORIZED" } });
    const other = await open("f".repeat(64));
    expect(other.status).toBe(101);
    other.webSocket?.accept();
    other.webSocket?.close();
  });

  it("a session that has ended registers no socket", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const db = testDb();
    const socket = { sessionId: await sessionId(anna.session), tenantId: t.id, conversationId: conv.id };
    try {
      expect(await registerOperatorSocket(db.db, socket, OPERATOR_SOCKET_MS)).toMatchObject({
        ok: true,
        inserted: true,
      });
      expect((await consoleSend("DELETE", "/operator/session", anna.session)).status).toBe(204);
      expect(await registerOperatorSocket(db.db, socket, OPERATOR_SOCKET_MS)).toEqual({
        ok: false,
        reason: "ended",
      });
    } finally {
      await db.close();
    }
  });

  it("a socket's registration waits for a session's end under way, then registers nothing", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const id = await sessionId(anna.session);
    const [ending, opening] = [testDb(), testDb()];
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let updated = () => {};
    const ended = new Promise<void>((r) => {
      updated = r;
    });
    try {
      // A sign-out's transaction has ended the session's row and not committed yet.
      const end = ending.db.transaction(async (tx) => {
        await tx.update(operatorSessions).set({ revokedAt: sql`now()` }).where(eq(operatorSessions.id, id));
        updated();
        await held;
      });
      await ended;
      let settled = false;
      const registered = registerOperatorSocket(
        opening.db,
        { sessionId: id, tenantId: t.id, conversationId: conv.id },
        OPERATOR_SOCKET_MS,
      ).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      // Without the lock it would have read the session as live and written its row by now.
      expect(settled).toBe(false);
      release();
      await end;
      expect(await registered).toEqual({ ok: false, reason: "ended" });
    } finally {
      release();
      await Promise.all([ending.close(), opening.close()]);
    }
  });

  it("a socket past its age closes (4001) at its next delivery, and reopens while the session lives", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    const live = await watching(conv.id, anna.session);
    const stub = env.CONVERSATION.getByName(`${t.id}:${conv.id}`);
    await runInDurableObject(stub, (c: Conversation) => c.clock.advance(OPERATOR_SOCKET_MS));
    try {
      expect((await v.say(conv.id, "anyone?")).status).toBe(200);
      expect(await closedWith(live)).toBe(4001);
      const again = await watching(conv.id, anna.session);
      again.ws.close();
    } finally {
      await runInDurableObject(stub, (c: Conversation) => c.clock.release());
    }
  });

  it("a socket its conversation refuses leaves no row; a session holds at most MAX_SOCKETS_PER_SESSION; the cron sweeps aged rows", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const id = await sessionId(anna.session);
    const db = testDb();
    const rows = async () =>
      Number(
        (await db.db.execute(sql`select count(*)::int as n from operator_sockets where session_id = ${id}`))
          .rows[0]?.n,
      );
    try {
      // No such conversation: 404, and nothing noted for it.
      expect((await operatorLive(`conv_${"n".repeat(24)}`, anna.session)).res.status).toBe(404);
      expect(await rows()).toBe(0);

      const socket = (n: number) => ({ sessionId: id, tenantId: t.id, conversationId: `conv_full_${n}` });
      for (let n = 0; n < MAX_SOCKETS_PER_SESSION; n++)
        expect((await registerOperatorSocket(db.db, socket(n), OPERATOR_SOCKET_MS)).ok).toBe(true);
      expect(
        await registerOperatorSocket(db.db, socket(MAX_SOCKETS_PER_SESSION), OPERATOR_SOCKET_MS),
      ).toEqual({
        ok: false,
        reason: "full",
      });
      // A failed socket drops only the row it wrote: not one another socket renewed since, even in
      // the same millisecond (the same expiry).
      const at = Date.now();
      const first = await registerOperatorSocket(db.db, socket(1), OPERATOR_SOCKET_MS, at);
      if (!first.ok) throw new Error("not registered");
      expect((await registerOperatorSocket(db.db, socket(1), OPERATOR_SOCKET_MS, at)).ok).toBe(true);
      await forgetOperatorSocket(db.db, socket(1), first.registration);
      expect(await rows()).toBe(MAX_SOCKETS_PER_SESSION);
      // One it holds already is renewed, not counted again.
      expect(await registerOperatorSocket(db.db, socket(0), OPERATOR_SOCKET_MS)).toMatchObject({
        ok: true,
        inserted: false,
      });
      const refused = await operatorLive(conv.id, anna.session);
      expect(refused.res.status).toBe(429);
      expect(await envelope(refused.res)).toMatchObject({ code: "RATE_LIMITED" });

      // Rows of sockets past their age are swept (only those: the cron runs beside live sessions).
      await db.db.execute(
        sql`update operator_sockets set expires_at = now() - interval '1 minute' where session_id = ${id}`,
      );
      expect(await pruneOperatorSockets(db.db, Date.now())).toBeGreaterThanOrEqual(MAX_SOCKETS_PER_SESSION);
      expect(await rows()).toBe(0);
      const opened = await watching(conv.id, anna.session);
      expect(await rows()).toBe(1);
      opened.ws.close();
    } finally {
      await db.close();
    }
  });

  it("a socket closes at its session's own expiry when that comes before its age limit", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    const id = await sessionId(anna.session);
    const db = testDb();
    const ends = Date.now() + 60_000;
    try {
      await db.db.execute(
        sql`update operator_sessions set expires_at = ${new Date(ends).toISOString()}::timestamptz where id = ${id}`,
      );
    } finally {
      await db.close();
    }
    const live = await watching(conv.id, anna.session);
    const stub = env.CONVERSATION.getByName(`${t.id}:${conv.id}`);
    const until = await runInDurableObject(stub, (_o, state) =>
      state.getWebSockets("operator").map((ws) => (ws.deserializeAttachment() as { until: number }).until),
    );
    expect(until).toEqual([ends]);
    live.ws.close();
  });
});
