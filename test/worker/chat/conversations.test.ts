import { describe, expect, it } from "vitest";
import type { StartedConversation } from "../../../src/api-types";
import { MAX_CONVERSATION_ENTRIES } from "../../../src/chat/conversation-do";
import type { ChatMessage } from "../../../src/chat/providers/types";
import { estimateTokens } from "../../../src/chat/tokens";
import { eventually } from "../eventually";
import { createKey, envelope, query, send, sql, tampered } from "../helpers";
import { chatTenant, sseFrames, upstreamRequests } from "./helpers";

type Reply = {
  conversation_id: string;
  message: { role: string; content: string };
  state: string;
  escalated: boolean;
  blocked: boolean;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
};

async function start(key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const res = await send("POST", "/v1/conversations", key, body, headers);
  expect(res.status).toBe(201);
  return (await res.json()) as StartedConversation;
}

const say = (key: string, id: string, content: string, headers: Record<string, string> = {}) =>
  send("POST", `/v1/conversations/${id}/messages`, key, { content }, headers);

describe("conversation API", () => {
  it("starts with the tenant's greeting, answers, keeps the transcript, ends and takes feedback", async () => {
    const { key } = await chatTenant({ custom_greeting: "Welcome to the shop!" });
    const conv = await start(key, { user: "alice" });
    expect(conv.id).toMatch(/^conv_[A-Za-z0-9]{24}$/);
    expect(conv).toMatchObject({ greeting: "Welcome to the shop!", state: "open", turns: 0 });

    const first = await say(key, conv.id, "hello");
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-limit")).toBe("30");
    const reply = (await first.json()) as Reply;
    expect(reply).toMatchObject({
      conversation_id: conv.id,
      state: "open",
      escalated: false,
      blocked: false,
    });
    expect(reply.message.content).toContain("mock assistant");
    expect(reply.usage.output_tokens).toBeGreaterThan(0);

    await say(key, conv.id, "where is my parcel");
    const t = await send("GET", `/v1/conversations/${conv.id}`, key);
    const transcript = (await t.json()) as { turns: number; messages: { role: string; content: string }[] };
    expect(transcript.turns).toBe(2);
    expect(transcript.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(transcript.messages[2]?.content).toBe("where is my parcel");

    const ended = await send("POST", `/v1/conversations/${conv.id}/end`, key, { resolved: true });
    expect(ended.status).toBe(200);
    expect(((await ended.json()) as { state: string }).state).toBe("resolved");
    const again = await say(key, conv.id, "one more thing");
    expect(again.status).toBe(409);
    expect((await envelope(again)).code).toBe("CONFLICT");

    const fb = await send("POST", `/v1/conversations/${conv.id}/feedback`, key, {
      csat: 4,
      comment: "quick",
    });
    expect(fb.status).toBe(200);
    expect(((await fb.json()) as { csat: number }).csat).toBe(4);
  });

  it("takes messages up to its length limit, then refuses them (409) and a new conversation goes on", async () => {
    const { key } = await chatTenant({ user_rate_limit_per_minute: 100_000, rate_limit_per_minute: 100_000 });
    const conv = await start(key, { user: "talker" });
    // Each message adds two entries (it and its answer).
    const messages = MAX_CONVERSATION_ENTRIES / 2;
    for (let i = 0; i < messages; i += 10) {
      const sent = await Promise.all(
        Array.from({ length: Math.min(10, messages - i) }, (_, j) => say(key, conv.id, `message ${i + j}`)),
      );
      expect(sent.map((r) => r.status)).toEqual(sent.map(() => 200));
    }
    const over = await say(key, conv.id, "one more");
    expect(over.status).toBe(409);
    expect((await envelope(over)).message).toBe(
      `conversation has reached its ${MAX_CONVERSATION_ENTRIES} messages; start a new one`,
    );
    const transcript = (await (await send("GET", `/v1/conversations/${conv.id}`, key)).json()) as {
      messages: unknown[];
    };
    expect(transcript.messages).toHaveLength(MAX_CONVERSATION_ENTRIES);
    const next = await start(key, { user: "talker" });
    expect((await say(key, next.id, "hello again")).status).toBe(200);
  });

  it("sends the stored history with the next message", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini", system_prompt: "history-test-prompt-7731" });
    const conv = await start(key);
    await say(key, conv.id, "my order number is 5512");
    const res = await say(key, conv.id, "and when does it ship");
    expect(res.status).toBe(200);
    const seen = (await upstreamRequests()).filter((r) =>
      JSON.stringify(r.body).includes("history-test-prompt-7731"),
    );
    const last = seen.at(-1)?.body as { messages: { role: string; content: string }[] };
    expect(last.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(last.messages[1]?.content).toBe("my order number is 5512");
    expect(last.messages[3]?.content).toBe("and when does it ship");
  });

  it("charges the mock what it was sent, not the history budget the reservation holds", async () => {
    // Admission reserves with an upper bound (the history budget, 6,000 tokens, in an isolate that
    // does not know the history) while it loads; the mock reports the input it was given, so the
    // bound used to be charged.
    const system = "You help.";
    const { key } = await chatTenant({ system_prompt: system });
    const conv = await start(key);
    const first = (await (await say(key, conv.id, "where is my order")).json()) as Reply;
    const sent1: ChatMessage[] = [{ role: "user", content: "where is my order" }];
    expect(first.usage.input_tokens).toBe(estimateTokens(sent1, { system }));
    const second = (await (await say(key, conv.id, "and when does it ship")).json()) as Reply;
    const sent2: ChatMessage[] = [
      ...sent1,
      { role: "assistant", content: first.message.content },
      { role: "user", content: "and when does it ship" },
    ];
    expect(second.usage.input_tokens).toBe(estimateTokens(sent2, { system }));
  });

  it("streams the answer as SSE delta events and a done event", async () => {
    const { key } = await chatTenant();
    const conv = await start(key);
    const res = await send("POST", `/v1/conversations/${conv.id}/messages`, key, {
      content: "hello",
      stream: true,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const frames = await sseFrames(res);
    const text = frames
      .filter((f) => f.event === "delta")
      .map((f) => JSON.parse(f.data).text)
      .join("");
    const done = frames.at(-1);
    expect(done?.event).toBe("done");
    const reply = JSON.parse(done?.data ?? "{}") as Reply;
    expect(reply.message.content).toBe(text);
    expect(text).toContain("mock assistant");
  });

  it("answers a blocked topic with the policy message and stays usable", async () => {
    const { key } = await chatTenant({ blocked_topics: ["competitor pricing"] });
    const conv = await start(key);
    const blocked = (await (await say(key, conv.id, "what is the competitor pricing?")).json()) as Reply;
    expect(blocked).toMatchObject({ blocked: true, state: "open" });
    expect(blocked.message.content).toContain("can't help");
    const next = await say(key, conv.id, "hello");
    expect(next.status).toBe(200);
    expect(((await next.json()) as Reply).blocked).toBe(false);
  });

  it("escalates when the visitor asks for a human", async () => {
    const { key } = await chatTenant({ escalation_email: "team@shop.example" });
    const conv = await start(key);
    const res = (await (await say(key, conv.id, "can I talk to a real person please")).json()) as Reply;
    expect(res).toMatchObject({ state: "escalated", escalated: true });
    expect(res.message.content).toContain("member of the team");
    const t = (await (await send("GET", `/v1/conversations/${conv.id}`, key)).json()) as { state: string };
    expect(t.state).toBe("escalated");
  });

  it("escalates after the bot fails twice in a row", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const conv = await start(key);
    const first = (await (await say(key, conv.id, "hi [[fault:500]]")).json()) as Reply;
    expect(first).toMatchObject({ state: "open", escalated: false });
    expect(first.message.content).toContain("could not answer");
    const second = (await (await say(key, conv.id, "hello? [[fault:500]]")).json()) as Reply;
    expect(second).toMatchObject({ state: "escalated", escalated: true });
    expect(second.message.content).toContain("member of the team");
  });

  it("hides conversations from other tenants and other visitors", async () => {
    const a = await chatTenant({ allowed_origins: ["https://a.example"] });
    const b = await chatTenant();
    const conv = await start(a.key);
    for (const [method, path, body] of [
      ["GET", `/v1/conversations/${conv.id}`],
      ["POST", `/v1/conversations/${conv.id}/messages`, { content: "hi" }],
      ["POST", `/v1/conversations/${conv.id}/end`, { resolved: true }],
      ["POST", `/v1/conversations/${conv.id}/feedback`, { csat: 1 }],
    ] as const) {
      const res = await send(method, path, b.key, body);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    const pk = (await createKey(a.id, "publishable")).key;
    const origin = { origin: "https://a.example" };
    // Each visitor's identity is the token the platform issued when it started a conversation.
    const mine = await start(pk, {}, origin);
    const theirs = await start(pk, {}, origin);
    expect(mine.visitor_token).toMatch(/^vt1\./);
    if (!mine.visitor_token || !theirs.visitor_token) throw new Error("no visitor token");
    expect(theirs.visitor_token).not.toBe(mine.visitor_token);
    const me = { ...origin, "x-visitor-token": mine.visitor_token };
    const other = { ...origin, "x-visitor-token": theirs.visitor_token };
    expect((await send("GET", `/v1/conversations/${mine.id}`, pk, undefined, me)).status).toBe(200);
    expect((await send("GET", `/v1/conversations/${mine.id}`, pk, undefined, other)).status).toBe(404);
    expect((await send("POST", `/v1/conversations/${mine.id}/feedback`, pk, { csat: 1 }, other)).status).toBe(
      404,
    );
    expect(
      (await send("POST", `/v1/conversations/${mine.id}/end`, pk, { resolved: false }, other)).status,
    ).toBe(404);
    expect((await send("POST", `/v1/conversations/${mine.id}/end`, pk, { resolved: true }, me)).status).toBe(
      200,
    );
    expect((await send("POST", `/v1/conversations/${mine.id}/feedback`, pk, { csat: 5 }, me)).status).toBe(
      200,
    );
    // Without a token, or with a forged or another tenant's one, a browser is nobody.
    const noToken = await send("GET", `/v1/conversations/${mine.id}`, pk, undefined, origin);
    expect(noToken.status).toBe(401);
    const forged = tampered(mine.visitor_token);
    expect(
      (
        await send("GET", `/v1/conversations/${mine.id}`, pk, undefined, {
          ...origin,
          "x-visitor-token": forged,
        })
      ).status,
    ).toBe(401);
    // A known visitor starting again keeps its identity.
    const again = await start(pk, {}, me);
    expect((await send("GET", `/v1/conversations/${again.id}`, pk, undefined, me)).status).toBe(200);
  });

  it("answers bad input with 4xx in the envelope", async () => {
    const { key } = await chatTenant();
    const conv = await start(key);
    const cases: [string, string, unknown, number][] = [
      ["POST", "/v1/conversations/nope/messages", { content: "hi" }, 400],
      ["POST", `/v1/conversations/conv_${"A".repeat(24)}/messages`, { content: "hi" }, 404],
      ["POST", `/v1/conversations/${conv.id}/messages`, { content: "" }, 400],
      ["POST", `/v1/conversations/${conv.id}/messages`, { content: "   " }, 400],
      ["POST", `/v1/conversations/${conv.id}/messages`, { content: "x".repeat(8_001) }, 400],
      ["POST", `/v1/conversations/${conv.id}/messages`, { text: "hi" }, 400],
      ["POST", `/v1/conversations/${conv.id}/messages`, "{bad json", 400],
      ["POST", `/v1/conversations/${conv.id}/feedback`, { csat: 6 }, 400],
      ["POST", `/v1/conversations/${conv.id}/feedback`, { csat: 2.5 }, 400],
      ["POST", `/v1/conversations/${conv.id}/end`, { resolved: "yes" }, 400],
      ["POST", "/v1/conversations", { channel: "pigeon" }, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await send(method, path, key, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body).slice(0, 40)}`).toBe(status);
      await envelope(res);
    }
    const t = (await (await send("GET", `/v1/conversations/${conv.id}`, key)).json()) as { turns: number };
    expect(t.turns).toBe(0);
  });
});

describe("conversation users", () => {
  it("counts a server's messages against the user the conversation was started for", async () => {
    const { id, key } = await chatTenant({ user_rate_limit_per_minute: 2 });
    const carol = await start(key, { user: "carol" });
    const dave = await start(key, { user: "dave" });
    expect((await say(key, carol.id, "one")).status).toBe(200);
    expect((await say(key, carol.id, "two")).status).toBe(200);
    expect((await say(key, carol.id, "three")).status).toBe(429);
    expect((await say(key, dave.id, "one")).status).toBe(200);
    const users = await eventually(async () => {
      const rows = await query<{ user_id: string }>(
        sql`select distinct user_id from turns where tenant_id = ${id} and conversation_id = ${carol.id}`,
      );
      expect(rows).not.toHaveLength(0);
      return rows.map((r) => r.user_id);
    });
    expect(users).toEqual(["user:carol"]);
  });
});
