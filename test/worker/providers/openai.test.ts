import { describe, expect, it } from "vitest";
import { ProviderError } from "../../../src/chat/providers/errors";
import { createOpenAiProvider } from "../../../src/chat/providers/openai";
import { resolveModel } from "../../../src/chat/providers/registry";
import { streamWithRetries } from "../../../src/chat/providers/retry";
import type { ChatRequest, RetryEvent, StreamEvent } from "../../../src/chat/providers/types";
import { countTextTokens, estimateRequestTokens } from "../../../src/chat/tokens";
import {
  attempts,
  collect,
  drain,
  FAKE,
  fakeEnv,
  fastPolicy,
  never,
  queueFaults,
  recorded,
  textOf,
  uniqueKey,
} from "./helpers";

const openai = (apiKey: string) =>
  createOpenAiProvider({ name: "openai", baseUrl: `${FAKE}/v1`, apiKey, flavor: "openai" });

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "gpt-4o-mini",
  system: "Be brief.",
  messages: [{ role: "user", content }],
  maxTokens: 50,
  ...extra,
});

describe("OpenAI provider against the fake server", () => {
  it("streams text deltas, then the upstream's usage, then done", async () => {
    const key = uniqueKey();
    const { events, error } = await drain(openai(key).stream(ask("hello there friend"), { signal: never() }));
    expect(error).toBeUndefined();
    expect(events).toEqual([
      { type: "text", delta: "Fake" },
      { type: "text", delta: " openai" },
      { type: "text", delta: " reply:" },
      { type: "text", delta: " hello" },
      { type: "text", delta: " there" },
      { type: "text", delta: " friend" },
      { type: "usage", inputTokens: 5, outputTokens: 6, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
    const [sent] = await recorded(key);
    expect(sent?.body).toMatchObject({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello there friend" },
      ],
      max_completion_tokens: 50,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(sent?.headers.accept).toBe("text/event-stream");
  });

  it("answers non-streaming requests with the same events", async () => {
    const { events } = await drain(
      openai(uniqueKey()).stream(ask("one two", { stream: false }), { signal: never() }),
    );
    expect(events).toEqual([
      { type: "text", delta: "Fake openai reply: one two" },
      { type: "usage", inputTokens: 4, outputTokens: 5, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
  });

  it("reports finish reason length when max tokens cut the reply", async () => {
    const { events } = await drain(
      openai(uniqueKey()).stream(ask("a b c", { maxTokens: 2 }), { signal: never() }),
    );
    expect(textOf(events)).toBe("Fake openai");
    expect(events.at(-1)).toEqual({ type: "done", finishReason: "length" });
  });

  it("passes tools through: tool-call deltas out, tool results back in", async () => {
    const key = uniqueKey();
    const tools = [{ name: "get_weather", description: "Weather", parameters: { type: "object" } }];
    const first = await drain(
      openai(key).stream(ask("get_weather in Paris", { tools }), { signal: never() }),
    );
    const calls = first.events.filter((e) => e.type === "tool_call");
    expect(calls[0]).toEqual({
      type: "tool_call",
      index: 0,
      id: expect.stringMatching(/^call_fake_/),
      name: "get_weather",
      argumentsDelta: "",
    });
    expect(calls.length).toBe(4);
    expect(calls.map((c) => (c as { argumentsDelta: string }).argumentsDelta).join("")).toBe(
      '{"query":"get_weather in Paris"}',
    );
    expect(first.events.at(-1)).toEqual({ type: "done", finishReason: "tool_calls" });

    const id = (calls[0] as { id: string }).id;
    const second = await drain(
      openai(key).stream(
        ask("", {
          tools,
          messages: [
            { role: "user", content: "get_weather in Paris" },
            {
              role: "assistant",
              content: "",
              toolCalls: [{ id, name: "get_weather", arguments: '{"city":"Paris"}' }],
            },
            { role: "tool", toolCallId: id, content: "sunny" },
          ],
        }),
        { signal: never() },
      ),
    );
    expect(textOf(second.events)).toBe("Tool result received: sunny");
    const sent = (await recorded(key))[1]?.body as { messages: unknown[]; tools: unknown[] };
    expect(sent.messages.slice(2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: id, content: "sunny" },
    ]);
    expect(sent.tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather", parameters: { type: "object" } },
      },
    ]);
  });

  it("estimates usage with the tokenizer when the upstream sends none", async () => {
    const req = ask("count me [[nousage]]");
    const { events } = await drain(openai(uniqueKey()).stream(req, { signal: never() }));
    const text = textOf(events);
    expect(text).toBe("Fake openai reply: count me");
    expect(events.at(-2)).toEqual({
      type: "usage",
      inputTokens: estimateRequestTokens(req),
      outputTokens: countTextTokens(text),
      estimated: true,
    });
  });

  it("speaks to an OpenAI-compatible base URL under its configured name, with max_tokens", async () => {
    const key = uniqueKey("gsk");
    const env = fakeEnv({
      OPENAI_COMPAT_PROVIDERS: { fakecompat: { baseUrl: `${FAKE}/v1`, apiKeyVar: "FAKECOMPAT_KEY" } },
      FAKECOMPAT_KEY: key,
    });
    const resolved = resolveModel("fakecompat/llama-3.1-8b-instant", env);
    expect(resolved?.provider.name).toBe("fakecompat");
    const { events } = await drain(
      resolved!.provider.stream(ask("hi", { model: "llama-3.1-8b-instant" }), { signal: never() }),
    );
    expect(textOf(events)).toBe("Fake openai reply: hi");
    const [sent] = await recorded(key);
    expect(sent?.body).toMatchObject({ model: "llama-3.1-8b-instant", max_tokens: 50 });
    expect(sent?.body.max_completion_tokens).toBeUndefined();
  });

  it("fails with a 401 ProviderError that does not repeat the key", async () => {
    const key = uniqueKey("sk-bad");
    const { error } = await drain(openai(key).stream(ask("x"), { signal: never() }));
    expect(error).toBeInstanceOf(ProviderError);
    const e = error as ProviderError;
    expect([e.status, e.kind, e.retryable, e.provider]).toEqual([401, "http", false, "openai"]);
    expect(e.message).not.toContain(key);
    expect(e.message).toBe("openai answered 401: Incorrect API key provided: [redacted].");
  });
});

describe("OpenAI provider faults: timeouts, retries, cut streams", () => {
  const run = (key: string, req: ChatRequest, policy = fastPolicy(), signal = never()) =>
    collect(
      (async function* () {
        for await (const ev of streamWithRetries(openai(key), req, policy, signal)) {
          if (ev.type === "done") yield { ...ev, model: req.model, provider: "openai" };
          else yield ev;
        }
      })(),
    ).catch((e: unknown) => e);

  it("retries a 500 up to maxRetries, then fails with the last error", async () => {
    const key = uniqueKey();
    const events: Array<StreamEvent | RetryEvent> = [];
    const { error } = await drain(
      (async function* () {
        for await (const ev of streamWithRetries(
          openai(key),
          ask("x [[fault:500]]"),
          fastPolicy({ maxRetries: 2 }),
          never(),
        )) {
          events.push(ev);
          yield ev;
        }
      })(),
    );
    expect(await attempts(key)).toBe(3);
    expect(events.map((e) => e.type)).toEqual(["retry", "retry"]);
    expect(events.map((e) => (e.type === "retry" ? e.delayMs : -1))).toEqual([10, 20]);
    expect(error).toMatchObject({ status: 500, retryable: true, kind: "http" });
  });

  it("waits out retry-after on a 429, then succeeds", async () => {
    const key = uniqueKey();
    await queueFaults(key, ["429:1"]);
    const started = Date.now();
    const result = await run(key, ask("after the wait"));
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ text: "Fake openai reply: after the wait", retries: 1 });
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
    expect(await attempts(key)).toBe(2);
  });

  it("honours retry-after-ms, OpenAI's finer header", async () => {
    const key = uniqueKey();
    await queueFaults(key, ["429ms:150"]);
    const started = Date.now();
    await run(key, ask("x"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(await attempts(key)).toBe(2);
  });

  it("does not wait out a retry-after longer than the cap", async () => {
    const key = uniqueKey();
    await queueFaults(key, ["429:30"]);
    const started = Date.now();
    const error = await run(key, ask("x"), fastPolicy({ maxRetryAfterMs: 5_000 }));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ status: 429, retryAfterMs: 30_000, retryable: true });
    expect(await attempts(key)).toBe(1);
  });

  it("times out a server that never answers, within the bound, retrying once", async () => {
    const key = uniqueKey();
    const started = Date.now();
    const error = await run(key, ask("x [[fault:hang]]"), fastPolicy({ timeoutMs: 300, maxRetries: 1 }));
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({
      kind: "timeout",
      retryable: true,
      message: "openai sent nothing for 300 ms",
    });
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(1_500);
    expect(await attempts(key)).toBe(2);
  });

  it("times out a slow first token and succeeds on the retry", async () => {
    const key = uniqueKey();
    await queueFaults(key, ["slow:1500"]);
    const result = await run(key, ask("patience"), fastPolicy({ timeoutMs: 300 }));
    expect(result).toMatchObject({ text: "Fake openai reply: patience", retries: 1 });
    expect(await attempts(key)).toBe(2);
  });

  it("waits for a slow first token that arrives within the timeout", async () => {
    const key = uniqueKey();
    await queueFaults(key, ["slow:200"]);
    const result = await run(key, ask("patience"), fastPolicy({ timeoutMs: 2_000 }));
    expect(result).toMatchObject({ text: "Fake openai reply: patience", retries: 0 });
    expect(await attempts(key)).toBe(1);
  });

  it("surfaces a cut stream as an error after the partial text, and does not retry it", async () => {
    const key = uniqueKey();
    const { events, error } = await drain(
      streamWithRetries(
        openai(key),
        ask("a b c d e f g h [[fault:cut]]"),
        fastPolicy({ maxRetries: 2 }),
        never(),
      ),
    );
    // 15 events (role, 11 words, finish, usage, [DONE]); the first 7 arrive: role + 6 words.
    expect(textOf(events as StreamEvent[])).toBe("Fake openai reply: a b c");
    expect(events.some((e) => e.type === "retry" || e.type === "usage" || e.type === "done")).toBe(false);
    expect(error).toMatchObject({ kind: "network", provider: "openai" });
    expect(await attempts(key)).toBe(1);
  });

  it("stops at once, without retrying, when the caller aborts", async () => {
    const key = uniqueKey();
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error("client went away")), 100);
    const started = Date.now();
    const error = await run(key, ask("x [[fault:hang]]"), fastPolicy({ timeoutMs: 5_000 }), ctl.signal);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ kind: "aborted", retryable: false });
    expect(await attempts(key)).toBe(1);
  });
});
