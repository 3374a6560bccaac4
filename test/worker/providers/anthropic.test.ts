import { describe, expect, it } from "vitest";
import { anthropicBody, createAnthropicProvider } from "../../../src/chat/providers/anthropic";
import { ProviderError } from "../../../src/chat/providers/errors";
import { streamWithRetries } from "../../../src/chat/providers/retry";
import type { ChatRequest, StreamEvent } from "../../../src/chat/providers/types";
import {
  attempts,
  drain,
  FAKE,
  fastPolicy,
  never,
  queueFaults,
  recorded,
  textOf,
  uniqueKey,
} from "./helpers";

const PATH = "/v1/messages";
const claude = (apiKey: string) => createAnthropicProvider({ baseUrl: FAKE, apiKey });

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "claude-haiku-4-5",
  system: "Be kind.",
  messages: [{ role: "user", content }],
  maxTokens: 64,
  ...extra,
});

describe("Anthropic provider against the fake server", () => {
  it("streams text deltas, then usage from message_start and message_delta, then done", async () => {
    const key = uniqueKey("sk-ant");
    const { events, error } = await drain(claude(key).stream(ask("hello world"), { signal: never() }));
    expect(error).toBeUndefined();
    expect(events).toEqual([
      { type: "text", delta: "Fake" },
      { type: "text", delta: " anthropic" },
      { type: "text", delta: " reply:" },
      { type: "text", delta: " hello" },
      { type: "text", delta: " world" },
      { type: "usage", inputTokens: 4, outputTokens: 5, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
    const [sent] = await recorded(key);
    expect(sent?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(sent?.body).toEqual({
      model: "claude-haiku-4-5",
      max_tokens: 64,
      system: "Be kind.",
      messages: [{ role: "user", content: [{ type: "text", text: "hello world" }] }],
      stream: true,
    });
  });

  it("maps tool_use blocks to tool-call deltas indexed from 0 despite the text block before them", async () => {
    const tools = [{ name: "lookup", description: "Find an order", parameters: { type: "object" } }];
    const { events } = await drain(
      claude(uniqueKey("sk-ant")).stream(ask("lookup order 42", { tools }), { signal: never() }),
    );
    expect(textOf(events)).toBe("Let me use lookup.");
    const calls = events.filter((e) => e.type === "tool_call");
    expect(calls[0]).toEqual({
      type: "tool_call",
      index: 0,
      id: expect.stringMatching(/^toolu_fake_/),
      name: "lookup",
      argumentsDelta: "",
    });
    expect(calls.every((c) => c.type === "tool_call" && c.index === 0)).toBe(true);
    expect(calls.map((c) => (c as { argumentsDelta: string }).argumentsDelta).join("")).toBe(
      '{"query":"lookup order 42"}',
    );
    // 4 text pieces + 3 JSON fragments + the tool_use block itself
    expect(events.slice(-2)).toEqual([
      { type: "usage", inputTokens: 5, outputTokens: 8, estimated: false },
      { type: "done", finishReason: "tool_calls" },
    ]);
  });

  it("sends history as Anthropic expects: system lifted, tool results as user blocks, turns merged", () => {
    const body = anthropicBody({
      model: "claude-haiku-4-5",
      system: "Tenant prompt.",
      maxTokens: 10,
      temperature: 1.5,
      toolChoice: "required",
      messages: [
        { role: "system", content: "Extra rule." },
        { role: "user", content: "find order 42" },
        {
          role: "assistant",
          content: "Looking.",
          toolCalls: [{ id: "toolu_1", name: "lookup", arguments: '{"id":42}' }],
        },
        { role: "tool", toolCallId: "toolu_1", content: "shipped" },
        { role: "user", content: "thanks" },
      ],
    });
    expect(body).toEqual({
      model: "claude-haiku-4-5",
      max_tokens: 10,
      system: "Tenant prompt.\n\nExtra rule.",
      stream: true,
      temperature: 1,
      tool_choice: { type: "any" },
      messages: [
        { role: "user", content: [{ type: "text", text: "find order 42" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Looking." },
            { type: "tool_use", id: "toolu_1", name: "lookup", input: { id: 42 } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "shipped" },
            { type: "text", text: "thanks" },
          ],
        },
      ],
    });
  });

  it("replies to a tool result and reads a non-streaming message", async () => {
    const req = ask("", {
      stream: false,
      messages: [
        { role: "user", content: "lookup 42" },
        { role: "assistant", content: "", toolCalls: [{ id: "toolu_1", name: "lookup", arguments: "{}" }] },
        { role: "tool", toolCallId: "toolu_1", content: "shipped" },
      ],
    });
    const { events } = await drain(claude(uniqueKey("sk-ant")).stream(req, { signal: never() }));
    expect(events).toEqual([
      { type: "text", delta: "Tool result received: shipped" },
      { type: "usage", inputTokens: 5, outputTokens: 4, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
  });

  it("reports max_tokens as finish reason length", async () => {
    const { events } = await drain(
      claude(uniqueKey("sk-ant")).stream(ask("long one", { maxTokens: 3 }), { signal: never() }),
    );
    expect(textOf(events)).toBe("Fake anthropic reply:");
    expect(events.at(-1)).toEqual({ type: "done", finishReason: "length" });
  });

  it("fails with a redacted 401 authentication error", async () => {
    const key = uniqueKey("sk-ant-bad");
    const { error } = await drain(claude(key).stream(ask("x"), { signal: never() }));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ status: 401, retryable: false, provider: "anthropic" });
    expect((error as Error).message).not.toContain(key);
  });

  it("retries a 529 overloaded answer and succeeds", async () => {
    const key = uniqueKey("sk-ant");
    await queueFaults(key, ["529"]);
    const { events, error } = await drain(
      streamWithRetries(claude(key), ask("again"), fastPolicy(), never()),
    );
    expect(error).toBeUndefined();
    expect(events[0]).toMatchObject({ type: "retry", attempt: 1, error: { status: 529 } });
    expect(textOf(events as StreamEvent[])).toBe("Fake anthropic reply: again");
    expect(await attempts(key, PATH)).toBe(2);
  });

  it("surfaces a cut stream after partial text without retrying", async () => {
    const key = uniqueKey("sk-ant");
    const { events, error } = await drain(
      streamWithRetries(
        claude(key),
        ask("a b c d e f [[fault:cut]]"),
        fastPolicy({ maxRetries: 3 }),
        never(),
      ),
    );
    // 15 events (start, block start, ping, 9 deltas, block stop, delta, stop); the first 7 arrive.
    expect(textOf(events as StreamEvent[])).toBe("Fake anthropic reply: a");
    expect(error).toMatchObject({ kind: "network", provider: "anthropic" });
    expect(await attempts(key, PATH)).toBe(1);
  });

  it("times out a hung server per attempt", async () => {
    const key = uniqueKey("sk-ant");
    const started = Date.now();
    const { error } = await drain(
      streamWithRetries(
        claude(key),
        ask("x [[fault:hang]]"),
        fastPolicy({ timeoutMs: 250, maxRetries: 0 }),
        never(),
      ),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ kind: "timeout", message: "anthropic sent nothing for 250 ms" });
    expect(await attempts(key, PATH)).toBe(1);
  });
});
