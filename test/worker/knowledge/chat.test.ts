import { describe, expect, it } from "vitest";
import type { Reply } from "../../../src/api-types";
import { MOCK_GREETING_REPLY } from "../../../src/chat/providers/mock";
import { DEFAULT_UNKNOWN_ANSWER } from "../../../src/knowledge/retrieve";
import { PLACEHOLDERS } from "../../../src/privacy/redact";
import { chatTenant, completions, sseFrames, upstreamRequests } from "../chat/helpers";
import { eventually } from "../eventually";
import { query, send, sql } from "../helpers";
import { addSource, RETURNS_HTML, SHIPPING, settled } from "./helpers";

type Completion = {
  choices: {
    message: { content: string | null; tool_calls?: { function: { name: string; arguments: string } }[] };
    finish_reason: string;
  }[];
  usage: { total_tokens: number };
  chatedge_sources: { id: string; title: string; url: string | null }[];
};

const SORRY = "Sorry, I can't answer that yet. Please email help@shop.example.";

/** A tenant (on the mock model unless overridden) whose knowledge holds the shipping policy (with a link) and the returns FAQ. */
async function shop(overrides: Record<string, unknown> = {}) {
  const t = await chatTenant(overrides);
  const shipping = await addSource(t.key, {
    type: "markdown",
    title: "Shipping policy",
    content: SHIPPING,
    url: "https://shop.example/shipping",
  });
  const returns = await addSource(t.key, { type: "html", title: "Returns FAQ", content: RETURNS_HTML });
  await settled(t.key, shipping.id);
  await settled(t.key, returns.id);
  return { ...t, shipping, returns };
}

async function converse(key: string, content: string): Promise<Reply> {
  const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
  const res = await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content });
  expect(res.status).toBe(200);
  return (await res.json()) as Reply;
}

/** Sets the tenant's own "I don't know" sentence. */
async function saySorry(key: string) {
  const res = await send("PATCH", "/v1/knowledge/settings", key, { unknown_answer_message: SORRY });
  expect(res.status).toBe(200);
}

async function unanswered(key: string) {
  const list = (await (await send("GET", "/v1/knowledge/unanswered", key)).json()) as {
    questions: { question: string; normalized: string; count: number }[];
  };
  return list.questions.map(({ question, normalized, count }) => ({ question, normalized, count }));
}

