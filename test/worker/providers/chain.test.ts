import { describe, expect, it } from "vitest";
import { runChain } from "../../../src/chat/providers/chain";
import { createMockProvider } from "../../../src/chat/providers/mock";
import { type ResolvedModel, resolveChain } from "../../../src/chat/providers/registry";
import type { ChatEvent, ChatRequest, Provider } from "../../../src/chat/providers/types";
import { countTextTokens, estimateRequestTokens } from "../../../src/chat/tokens";
import {
  attempts,
  collect,
  drain,
  fakeEnv,
  fastPolicy,
  never,
  queueFaults,
  textOf,
  uniqueKey,
} from "./helpers";

const req = (content: string): Omit<ChatRequest, "model"> => ({
  system: "Be brief.",
  messages: [{ role: "user", content }],
  maxTokens: 50,
});

/** A mock that counts how often it is called, to prove a fallback did (not) happen. */
function countingMock(): { step: ResolvedModel; calls: () => number } {
  let calls = 0;
  const inner = createMockProvider();
  const provider: Provider = {
    name: "mock",
    stream(r, o) {
      calls += 1;
      return inner.stream(r, o);
    },
  };
  return {
    step: { model: "mock", calledModel: "mock", provider, upstreamModel: "mock", configured: true },
    calls: () => calls,
  };
}

function chainOf(key: string, ...names: string[]) {
  const { chain, unknown } = resolveChain(names, fakeEnv({ OPENAI_API_KEY: key, ANTHROPIC_API_KEY: key }));
  expect(unknown).toEqual([]);
  return chain;
}

const types = (events: ChatEvent[]) => events.map((e) => e.type);

