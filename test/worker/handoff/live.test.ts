/**
 * Live takeover end to end through the worker (docs/handoff.md): a visitor escalates, an operator
 * takes the conversation over and writes; the visitor's socket shows it live, the visitor's own
 * messages reach the operator without a model call; hand-back gives it to the bot again.
 * Reconnects resume by seq: nothing lost, nothing twice.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type Conversation, PING_FRAME } from "../../../src/chat/conversation-do";
import { FRAME_CREDIT, RESUME_COST } from "../../../src/handoff/frame-credit";
import { upstreamRequests } from "../chat/helpers";
import { send } from "../helpers";
import { consoleSend, operator, operatorLive, visitor, visitorLive, widgetTenant } from "./helpers";

describe("live takeover", () => {
  it("answers a keep-alive ping in the runtime, without waking the object; another spelling through it", async () => {
    const t = await widgetTenant();
    const v = visitor(t.pk);
    const conv = await v.start();
    const { live } = await visitorLive(v, conv.id);
    if (!live) throw new Error("visitor socket refused");
    const stub = env.CONVERSATION.getByName(`${t.id}:${conv.id}`);
    // When the runtime last answered each socket by itself (null: never).
    const autoAnswered = () =>
      runInDurableObject(stub, (_c: Conversation, state) =>
        state.getWebSockets().map((ws) => state.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null),
      );
    expect(await autoAnswered()).toEqual([null]);
    expect(PING_FRAME).toBe('{"type":"ping"}');
    live.ws.send(PING_FRAME);
    await live.until((f) => f.type === "pong", "pong");
    const [stamp] = await autoAnswered();
    expect(stamp).toEqual(expect.any(Number));
    // Spelled otherwise, the ping reaches webSocketMessage, which answers the same frame.
    live.ws.send('{ "type": "ping" }');
    await live.until(() => live.frames.filter((f) => f.type === "pong").length === 2, "second pong");
    expect(await autoAnswered()).toEqual([stamp]);
    // Anything else is still refused by the object.
    live.ws.send('{"type":"pong"}');
    await live.until((f) => f.type === "error", "error frame");
    live.ws.close();
  });

  it("an operator takes over, writes live to the visitor, reads the visitor live, and hands back", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await v.say(conv.id, "hello")).status).toBe(200);
    const asked = (await (await v.say(conv.id, "let me speak to a human agent")).json()) as { state: string };
    expect(asked.state).toBe("escalated");

    const { live: vs } = await visitorLive(v, conv.id);
    if (!vs) throw new Error("visitor socket refused");
    vs.ws.send(JSON.stringify({ type: "resume", after: 0 }));
    await vs.until((f) => f.type === "state" && f.status === "waiting", "waiting state");
    // The history so far arrives first: two turns, four entries, seq 1..4.
    await vs.until((f) => f.type === "entry" && f.seq === 4, "history");

    const { live: os } = await operatorLive(conv.id, anna.session);
    if (!os) throw new Error("operator socket refused");
    os.ws.send(JSON.stringify({ type: "resume", after: 4 }));

    const taken = await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session);
    expect(taken.status).toBe(200);
    expect(await taken.json()).toMatchObject({
      id: conv.id,
      status: "human",
      holder: { operator_id: anna.id, name: "Anna" },
      waiting_since: null,
    });
    await vs.until((f) => f.type === "entry" && f.role === "system" && f.content === "Anna joined", "joined");
    const visitorState = await vs.until(
      (f) => f.type === "state" && f.status === "human" && f.holder?.name === "Anna",
      "human state",
    );
    // The visitor sees the name the tenant shows, not the operator's id; the operator's socket has both.
    expect(visitorState).toMatchObject({ holder: { name: "Anna" } });
    expect(JSON.stringify(visitorState)).not.toContain(anna.id);
    const operatorState = await os.until((f) => f.type === "state" && f.status === "human", "operator state");
    expect(operatorState).toMatchObject({ holder: { operatorId: anna.id, name: "Anna" } });

    const sent = await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, {
      content: "Hi, I'm Anna. Write to me at anna@shop.example if you prefer.",
    });
    expect(sent.status).toBe(201);
    const entry = (await sent.json()) as { seq: number; role: string; author: string; content: string };
    expect(entry).toMatchObject({ seq: 6, role: "operator", author: "Anna" });
    // Stored (and shown) under the bot's rules: the tenant's redaction.
    expect(entry.content).not.toContain("anna@shop.example");
    const shown = await vs.until((f) => f.type === "entry" && f.role === "operator", "operator entry");
    expect(shown).toEqual({ type: "entry", ...entry });

    // The visitor writes: recorded, delivered to the operator live, and no model is called.
    const reply = await v.say(conv.id, "thanks Anna, where is order 42?");
    expect(reply.status).toBe(200);
    expect(await reply.json()).toMatchObject({ state: "human", message: null, escalated: false });
    await os.until(
      (f) => f.type === "entry" && f.role === "user" && f.content.includes("order 42"),
      "visitor entry",
    );
    // The fake keeps the newest requests (200 of all keys): a model call for this message would be among them.
    const modelCalls = (await upstreamRequests()).filter((r) =>
      JSON.stringify(r.body).includes("where is order 42"),
    );
    expect(modelCalls).toEqual([]);

    const back = await consoleSend("POST", `/operator/inbox/${conv.id}/handback`, anna.session);
    expect(back.status).toBe(200);
    expect(await back.json()).toMatchObject({ status: "open", holder: null });
    await vs.until((f) => f.type === "entry" && f.content === "The assistant is back", "back notice");
    await vs.until((f) => f.type === "state" && f.status === "open", "open state");
    // The bot answers again, and sees the operator's words as the assistant's, not the notices.
    const bot = (await (await v.say(conv.id, "one more question")).json()) as {
      state: string;
      message: { content: string } | null;
    };
    expect(bot.state).toBe("open");
    expect(bot.message?.content.length).toBeGreaterThan(0);
    await vs.until((f) => f.type === "entry" && f.role === "assistant" && f.seq === 10, "bot answer");

    // Both sides saw the same entries, once each, in seq order.
    const seqs = vs.entries().map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const transcript = (await (await send("GET", `/v1/conversations/${conv.id}`, t.key)).json()) as {
      messages: { seq: number; role: string; author: string | null; content: string }[];
    };
    expect(transcript.messages.map((m) => [m.seq, m.role])).toEqual(vs.entries().map((e) => [e.seq, e.role]));
    expect(transcript.messages.find((m) => m.role === "operator")?.author).toBe("Anna");
    const opSeqs = os.entries().map((e) => e.seq);
    expect(opSeqs).toEqual([5, 6, 7, 8, 9, 10]);
    vs.ws.close();
    os.ws.close();
  });

  it("a visitor reconnecting resumes after its highest seq: no entry lost, none twice", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const write = async (content: string) =>
      expect(
        (await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, { content })).status,
      ).toBe(201);

    const shown = new Map<number, string>();
    const duplicates: number[] = [];
    const show = (entries: { seq: number; content: string }[]) => {
      for (const e of entries) {
        if (shown.has(e.seq)) duplicates.push(e.seq);
        else shown.set(e.seq, e.content);
      }
    };

    const first = (await visitorLive(v, conv.id)).live;
    if (!first) throw new Error("refused");
    first.ws.send(JSON.stringify({ type: "resume", after: 0 }));
    await write("m1");
    await write("m2");
    await first.until((f) => f.type === "entry" && f.content === "m2", "m2");
    show(first.entries());
    first.ws.close(1000, "navigating away");
    await first.until(() => first.closed, "close").catch(() => {});

    // While the visitor is away: two messages and the visitor's own from another tab.
    await write("m3");
    expect((await v.say(conv.id, "are you there?")).status).toBe(200);
    await write("m4");

    const second = (await visitorLive(v, conv.id)).live;
    if (!second) throw new Error("refused");
    second.ws.send(JSON.stringify({ type: "resume", after: Math.max(...shown.keys()) }));
    await write("m5");
    await second.until((f) => f.type === "entry" && f.content === "m5", "m5");
    show(second.entries());
    second.ws.close();

    expect(duplicates).toEqual([]);
    // seq 1 is "Anna joined"; then m1, m2, m3, the visitor, m4, m5: every one exactly once, in order.
    expect([...shown.entries()]).toEqual([
      [1, "Anna joined"],
      [2, "m1"],
      [3, "m2"],
      [4, "m3"],
      [5, "are you there?"],
      [6, "m4"],
      [7, "m5"],
    ]);
    expect(second.entries().map((e) => e.seq)).toEqual([4, 5, 6, 7]);
  });

  it("keeps each socket's state in its tags and attachment, which hibernation keeps", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const { live } = await visitorLive(v, conv.id);
    const { live: op } = await operatorLive(conv.id, anna.session);
    if (!live || !op) throw new Error("refused");
    live.ws.send(JSON.stringify({ type: "resume", after: 0 }));
    await live.until((f) => f.type === "entry" && f.seq === 1);
    await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, { content: "hello" });
    await live.until((f) => f.type === "entry" && f.seq === 2);
    // The object's memory is not where a socket's progress lives: a woken object reads it back here.
    const stub = env.CONVERSATION.getByName(`${t.id}:${conv.id}`);
    const sockets = await runInDurableObject(stub, (_o, state) =>
      state
        .getWebSockets()
        .map((ws) => ({ tags: state.getTags(ws), attachment: ws.deserializeAttachment() as unknown })),
    );
    expect(sockets).toEqual(
      expect.arrayContaining([
        // Its frame credit too: one resume spent (src/handoff/frame-credit.ts).
        {
          tags: ["visitor"],
          attachment: {
            kind: "visitor",
            resumed: true,
            sent: 2,
            credit: expect.closeTo(FRAME_CREDIT - RESUME_COST, 0),
            creditAt: expect.any(Number),
          },
        },
        // The operator's socket has not resumed: nothing is pushed to it until it does.
        {
          tags: ["operator"],
          attachment: {
            kind: "operator",
            resumed: false,
            sent: 0,
            until: expect.any(Number),
            session: expect.any(String),
          },
        },
      ]),
    );
    expect(sockets).toHaveLength(2);
    live.ws.close();
    op.ws.close();
  });

  it("resolving ends the conversation resolved, tells the visitor, and closes the sockets", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const { live } = await visitorLive(v, conv.id);
    if (!live) throw new Error("refused");
    live.ws.send(JSON.stringify({ type: "resume", after: 0 }));
    await live.until((f) => f.type === "state" && f.status === "human");
    const done = await consoleSend("POST", `/operator/inbox/${conv.id}/resolve`, anna.session);
    expect(done.status).toBe(200);
    expect(await done.json()).toMatchObject({ status: "resolved", holder: null });
    await live.until((f) => f.type === "entry" && f.content === "Resolved by Anna");
    await live.until((f) => f.type === "state" && f.status === "resolved");
    await live.until(() => live.closed, "close");
    // Ended: no more takeovers, messages or tickets.
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(409);
    expect((await v.ticket(conv.id)).status).toBe(409);
  });

  it("operator text touching a blocked topic is refused and changes nothing", async () => {
    const t = await widgetTenant({ blocked_topics: ["crypto investments"] });
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    const res = await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, {
      content: "Have you considered Crypto-Investments?",
    });
    expect(res.status).toBe(400);
    const transcript = (await (await send("GET", `/v1/conversations/${conv.id}`, t.key)).json()) as {
      messages: unknown[];
    };
    expect(transcript.messages).toHaveLength(1);
  });

  it("names the operator to the visitor as the tenant allows: full name, first name, or Support", async () => {
    for (const [display, shown] of [
      ["full", "Anna Lindqvist"],
      ["first", "Anna"],
      ["none", "Support"],
    ] as const) {
      const t = await widgetTenant({ operator_name_display: display });
      const anna = await operator(t.id, "agent", "Anna Lindqvist");
      const v = visitor(t.pk);
      const conv = await v.start();
      const taken = await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session);
      expect(await taken.json()).toMatchObject({ holder: { operator_id: anna.id, name: shown } });
      await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, { content: "Hello" });
      const transcript = (await (await send("GET", `/v1/conversations/${conv.id}`, t.key)).json()) as {
        messages: { role: string; author: string | null; content: string }[];
      };
      expect(transcript.messages.filter((m) => m.role !== "user")).toEqual([
        expect.objectContaining({ role: "system", content: `${shown} joined` }),
        expect.objectContaining({ role: "operator", author: shown, content: "Hello" }),
      ]);
      // Nothing the visitor can read carries the full name when the tenant hides it.
      if (display !== "full") expect(JSON.stringify(transcript)).not.toContain("Lindqvist");
    }
  });
});
