/**
 * Live takeover from the attacker's side (docs/handoff.md): a visitor cannot act as an operator,
 * another tenant's operator finds nothing, tickets open one socket of one conversation once and
 * expire, a page on another site cannot ride an operator's cookie into a socket, and one
 * conversation has one holder.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AUTH_FAILURES_PER_MINUTE } from "../../../src/auth/throttle";
import type { Conversation } from "../../../src/chat/conversation-do";
import { FRAME_CREDIT, FRAME_REFILL_MS, RESUME_COST } from "../../../src/handoff/frame-credit";
import { issueLiveTicket } from "../../../src/handoff/ticket";
import { BASE, envelope, send, tampered } from "../helpers";
import {
  consoleSend,
  openLive,
  operator,
  operatorLive,
  SITE,
  visitor,
  visitorLive,
  widgetTenant,
} from "./helpers";

const WRITES = ["takeover", "messages", "handback", "resolve"] as const;
const bodyOf = (route: string) => (route === "messages" ? { content: "hello" } : undefined);

async function transcriptLength(key: string, id: string) {
  const t = (await (await send("GET", `/v1/conversations/${id}`, key)).json()) as { messages: unknown[] };
  return t.messages.length;
}

describe("live takeover under attack", () => {
  it("a visitor's credentials open no operator socket and call no operator route", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const conv = await v.start();
    const visitorHeaders = { origin: SITE, "x-visitor-token": v.token as string };
    for (const route of WRITES) {
      // The operator scope knows only console sessions; the key scope only secret keys.
      const asOperator = await send(
        "POST",
        `/operator/inbox/${conv.id}/${route}`,
        t.pk,
        bodyOf(route),
        visitorHeaders,
      );
      expect(asOperator.status).toBe(401);
      const asKey = await send("POST", `/v1/inbox/${conv.id}/${route}`, t.pk, bodyOf(route), visitorHeaders);
      expect(asKey.status).toBe(403);
    }
    const socket = await openLive(`/operator/inbox/${conv.id}/live`, {
      authorization: `Bearer ${t.pk}`,
      "x-visitor-token": v.token as string,
      origin: BASE,
    });
    expect(socket.live).toBeUndefined();
    expect(socket.res.status).toBe(401);
    expect(await transcriptLength(t.key, conv.id)).toBe(0);
  });

  it("a visitor's socket only listens: frames posing as entries are refused and stored nowhere", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const { live } = await visitorLive(v, conv.id);
    if (!live) throw new Error("refused");
    live.ws.send(
      JSON.stringify({ type: "entry", role: "operator", author: "Anna", content: "send your password" }),
    );
    live.ws.send(JSON.stringify({ type: "message", content: "hi" }));
    await live.until((f) => f.type === "error", "error frame");
    expect(live.frames.every((f) => f.type === "error")).toBe(true);
    // Only "Anna joined".
    expect(await transcriptLength(t.key, conv.id)).toBe(1);
    live.ws.close();
  });

  it("another tenant's operator gets 404 on every route, REST and WebSocket", async () => {
    const t = await widgetTenant();
    const other = await widgetTenant();
    const anna = await operator(t.id, "owner", "Anna");
    const mallory = await operator(other.id, "owner", "Mallory");
    const conv = await visitor(t.pk).start();
    for (const route of WRITES) {
      const res = await consoleSend(
        "POST",
        `/operator/inbox/${conv.id}/${route}`,
        mallory.session,
        bodyOf(route),
      );
      expect(res.status, route).toBe(404);
      expect((await envelope(res)).code).toBe("NOT_FOUND");
    }
    // The other tenant's key finds nothing either: even where a key is refused anyway (takeover,
    // messages), the conversation is looked up first, so the answer does not tell it exists.
    for (const route of WRITES)
      expect((await send("POST", `/v1/inbox/${conv.id}/${route}`, other.key, bodyOf(route))).status).toBe(
        404,
      );
    const ws = await operatorLive(conv.id, mallory.session);
    expect(ws.res.status).toBe(404);
    // Nothing happened to it: the rightful operator still takes it over from open.
    const taken = await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session);
    expect(taken.status).toBe(200);
    expect(await transcriptLength(t.key, conv.id)).toBe(1);
  });

  it("a ticket opens its own conversation only, once, and not after it expires", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const a = await v.start();
    const b = await v.start();
    const res = await v.ticket(a.id);
    const { url, ticket } = (await res.json()) as { url: string; ticket: string };
    expect(new URL(url).protocol).toBe("ws:");
    // A's ticket on B's socket.
    const wrong = await openLive(`/v1/conversations/${b.id}/live?ticket=${encodeURIComponent(ticket)}`);
    expect(wrong.res.status).toBe(401);
    const u = new URL(url);
    const first = await openLive(`${u.pathname}${u.search}`);
    expect(first.res.status).toBe(101);
    first.live?.ws.close();
    const again = await openLive(`${u.pathname}${u.search}`);
    expect(again.res.status).toBe(401);
    // A genuine ticket issued 61 s ago.
    const old = await issueLiveTicket(
      env,
      { tenantId: t.id, conversationId: a.id, userId: `visitor:x` },
      Date.now() - 61_000,
    );
    const expired = await openLive(`/v1/conversations/${a.id}/live?ticket=${encodeURIComponent(old.ticket)}`);
    expect(expired.res.status).toBe(401);
    // A tampered one.
    const forged = tampered(ticket);
    expect((await openLive(`/v1/conversations/${a.id}/live?ticket=${forged}`)).res.status).toBe(401);
    // Not base64url at all: a part one character past a multiple of four decodes to nothing.
    for (const junk of ["lt1.A.AAAA", "lt1.AAAA.A", "lt1.AAAAA.AAAA"])
      expect((await openLive(`/v1/conversations/${a.id}/live?ticket=${junk}`)).res.status, junk).toBe(401);
    // Another visitor of the same tenant cannot get a ticket for it.
    const stranger = visitor(t.pk);
    await stranger.start();
    expect((await stranger.ticket(a.id)).status).toBe(404);
  });

  it("a spent ticket replayed is refused, and each refusal counts against the address: the 21st is 429", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const conv = await v.start();
    const { url } = (await (await v.ticket(conv.id)).json()) as { url: string };
    const u = new URL(url);
    const from = { origin: SITE, "cf-connecting-ip": v.ip };
    const first = await openLive(`${u.pathname}${u.search}`, from);
    expect(first.res.status).toBe(101);
    first.live?.ws.close();
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
      const replay = await openLive(`${u.pathname}${u.search}`, from);
      expect(replay.res.status, `replay ${i + 1}`).toBe(401);
    }
    const over = await openLive(`${u.pathname}${u.search}`, from);
    expect(over.res.status).toBe(429);
    expect((await envelope(over.res)).message).toContain("from this address");
    // Another address's visitor still connects.
    const other = visitor(t.pk);
    const theirs = await other.start();
    expect((await visitorLive(other, theirs.id)).res.status).toBe(101);
  });

  it("a visitor holds at most 8 of a conversation's sockets: the 9th is 429, a closed one makes room, and operators still connect", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const conv = await v.start();
    const open: NonNullable<Awaited<ReturnType<typeof visitorLive>>["live"]>[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await visitorLive(v, conv.id);
      expect(s.res.status, `socket ${i + 1}`).toBe(101);
      open.push(s.live as NonNullable<typeof s.live>);
    }
    const ticket = await v.ticket(conv.id);
    const u = new URL(((await ticket.json()) as { url: string }).url);
    const over = await openLive(`${u.pathname}${u.search}`, { origin: SITE });
    expect(over.res.status).toBe(429);
    expect((await envelope(over.res)).message).toBe(
      "too many live connections from the visitor to this conversation",
    );
    // The operators' share is theirs: the visitor's sockets do not keep them out.
    const anna = await operator(t.id, "agent");
    const watching = await operatorLive(conv.id, anna.session);
    expect(watching.res.status).toBe(101);
    watching.live?.ws.close(1000, "bye");
    // A closed socket makes room, and the ticket the 429 refused was not spent: it opens it.
    const closing = open.pop();
    closing?.ws.close(1000, "bye");
    let reopened: Awaited<ReturnType<typeof openLive>> | undefined;
    await expect
      .poll(
        async () => {
          reopened = await openLive(`${u.pathname}${u.search}`, { origin: SITE });
          return reopened.res.status;
        },
        { timeout: 5_000 },
      )
      .toBe(101);
    reopened?.live?.ws.close(1000, "bye");
    for (const s of open) s.ws.close(1000, "bye");
  });

  it("a ticket signed for another user of the conversation does not open it", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const a = await v.start();
    const forged = await issueLiveTicket(env, {
      tenantId: t.id,
      conversationId: a.id,
      userId: "visitor:mallory",
    });
    const res = await openLive(`/v1/conversations/${a.id}/live?ticket=${encodeURIComponent(forged.ticket)}`);
    expect(res.res.status).toBe(404);
  });

  it("an operator's socket from another site's page is refused, cookie or not", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const conv = await visitor(t.pk).start();
    expect((await operatorLive(conv.id, anna.session, "https://evil.example")).res.status).toBe(403);
    expect(
      (await openLive(`/operator/inbox/${conv.id}/live`, { cookie: anna.session.cookie })).res.status,
    ).toBe(403);
    const ok = await operatorLive(conv.id, anna.session);
    expect(ok.res.status).toBe(101);
    ok.live?.ws.close();
  });

  it("a signed-out operator's open socket closes at once and reads nothing more", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const bob = await operator(t.id, "agent", "Bob");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const { live } = await operatorLive(conv.id, bob.session);
    if (!live) throw new Error("refused");
    live.ws.send(JSON.stringify({ type: "resume", after: 0 }));
    await live.until((f) => f.type === "entry" && f.seq === 1);
    // Bob signs out: the socket he opened before closes with the session (session-end.test.ts).
    expect((await consoleSend("DELETE", "/operator/session", bob.session)).status).toBeLessThan(300);
    await live.until(() => live.closed, "close");
    expect(live.closeCode).toBe(4003);
    expect((await v.say(conv.id, "my card is 4111 1111 1111 1111")).status).toBe(200);
    expect(live.entries().map((e) => e.seq)).toEqual([1]);
    // Reconnecting passes the session check again, which a signed-out session fails.
    expect((await operatorLive(conv.id, bob.session)).res.status).toBe(401);
    // Anna's fresh socket reads on.
    const { live: fresh } = await operatorLive(conv.id, anna.session);
    if (!fresh) throw new Error("refused");
    fresh.ws.send(JSON.stringify({ type: "resume", after: 1 }));
    const missed = await fresh.until((f) => f.type === "entry" && f.seq === 2);
    // Stored redacted, as the bot's transcript is: the operator never sees the card number.
    expect(JSON.stringify(missed)).not.toContain("4111");
    fresh.ws.close();
  });

  it("one holder: a second operator's takeover and messages are 409; keys and the admin cannot hold", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const bob = await operator(t.id, "agent", "Bob");
    const owner = await operator(t.id, "owner", "Olga");
    const conv = await visitor(t.pk).start();
    const take = (s: typeof anna.session) => consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, s);
    expect((await take(anna.session)).status).toBe(200);
    // Taking it again is the same hold.
    expect((await take(anna.session)).status).toBe(200);
    const second = await take(bob.session);
    expect(second.status).toBe(409);
    expect((await envelope(second)).code).toBe("CONFLICT");
    const write = await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, bob.session, {
      content: "me too",
    });
    expect(write.status).toBe(409);
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/handback`, bob.session)).status).toBe(409);
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/resolve`, bob.session)).status).toBe(409);
    // Without the CSRF header a write is refused before anything.
    const noCsrf = await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, {
      cookie: bob.session.cookie,
      csrf: "",
    });
    expect(noCsrf.status).toBe(403);
    // A key is not a person.
    expect((await send("POST", `/v1/inbox/${conv.id}/takeover`, t.key)).status).toBe(403);
    expect((await send("POST", `/v1/inbox/${conv.id}/messages`, t.key, { content: "x" })).status).toBe(403);
    // Only "Anna joined".
    expect(await transcriptLength(t.key, conv.id)).toBe(1);
    // An owner may hand back anyone's hold; then Bob can take it.
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/handback`, owner.session)).status).toBe(
      200,
    );
    expect((await take(bob.session)).status).toBe(200);
  });

  describe("a socket's frames are limited", () => {
    /** A conversation held by Anna with `n` operator messages after "Anna joined". */
    async function heldConversation(n: number) {
      const t = await widgetTenant();
      const anna = await operator(t.id, "agent", "Anna");
      const v = visitor(t.pk);
      const conv = await v.start();
      expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(
        200,
      );
      for (let i = 0; i < n; i++) {
        const sent = await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, {
          content: `line ${i}`,
        });
        expect(sent.status).toBe(201);
      }
      return { v, conv, stub: env.CONVERSATION.getByName(`${t.id}:${conv.id}`) };
    }
    /** Runs `fn` with the object's clock pinned: the credit refills only when the test moves it. */
    async function pinned(stub: DurableObjectStub<Conversation>, fn: () => Promise<void>) {
      await runInDurableObject(stub, (c: Conversation) => c.clock.set(Date.now()));
      try {
        await fn();
      } finally {
        await runInDurableObject(stub, (c: Conversation) => c.clock.release());
      }
    }
    const resume = JSON.stringify({ type: "resume", after: 0 });
    const BURST = FRAME_CREDIT / RESUME_COST;

    it("a flood of resumes replays the transcript three times, then the socket is closed", async () => {
      const { v, conv, stub } = await heldConversation(4);
      await pinned(stub, async () => {
        const { live } = await visitorLive(v, conv.id);
        if (!live) throw new Error("refused");
        for (let i = 0; i < 200; i++) live.ws.send(resume);
        await live.until(() => live.closed, "close");
        expect(live.closeCode).toBe(1008);
        // Five entries a replay, BURST replays: without the limit, 200 frames asked for 1,000.
        expect(live.entries()).toHaveLength(5 * BURST);
        expect(live.frames.filter((f) => f.type === "state")).toHaveLength(BURST);
        // The limit is the socket's: a new ticket opens a socket that reads.
        const { live: again } = await visitorLive(v, conv.id);
        if (!again) throw new Error("refused");
        again.ws.send(resume);
        await again.until((f) => f.type === "entry" && f.seq === 5);
        again.ws.close();
      });
    });

    it("frames that are not the protocol's are answered until the credit is spent", async () => {
      const { v, conv, stub } = await heldConversation(0);
      await pinned(stub, async () => {
        const { live } = await visitorLive(v, conv.id);
        if (!live) throw new Error("refused");
        // A ping in another spelling reaches the object, as junk does; the exact one does not.
        for (let i = 0; i < 100; i++) live.ws.send(i % 2 ? "junk" : '{ "type": "ping" }');
        await live.until(() => live.closed, "close");
        expect(live.closeCode).toBe(1008);
        expect(live.frames).toHaveLength(FRAME_CREDIT);
        expect(live.frames.filter((f) => f.type === "pong")).toHaveLength(FRAME_CREDIT / 2);
      });
    });

    it("a refused frame forfeits the rest of the credit: cheap frames behind it are not answered", async () => {
      const { v, conv, stub } = await heldConversation(0);
      await pinned(stub, async () => {
        const { live } = await visitorLive(v, conv.id);
        if (!live) throw new Error("refused");
        // 2 + 2 x 10 spent, 8 left: the third resume is refused, and the junk behind it finds 0.
        for (const f of ["junk", "junk", resume, resume, resume, ...Array(10).fill("junk")]) live.ws.send(f);
        await live.until(() => live.closed, "close");
        expect(live.closeCode).toBe(1008);
        expect(live.frames.filter((f) => f.type === "error")).toHaveLength(2);
        expect(live.frames.filter((f) => f.type === "state")).toHaveLength(2);
      });
    });

    it("the credit refills with time: one more resume a third of a minute later", async () => {
      const { v, conv, stub } = await heldConversation(1);
      const { live } = await visitorLive(v, conv.id);
      if (!live) throw new Error("refused");
      const states = () => live.frames.filter((f) => f.type === "state").length;
      await pinned(stub, async () => {
        for (let i = 0; i < BURST; i++) live.ws.send(resume);
        await live.until(() => states() === BURST, "the burst's states");
        await runInDurableObject(stub, (c: Conversation) => c.clock.advance(FRAME_REFILL_MS / BURST));
        live.ws.send(resume);
        await live.until(() => states() === BURST + 1, "a refilled resume");
        expect(live.closed).toBe(false);
        live.ws.send(resume);
        await live.until(() => live.closed, "close");
        expect(live.closeCode).toBe(1008);
        expect(live.entries()).toHaveLength(2 * (BURST + 1));
      });
    });
  });
});
