import { describe, expect, it } from "vitest";
import { MOCK_GREETING_REPLY } from "../../../src/chat/providers/mock";
import { send, uniqueId } from "../helpers";
import { chatTenant, completions, sseFrames, upstreamRequests } from "./helpers";

type Completion = {
  id: string;
  object: string;
  model: string;
  choices: {
    message: { role: string; content: string | null; tool_calls?: unknown[] };
    finish_reason: string;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
};

describe("POST /v1/chat/completions", () => {
  it("answers a chat.completion from the mock with usage and rate-limit headers", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, { model: "mock", messages: [{ role: "user", content: "hello" }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Completion;
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0]?.message).toMatchObject({ role: "assistant", content: MOCK_GREETING_REPLY });
    expect(body.choices[0]?.finish_reason).toBe("stop");
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(res.headers.get("ratelimit-limit")).toBe("30");
    expect(res.headers.get("ratelimit-remaining")).toBe("29");
  });

  it("streams chat.completion.chunk frames ending in [DONE], with usage when asked", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, {
      model: "mock",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hello" }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const frames = await sseFrames(res);
    expect(frames.at(-1)?.data).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.data));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe(MOCK_GREETING_REPLY);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === "stop")).toHaveLength(1);
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBeGreaterThan(0);
    // As OpenAI streams it: every chunk before the final one says `usage: null`.
    expect(chunks.slice(0, -1).every((c) => "usage" in c && c.usage === null)).toBe(true);
  });

  it("leaves usage out of the chunks when include_usage is not set", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, {
      model: "mock",
      stream: true,
      messages: [{ role: "user", content: "hello" }],
    });
    const chunks = (await sseFrames(res)).filter((f) => f.data !== "[DONE]").map((f) => JSON.parse(f.data));
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.some((c) => "usage" in c)).toBe(false);
  });

  it("applies the tenant's system prompt and clamps max_tokens to the tenant's limit", async () => {
    const prompt = `You are the agent of ${uniqueId("shop")}.`;
    const { key } = await chatTenant({
      model: "gpt-4o-mini",
      system_prompt: prompt,
      max_tokens_per_response: 64,
    });
    const res = await completions(key, {
      model: "gpt-4o-mini",
      max_tokens: 5000,
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "where is my order" },
      ],
    });
    expect(res.status).toBe(200);
    const seen = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes(prompt));
    expect(seen).toBeDefined();
    const body = seen?.body as {
      max_tokens?: number;
      max_completion_tokens?: number;
      messages: { role: string; content: string }[];
    };
    expect(body.max_completion_tokens ?? body.max_tokens).toBe(64);
    expect(body.messages[0]).toEqual({ role: "system", content: `${prompt}\n\nAnswer in French.` });
  });

  it("refuses tools the tenant does not allow, and passes allowed ones to the model", async () => {
    const { key } = await chatTenant({ allowed_tools: ["lookup_order"] });
    const tool = (name: string) => ({
      type: "function",
      function: { name, parameters: { type: "object", properties: {} } },
    });
    const refused = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "hi" }],
      tools: [tool("delete_account")],
    });
    expect(refused.status).toBe(400);
    const err = (await refused.json()) as { error: { message: string; type: string } };
    expect(err.error.type).toBe("invalid_request_error");
    expect(err.error.message).toContain("delete_account");
    const ok = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "please lookup_order 42" }],
      tools: [tool("lookup_order")],
    });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as Completion;
    expect(body.choices[0]?.finish_reason).toBe("tool_calls");
    expect(body.choices[0]?.message.tool_calls).toHaveLength(1);
  });

  it("answers a blocked topic on the input with the policy message, without calling a model", async () => {
    const { key } = await chatTenant({ blocked_topics: ["medical advice"] });
    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "I need MEDICAL   advice now" }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Completion;
    expect(body.choices[0]?.finish_reason).toBe("content_filter");
    expect(body.choices[0]?.message.content).toContain("can't help");
    expect(body.usage.total_tokens).toBe(0);
    // No model, no tokens; still one request in the rate windows (docs/admission.md).
    expect(res.headers.get("ratelimit-limit")).toBe("30");
  });

  it("streams a blocked topic's answer with usage: null, then zero usage, when include_usage is set", async () => {
    const { key } = await chatTenant({ blocked_topics: ["medical advice"] });
    const res = await completions(key, {
      model: "mock",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "medical advice please" }],
    });
    const chunks = (await sseFrames(res)).filter((f) => f.data !== "[DONE]").map((f) => JSON.parse(f.data));
    expect(chunks.slice(0, -1).map((c) => c.usage)).toEqual([null, null]);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  });

  it("answers with the tenant's own policy message when it has one", async () => {
    const { key } = await chatTenant({
      blocked_topics: ["refund hacks"],
      policy_message: "Please ask our team about that.",
    });
    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "any refund hacks?" }],
    });
    const body = (await res.json()) as Completion;
    expect(body.choices[0]?.message.content).toBe("Please ask our team about that.");
  });

  it("stops output that reaches a blocked topic before it is shown", async () => {
    // The fake answers "Fake openai reply: ..."; blocking that phrase only ever hits the output.
    const { key } = await chatTenant({ model: "gpt-4o-mini", blocked_topics: ["openai reply"] });
    const res = await completions(key, {
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: "hello there" }],
    });
    const frames = await sseFrames(res);
    const chunks = frames.filter((f) => f.data !== "[DONE]").map((f) => JSON.parse(f.data));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(text.toLowerCase()).not.toContain("openai reply");
    expect(text).toContain("can't help");
    expect(chunks.some((c) => c.choices[0]?.finish_reason === "content_filter")).toBe(true);
  });

  it("falls back to the tenant's fallback model when the main one keeps failing", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini", fallback_model: "mock" });
    const res = await completions(key, {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi [[fault:500]]" }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Completion;
    expect(body.choices[0]?.message.content).toContain("mock model");
  });

  it("answers 502 in OpenAI's shape when every model fails", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const res = await completions(key, {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi [[fault:500]]" }],
    });
    expect(res.status).toBe(502);
    const err = (await res.json()) as { error: { message: string; type: string; code: string | null } };
    // OpenAI's own server errors carry no code: the type and status say it.
    expect(err.error).toMatchObject({ type: "server_error", code: null, param: null });
    expect(err.error.message).not.toContain("sk-worker-test");
  });

  it("refuses the message over the user limit with 429, level user, and Retry-After", async () => {
    const { key } = await chatTenant({ user_rate_limit_per_minute: 2 });
    const ask = () =>
      completions(key, { model: "mock", user: "alice", messages: [{ role: "user", content: "hi" }] });
    expect((await ask()).status).toBe(200);
    expect((await ask()).status).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    const err = (await refused.json()) as { error: { type: string; code: string; param: string | null } };
    // Which limit refused: OpenAI's code for a rate limit, the level as its param.
    expect(err.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded", param: "user" });
    const other = await completions(key, {
      model: "mock",
      user: "bob",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(other.status).toBe(200);
  });

  it("sends OpenAI's x-ratelimit-*-requests headers beside the RateLimit fields, answered or refused, streamed or not", async () => {
    const { key } = await chatTenant({ user_rate_limit_per_minute: 2 });
    const ask = (stream = false) =>
      completions(key, { model: "mock", user: "carol", stream, messages: [{ role: "user", content: "hi" }] });
    const first = await ask();
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    expect(first.headers.get("x-ratelimit-reset-requests")).toBe(`${first.headers.get("ratelimit-reset")}s`);
    const streamed = await ask(true);
    expect(streamed.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    await streamed.text();
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(refused.headers.get("x-ratelimit-reset-requests")).toMatch(/^[1-9]\d*s$/);
    // The conversation API keeps to the RateLimit fields.
    const conv = await send("POST", "/v1/conversations", key, { user: "dave" });
    expect(conv.headers.get("x-ratelimit-limit-requests")).toBeNull();
  });

  it("names the budget that refused a 429: insufficient_quota with the budget as param", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ monthly_token_budget: 10 }, "monthly_tokens"],
      [{ daily_cost_budget_usd: 0.000001 }, "daily_cost"],
      [{ conversation_cost_cap_usd: 0.000001 }, "conversation_cost"],
    ];
    for (const [limits, budget] of cases) {
      const { key } = await chatTenant(limits);
      const res = await completions(key, { model: "mock", messages: [{ role: "user", content: "hi" }] });
      expect(res.status, budget).toBe(429);
      const err = (await res.json()) as { error: Record<string, unknown> };
      expect(err.error, budget).toMatchObject({
        type: "rate_limit_error",
        code: "insufficient_quota",
        param: budget,
      });
      expect(String(err.error.message), budget).not.toBe("");
    }
  });

  describe("bad input answers 4xx in OpenAI's error shape", () => {
    const cases: [string, unknown, number][] = [
      ["malformed JSON", "{nope", 400],
      ["no messages", { model: "mock", messages: [] }, 400],
      ["a wrong role", { model: "mock", messages: [{ role: "wizard", content: "hi" }] }, 400],
      ["a non-string content", { model: "mock", messages: [{ role: "user", content: 42 }] }, 400],
      ["no user message", { model: "mock", messages: [{ role: "system", content: "x" }] }, 400],
      ["an unknown model", { model: "no-such-model", messages: [{ role: "user", content: "hi" }] }, 400],
      ["n > 1", { model: "mock", n: 3, messages: [{ role: "user", content: "hi" }] }, 400],
      ["an oversize body", { model: "mock", messages: [{ role: "user", content: "x".repeat(70_000) }] }, 413],
    ];
    for (const [what, body, status] of cases) {
      it(what, async () => {
        const { key } = await chatTenant();
        const res = await completions(key, body);
        expect(res.status).toBe(status);
        const err = (await res.json()) as { error: { message: string } };
        expect(typeof err.error.message).toBe("string");
      });
    }

    it("a missing or wrong key is 401 with an OpenAI-shaped error", async () => {
      const res = await send(
        "POST",
        "/v1/chat/completions",
        "sk_wrongwrongwrongwrongwrongwrongwrongwrongwron",
        {
          model: "mock",
          messages: [{ role: "user", content: "hi" }],
        },
      );
      expect(res.status).toBe(401);
      const err = (await res.json()) as { error: { type: string } };
      expect(err.error.type).toBe("authentication_error");
    });
  });
});