describe("answers from the tenant's knowledge", () => {
  it("puts the best chunk in the prompt and returns the source the answer cites (conversation API)", async () => {
    const { key, shipping } = await shop();
    const reply = await converse(key, "Is shipping free?");
    // The mock answers with the first reference it was given, citing it.
    expect(reply.message?.content).toBe(
      "Shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies. [S1]",
    );
    expect(reply.sources).toEqual([
      { id: shipping.id, title: "Shipping policy", url: "https://shop.example/shipping" },
    ]);
    expect(reply.usage.input_tokens).toBeGreaterThan(60);
  });

  it("streams the sources in the done frame", async () => {
    const { key, returns } = await shop();
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const res = await send("POST", `/v1/conversations/${conv.id}/messages`, key, {
      content: "how do I get a refund",
      stream: true,
    });
    const frames = await sseFrames(res);
    const done = JSON.parse(frames.find((f) => f.event === "done")?.data ?? "{}") as Reply;
    expect(done.sources).toEqual([{ id: returns.id, title: "Returns FAQ", url: null }]);
  });

  it("returns cited sources in chatedge_sources on the OpenAI route, streamed in the final chunk", async () => {
    const { key, returns } = await shop();
    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "Can I return a damaged item?" }],
    });
    const body = (await res.json()) as Completion;
    expect(body.choices[0]?.message.content).toMatch(/\[S1\]$/);
    expect(body.chatedge_sources).toEqual([{ id: returns.id, title: "Returns FAQ", url: null }]);

    const streamed = await sseFrames(
      await completions(key, {
        model: "mock",
        stream: true,
        messages: [{ role: "user", content: "Can I return a damaged item?" }],
      }),
    );
    const chunks = streamed
      .filter((f) => f.data !== "[DONE]")
      .map((f) => JSON.parse(f.data) as Record<string, unknown>);
    const withSources = chunks.filter((c) => "chatedge_sources" in c);
    expect(withSources).toHaveLength(1);
    expect(withSources[0]?.chatedge_sources).toEqual([{ id: returns.id, title: "Returns FAQ", url: null }]);
    expect(chunks.indexOf(withSources[0] as Record<string, unknown>)).toBe(chunks.length - 1);
  });

  it("has the model say the tenant's 'I don't know' to a question nothing matches, and lists the questions grouped", async () => {
    const { id, key } = await shop();
    await saySorry(key);
    const reply = await converse(key, "Do you sell gift cards?");
    expect(reply.message?.content).toBe(SORRY);
    expect(reply.sources).toEqual([]);
    // The model answered it: admitted and charged like any message.
    expect(reply.usage.input_tokens).toBeGreaterThan(0);
    expect(reply.usage.output_tokens).toBeGreaterThan(0);

    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "do you sell GIFT cards?" }],
    });
    const body = (await res.json()) as Completion;
    expect(body.choices[0]?.message.content).toBe(SORRY);
    expect(body.choices[0]?.finish_reason).toBe("stop");
    expect(body.usage.total_tokens).toBeGreaterThan(0);
    expect(body.chatedge_sources).toEqual([]);
    expect(res.headers.get("ratelimit-limit")).not.toBeNull();

    const streamed = await sseFrames(
      await completions(key, {
        model: "mock",
        stream: true,
        messages: [{ role: "user", content: "What's the weather?" }],
      }),
    );
    const text = streamed
      .filter((f) => f.data !== "[DONE]")
      .map((f) => JSON.parse(f.data) as { choices: { delta: { content?: string } }[] })
      .map((c) => c.choices[0]?.delta.content ?? "")
      .join("");
    expect(text).toBe(SORRY);
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const frames = await sseFrames(
      await send("POST", `/v1/conversations/${conv.id}/messages`, key, {
        content: "Is there a loyalty programme?",
        stream: true,
      }),
    );
    expect((JSON.parse(frames.find((f) => f.event === "done")?.data ?? "{}") as Reply).message?.content).toBe(
      SORRY,
    );

    // Stored redacted, like transcripts.
    await converse(key, "Can you mail the catalogue to jane.doe@mail.example?");
    expect(await unanswered(key)).toEqual([
      { question: "do you sell GIFT cards?", normalized: "do you sell gift cards", count: 2 },
      // Then the most recently asked first.
      {
        question: `Can you mail the catalogue to ${PLACEHOLDERS.email}?`,
        normalized: "can you mail the catalogue to email",
        count: 1,
      },
      { question: "Is there a loyalty programme?", normalized: "is there a loyalty programme", count: 1 },
      { question: "What's the weather?", normalized: "what s the weather", count: 1 },
    ]);
    // Recorded as turns the model answered.
    await eventually(async () => {
      const turns = await query<{ outcome: string; called_model: string | null }>(
        sql`select outcome, called_model from turns where tenant_id = ${id}`,
      );
      expect(turns.map((t) => [t.outcome, t.called_model])).toEqual(Array(5).fill(["ok", "mock"]));
    });
  });

  it("answers greetings and small talk normally when nothing matches, listing nothing", async () => {
    const { key } = await shop();
    await saySorry(key);
    expect((await converse(key, "hello")).message?.content).toBe(MOCK_GREETING_REPLY);
    expect((await converse(key, "thanks, have a nice day")).message?.content).toContain(
      "deterministic reply from the mock model",
    );
    const res = await completions(key, { model: "mock", messages: [{ role: "user", content: "Hi there!" }] });
    expect(((await res.json()) as Completion).choices[0]?.message.content).toBe(MOCK_GREETING_REPLY);
    expect(await unanswered(key)).toEqual([]);
  });

  it("lets the model use a tool when nothing matches instead of saying it does not know", async () => {
    const { key, shipping } = await shop({ allowed_tools: ["order_status"] });
    // The shipping policy mentions orders; the returns FAQ left matches nothing of the question.
    expect((await send("DELETE", `/v1/knowledge/sources/${shipping.id}`, key)).status).toBe(200);
    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "where is my order 1234?" }],
      tools: [{ type: "function", function: { name: "order_status", parameters: { type: "object" } } }],
    });
    const choice = ((await res.json()) as Completion).choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    expect(choice?.message.tool_calls?.[0]?.function).toEqual({
      name: "order_status",
      arguments: '{"order_id":"1234"}',
    });
    expect(await unanswered(key)).toEqual([]);
    // A question no tool answers gets the platform's sentence, tools offered or not.
    const other = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "do you sell gift cards?" }],
      tools: [{ type: "function", function: { name: "order_status", parameters: { type: "object" } } }],
    });
    expect(((await other.json()) as Completion).choices[0]?.message.content).toBe(DEFAULT_UNKNOWN_ANSWER);
  });

  it.each(["gpt-4o-mini", "claude-haiku"])(
    "puts the instruction before %s over its wire protocol, which answers the platform's sentence",
    async (model) => {
      const { key } = await shop({ model });
      const question = `Do you ship to the moon ${crypto.randomUUID()}?`;
      const res = await completions(key, { model, messages: [{ role: "user", content: question }] });
      expect(((await res.json()) as Completion).choices[0]?.message.content).toBe(DEFAULT_UNKNOWN_ANSWER);
      if (model === "gpt-4o-mini") {
        const sent = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes(question));
        const system = ((sent?.body.messages ?? []) as { role: string; content: string }[])[0];
        expect(system?.role).toBe("system");
        expect(system?.content).toContain(
          "No reference in the operator's knowledge base matches this message.",
        );
        expect(system?.content).toContain(`"${DEFAULT_UNKNOWN_ANSWER}"`);
      }
      expect((await unanswered(key)).map((q) => q.question)).toEqual([question]);
    },
  );

  it("refuses a rate-limited visitor's unanswerable question like any message, and lists nothing", async () => {
    const { key } = await shop({ user_rate_limit_per_minute: 2 });
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const say = (content: string) => send("POST", `/v1/conversations/${conv.id}/messages`, key, { content });
    expect((await say("hello")).status).toBe(200);
    expect((await say("Is shipping free?")).status).toBe(200);
    const refused = await say("Do you sell gift cards?");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).not.toBeNull();

    const ask = () =>
      completions(key, {
        model: "mock",
        user: "alice",
        messages: [{ role: "user", content: "Do you sell gift cards?" }],
      });
    expect((await ask()).status).toBe(200);
    expect((await ask()).status).toBe(200);
    const over = await ask();
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
    // Only the two answered questions are listed.
    expect(await unanswered(key)).toEqual([
      { question: "Do you sell gift cards?", normalized: "do you sell gift cards", count: 2 },
    ]);
  });

  it("answers as before when knowledge is off or the tenant has no indexed source", async () => {
    const bare = await chatTenant();
    const plain = await converse(bare.key, "Do you sell gift cards?");
    expect(plain.message?.content).toContain("deterministic reply from the mock model");
    expect(plain.sources).toEqual([]);

    const { key } = await shop();
    await send("PATCH", "/v1/knowledge/settings", key, { enabled: false });
    const off = await converse(key, "Is shipping free?");
    expect(off.message?.content).toContain("deterministic reply from the mock model");
    expect(off.sources).toEqual([]);
  });

  it("stops answering from a deleted source at once", async () => {
    const { key, shipping, returns } = await shop();
    expect((await converse(key, "Is shipping free?")).sources.map((s) => s.id)).toEqual([shipping.id]);
    expect((await send("DELETE", `/v1/knowledge/sources/${shipping.id}`, key)).status).toBe(200);
    // Only the returns FAQ still says "free" (a damaged parcel is replaced for free).
    const after = await converse(key, "Is shipping free?");
    expect(after.sources.map((s) => s.id)).toEqual([returns.id]);
    expect(after.message?.content).toBe(
      "Send us a photo of the damaged parcel and we replace it for free. [S1]",
    );
  });

  it("refuses invalid settings in the envelope", async () => {
    const { key } = await chatTenant();
    for (const body of [
      { min_score: 2 },
      { max_context_tokens: 10 },
      { enabled: "yes" },
      { other: 1 },
      { min_similarity: 1.5 },
    ]) {
      const res = await send("PATCH", "/v1/knowledge/settings", key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect(await (await send("GET", "/v1/knowledge/settings", key)).json()).toEqual({
      enabled: true,
      unknown_answer_message: "",
      min_score: 0.1,
      max_context_tokens: 1500,
      min_similarity: 0.3,
      embedding: { provider: "none", model: null, base_url: null, api_key_set: false },
      embedding_progress: { chunks: 0, embedded: 0 },
    });
  });
});