describe("fallback chain", () => {
  it("answers from the first model when it works", async () => {
    const key = uniqueKey();
    const result = await collect(
      runChain(chainOf(key, "gpt-4o-mini", "mock"), req("hi"), { signal: never() }),
    );
    expect(result).toMatchObject({
      text: "Fake openai reply: hi",
      model: "gpt-4o-mini",
      provider: "openai",
      finishReason: "stop",
      usage: { inputTokens: 3, outputTokens: 4, estimated: false },
      retries: 0,
      fallbacks: 0,
    });
  });

  it("moves to the next model after the first one's retries fail before any output", async () => {
    const key = uniqueKey();
    const fallback = countingMock();
    const chain = [...chainOf(key, "gpt-4o-mini"), fallback.step];
    const { events } = await drain(
      runChain(chain, req("hello [[fault:503]]"), { signal: never(), policy: fastPolicy({ maxRetries: 1 }) }),
    );
    expect(types(events)).toEqual(["retry", "fallback", ...Array(15).fill("text"), "usage", "done"]);
    expect(events[1]).toMatchObject({
      type: "fallback",
      from: "gpt-4o-mini",
      to: "mock",
      error: { status: 503 },
    });
    expect(events.at(-1)).toEqual({ type: "done", finishReason: "stop", model: "mock", provider: "mock" });
    expect(await attempts(key)).toBe(2);
    expect(fallback.calls()).toBe(1);
  });

  it("does not fall back once output has started: partial text, estimated usage, then the error", async () => {
    const key = uniqueKey();
    const fallback = countingMock();
    const chain = [...chainOf(key, "gpt-4o-mini"), fallback.step];
    const r = req("a b c d e f g h [[fault:cut]]");
    const { events, error } = await drain(
      runChain(chain, r, { signal: never(), policy: fastPolicy({ maxRetries: 3 }) }),
    );
    expect(error).toBeUndefined();
    const text = textOf(events as Array<{ type: string; delta?: string }>);
    expect(text).toBe("Fake openai reply: a b c");
    expect(events.slice(-2)).toEqual([
      {
        type: "usage",
        inputTokens: estimateRequestTokens(r),
        outputTokens: countTextTokens(text),
        estimated: true,
      },
      {
        type: "error",
        error: expect.objectContaining({ kind: "network" }),
        model: "gpt-4o-mini",
        afterOutput: true,
      },
    ]);
    expect(await attempts(key)).toBe(1);
    expect(fallback.calls()).toBe(0);
  });

  it("falls back at once when retry-after exceeds the cap", async () => {
    const key = uniqueKey("sk-ant");
    await queueFaults(key, ["429:60"]);
    const started = Date.now();
    const result = await collect(
      runChain(chainOf(key, "claude-haiku", "mock"), req("hi"), { signal: never(), policy: fastPolicy() }),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({
      model: "mock",
      fallbacks: 1,
      retries: 0,
      text: expect.stringContaining("Hello!"),
    });
    expect(await attempts(key, "/v1/messages")).toBe(1);
  });

  it("falls back from a hung provider within the timeout bound", async () => {
    const key = uniqueKey();
    const started = Date.now();
    const result = await collect(
      runChain(chainOf(key, "gpt-4o-mini", "mock"), req("hi [[fault:hang]]"), {
        signal: never(),
        policy: fastPolicy({ timeoutMs: 200, maxRetries: 0 }),
      }),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({ model: "mock", fallbacks: 1 });
  });

  it("skips an unconfigured provider without calling anything", async () => {
    const { chain } = resolveChain(["gpt-4o-mini", "mock"], fakeEnv());
    const { events } = await drain(runChain(chain, req("hi"), { signal: never() }));
    expect(events[0]).toMatchObject({
      type: "fallback",
      from: "gpt-4o-mini",
      to: "mock",
      error: { kind: "config", message: "openai is not configured: OPENAI_API_KEY is not set" },
    });
    expect(events.at(-1)).toMatchObject({ type: "done", model: "mock" });
  });

  it("does not fall back on a non-retryable error such as a rejected key", async () => {
    const key = uniqueKey("sk-bad");
    const fallback = countingMock();
    const { events } = await drain(
      runChain([...chainOf(key, "gpt-4o-mini"), fallback.step], req("hi"), { signal: never() }),
    );
    expect(events).toEqual([
      {
        type: "error",
        error: expect.objectContaining({ status: 401 }),
        model: "gpt-4o-mini",
        afterOutput: false,
      },
    ]);
    expect(fallback.calls()).toBe(0);
  });

  it("ends with the last model's error when every model fails", async () => {
    const a = uniqueKey();
    const result = await collect(
      runChain(chainOf(a, "gpt-4o-mini", "claude-sonnet"), req("x [[fault:500]]"), {
        signal: never(),
        policy: fastPolicy({ maxRetries: 0 }),
      }),
    );
    expect(result.error).toMatchObject({ provider: "anthropic", status: 500 });
    expect(result).toMatchObject({ model: "claude-sonnet", fallbacks: 1, text: "" });
    expect(result.usage).toBeUndefined();
  });

  it("stops without fallback when the client aborts", async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const fallback = countingMock();
    const { events } = await drain(
      runChain([...chainOf(uniqueKey(), "gpt-4o-mini"), fallback.step], req("x [[fault:hang]]"), {
        signal: ctl.signal,
      }),
    );
    expect(events).toEqual([
      {
        type: "error",
        error: expect.objectContaining({ kind: "aborted" }),
        model: "gpt-4o-mini",
        afterOutput: false,
      },
    ]);
    expect(fallback.calls()).toBe(0);
  });

  it("makes no upstream call at all for a client that is already gone", async () => {
    const key = uniqueKey();
    const { events } = await drain(
      runChain(chainOf(key, "gpt-4o-mini", "mock"), req("x"), { signal: AbortSignal.abort() }),
    );
    expect(events).toEqual([
      {
        type: "error",
        error: expect.objectContaining({ kind: "aborted" }),
        model: "gpt-4o-mini",
        afterOutput: false,
      },
    ]);
    expect(await attempts(key)).toBe(0);
  });

  it("reports an empty chain as an error event", async () => {
    const { events } = await drain(runChain([], req("x"), { signal: never() }));
    expect(events).toEqual([
      {
        type: "error",
        error: expect.objectContaining({ kind: "config" }),
        model: "none",
        afterOutput: false,
      },
    ]);
  });

  it("collects tool-call deltas into whole calls", async () => {
    const tools = [{ name: "get_weather", parameters: { type: "object" } }];
    const result = await collect(
      runChain(
        chainOf(uniqueKey("sk-ant"), "claude-haiku"),
        { ...req("get_weather Oslo"), tools },
        { signal: never() },
      ),
    );
    expect(result.toolCalls).toEqual([
      {
        id: expect.stringMatching(/^toolu_fake_/),
        name: "get_weather",
        arguments: '{"query":"get_weather Oslo"}',
      },
    ]);
    expect(result.finishReason).toBe("tool_calls");
  });
});
