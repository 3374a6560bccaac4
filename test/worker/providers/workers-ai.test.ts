import { describe, expect, it } from "vitest";
import { ProviderError } from "../../../src/chat/providers/errors";
import { streamWithRetries } from "../../../src/chat/providers/retry";
import type { ChatRequest } from "../../../src/chat/providers/types";
import { type AiBinding, createWorkersAiProvider } from "../../../src/chat/providers/workers-ai";
import { countTextTokens, estimateRequestTokens } from "../../../src/chat/tokens";
import { drain, fastPolicy, never, textOf } from "./helpers";

interface Script {
  /** The SSE data payloads to stream, in order; "[DONE]" is appended unless `cut`. */
  frames?: unknown[];
  /** What a non-streaming run resolves with. */
  result?: unknown;
  /** Thrown by run() itself, as the binding throws AiError. */
  throws?: string[];
  cut?: boolean;
}

/**
 * A stand-in for `env.AI` that behaves like the real binding: run(model, inputs) resolves with a
 * ReadableStream of `data: {...}` SSE frames ending in `data: [DONE]` when inputs.stream is true,
 * else with the output object. The real binding needs a Cloudflare account, so tests use this.
 */
function fakeAi(script: Script) {
  const calls: Array<{ model: string; inputs: Record<string, unknown>; signal?: AbortSignal }> = [];
  const throws = [...(script.throws ?? [])];
  const ai: AiBinding = {
    async run(model, inputs, options) {
      calls.push({ model, inputs, signal: options?.signal });
      const failure = throws.shift();
      if (failure) throw new Error(failure);
      if (!inputs.stream) return script.result;
      const enc = new TextEncoder();
      const frames = (script.frames ?? []).map((f) => `data: ${JSON.stringify(f)}\n\n`);
      if (!script.cut) frames.push("data: [DONE]\n\n");
      return new ReadableStream<Uint8Array>({
        pull(c) {
          const next = frames.shift();
          if (next) c.enqueue(enc.encode(next));
          else c.close();
        },
      });
    },
  };
  return { ai, calls };
}

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "@cf/meta/llama-3.1-8b-instruct",
  system: "Be brief.",
  messages: [{ role: "user", content }],
  maxTokens: 100,
  ...extra,
});

const USAGE = { prompt_tokens: 21, completion_tokens: 3, total_tokens: 24 };

describe("Workers AI provider (binding stand-in)", () => {
  it("streams response frames and reports the usage Workers AI puts in the last frame", async () => {
    const { ai, calls } = fakeAi({
      frames: [
        { response: "Hello", p: "abcdef" },
        { response: " there", p: "ab" },
        { response: "!", p: "abcdefgh" },
        { response: "", usage: USAGE },
      ],
    });
    const { events } = await drain(createWorkersAiProvider(ai).stream(ask("hi"), { signal: never() }));
    expect(events).toEqual([
      { type: "text", delta: "Hello" },
      { type: "text", delta: " there" },
      { type: "text", delta: "!" },
      { type: "usage", inputTokens: 21, outputTokens: 3, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
    expect(calls[0]?.model).toBe("@cf/meta/llama-3.1-8b-instruct");
    expect(calls[0]?.inputs).toMatchObject({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
      ],
      max_tokens: 100,
      stream: true,
    });
    expect(calls[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it("estimates usage with the tokenizer when the model reports none", async () => {
    const { ai } = fakeAi({ frames: [{ response: "Hello there" }] });
    const req = ask("hi");
    const { events } = await drain(createWorkersAiProvider(ai).stream(req, { signal: never() }));
    expect(events.at(-2)).toEqual({
      type: "usage",
      inputTokens: estimateRequestTokens(req),
      outputTokens: countTextTokens("Hello there"),
      estimated: true,
    });
  });

  it("reads a non-streaming result with tool calls, turning argument objects into JSON text", async () => {
    const { ai } = fakeAi({
      result: { response: null, tool_calls: [{ name: "lookup", arguments: { id: 42 } }], usage: USAGE },
    });
    const tools = [{ name: "lookup", parameters: { type: "object" } }];
    const { events } = await drain(
      createWorkersAiProvider(ai).stream(ask("find 42", { stream: false, tools }), { signal: never() }),
    );
    expect(events).toEqual([
      // Without an id from the model: the engine gives the call a unique one (not call_0 every turn).
      { type: "tool_call", index: 0, id: undefined, name: "lookup", argumentsDelta: '{"id":42}' },
      { type: "usage", inputTokens: 21, outputTokens: 3, estimated: false },
      { type: "done", finishReason: "tool_calls" },
    ]);
  });

  it("reads models that stream OpenAI-shaped chunks", async () => {
    const { ai } = fakeAi({
      frames: [
        { choices: [{ delta: { content: "Hi" }, finish_reason: null }] },
        { choices: [{ delta: {}, finish_reason: "length" }] },
        { choices: [], usage: { prompt_tokens: 9, completion_tokens: 1 } },
      ],
    });
    const { events } = await drain(createWorkersAiProvider(ai).stream(ask("hi"), { signal: never() }));
    expect(events).toEqual([
      { type: "text", delta: "Hi" },
      { type: "usage", inputTokens: 9, outputTokens: 1, estimated: false },
      { type: "done", finishReason: "length" },
    ]);
  });

  it("treats a stream that ends without [DONE] as cut", async () => {
    const { ai } = fakeAi({ frames: [{ response: "Hel" }], cut: true });
    const { events, error } = await drain(createWorkersAiProvider(ai).stream(ask("hi"), { signal: never() }));
    expect(textOf(events)).toBe("Hel");
    expect(error).toMatchObject({ kind: "network", provider: "workers-ai" });
  });

  it("retries capacity errors from the binding, but not invalid input", async () => {
    const transient = fakeAi({
      throws: ["3040: Capacity temporarily exceeded, please try again."],
      frames: [{ response: "ok" }],
    });
    const ok = await drain(
      streamWithRetries(createWorkersAiProvider(transient.ai), ask("hi"), fastPolicy(), never()),
    );
    expect(ok.error).toBeUndefined();
    expect(transient.calls.length).toBe(2);
    expect(ok.events[0]).toMatchObject({
      type: "retry",
      error: {
        retryable: true,
        message: "workers-ai: 3040: Capacity temporarily exceeded, please try again.",
      },
    });

    const invalid = fakeAi({ throws: ["5006: Error: oneOf at '/' not met"] });
    const bad = await drain(
      streamWithRetries(createWorkersAiProvider(invalid.ai), ask("hi"), fastPolicy(), never()),
    );
    expect(bad.error).toBeInstanceOf(ProviderError);
    expect(bad.error).toMatchObject({ retryable: false, kind: "http" });
    expect(invalid.calls.length).toBe(1);
  });
});
