/**
 * Messages no model answers: a blocked topic, a request for a human, a message in a conversation an
 * operator holds. Each is one request in the user, tenant and global windows like any message (so a
 * tenant's limit bounds what a script writes through them, from any number of addresses), and none
 * spends a token or a budget: a visitor whose budget is spent can still ask for a human.
 */
import { describe, expect, it } from "vitest";
import type { Reply } from "../../../src/api-types";
import { eventually } from "../eventually";
import { consoleSend, operator, visitor, widgetTenant } from "../handoff/helpers";
import { envelope, send } from "../helpers";
import { chatTenant, completions } from "./helpers";

type Usage = {
  month: { tokens_used: number; tokens_reserved: number };
  window: { open_reservations: number };
};

const start = async (key: string) =>
  ((await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string }).id;
const say = (key: string, id: string, content: string) =>
  send("POST", `/v1/conversations/${id}/messages`, key, { content });
const usageOf = async (key: string) => (await (await send("GET", "/v1/usage", key)).json()) as Usage;

describe("messages no model answers", () => {
  it("count in the tenant's window: blocked topics and requests for a human, then the next message is refused", async () => {
    const { key } = await chatTenant({
      rate_limit_per_minute: 4,
      blocked_topics: ["competitor pricing"],
      escalation_email: "team@shop.example",
    });
    const a = await start(key);
    const b = await start(key);
    const first = await say(key, a, "what is the competitor pricing?");
    expect(first.status).toBe(200);
    // It took a place in the window, and says so as any message does.
    expect(first.headers.get("ratelimit-limit")).not.toBeNull();
    expect(first.headers.get("ratelimit-remaining")).not.toBeNull();
    expect((await say(key, a, "and the competitor pricing now?")).status).toBe(200);
    expect((await say(key, b, "hello")).status).toBe(200);
    const human = await say(key, b, "can I talk to a human?");
    expect(human.status).toBe(200);
    expect(((await human.json()) as Reply).escalated).toBe(true);
    // Four in the minute: a fifth is refused, whatever it says, and writes nothing.
    for (const content of ["what is the competitor pricing?", "hello again"]) {
      const over = await say(key, a, content);
      expect(over.status).toBe(429);
      const err = await envelope(over);
      expect(err.code).toBe("RATE_LIMITED");
      expect(err.details).toMatchObject({ level: "tenant" });
    }
    const transcript = (await (await send("GET", `/v1/conversations/${a}`, key)).json()) as {
      messages: { role: string }[];
    };
    expect(transcript.messages).toHaveLength(4);
    // Nothing left reserved once the one priced message's settlement (sent off its response's
    // path) has landed: the three no model answered reserved nothing.
    await eventually(async () => {
      const usage = await usageOf(key);
      expect(usage.window.open_reservations).toBe(0);
      expect(usage.month.tokens_reserved).toBe(0);
    });
  });

  it("count in the user's window on the OpenAI route too: a blocked message is refused past the limit", async () => {
    const { key } = await chatTenant({
      user_rate_limit_per_minute: 2,
      blocked_topics: ["competitor pricing"],
    });
    const ask = (content: string) =>
      completions(key, { model: "mock", user: "ann", messages: [{ role: "user", content }] });
    expect((await ask("what is the competitor pricing?")).status).toBe(200);
    expect((await ask("hello")).status).toBe(200);
    const over = await ask("what is the competitor pricing?");
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
  });

  it("spend no budget: with the month's tokens spent, a visitor is refused the model and still reaches a human", async () => {
    const { key } = await chatTenant({ monthly_token_budget: 5, escalation_email: "team@shop.example" });
    const id = await start(key);
    // The budget cannot hold a message for the model.
    const refused = await say(key, id, "hello");
    expect(refused.status).toBe(429);
    expect((await envelope(refused)).details).toMatchObject({ level: "budget" });
    const human = await say(key, id, "I want to speak to a person");
    expect(human.status).toBe(200);
    expect((await human.json()) as Reply).toMatchObject({ escalated: true, usage: { input_tokens: 0 } });
    expect((await usageOf(key)).month.tokens_used).toBe(0);
  });

  it("count a visitor's messages to an operator who holds the conversation", async () => {
    const t = await widgetTenant({ user_rate_limit_per_minute: 3, blocked_topics: ["competitor pricing"] });
    const anna = await operator(t.id, "owner");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await v.say(conv.id, "hello")).status).toBe(200);
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    expect((await v.say(conv.id, "are you there?")).status).toBe(200);
    // A blocked topic is still refused by the policy while an operator holds it, and counts too.
    const blocked = await v.say(conv.id, "what is the competitor pricing?");
    expect(blocked.status).toBe(200);
    expect((await blocked.json()) as Reply).toMatchObject({ blocked: true, state: "human" });
    const over = await v.say(conv.id, "anyone?");
    expect(over.status).toBe(429);
    expect((await envelope(over)).details).toMatchObject({ level: "user" });
  });
});
