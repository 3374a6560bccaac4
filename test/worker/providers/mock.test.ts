import { describe, expect, it } from "vitest";
import {
  createMockProvider,
  MOCK_GREETING_REPLY,
  mockReply,
  wordPieces,
} from "../../../src/chat/providers/mock";
import type { ChatRequest } from "../../../src/chat/providers/types";
import { drain, never, textOf } from "./helpers";

const mock = createMockProvider();
const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "mock",
  messages: [{ role: "user", content }],
  maxTokens: 200,
  ...extra,
});

describe("mock provider", () => {
  it("greets with a canned reply, streamed word by word, with its usage", async () => {
    const { events } = await drain(mock.stream(ask("Hello!"), { signal: never() }));
    expect(textOf(events)).toBe(MOCK_GREETING_REPLY);
    expect(events.filter((e) => e.type === "text").length).toBe(12);
    expect(events[1]).toEqual({ type: "text", delta: " I'm" });
    // input: 3 priming + 4 framing + 2 ("Hello!"); output: the greeting's 18 tokens by the worker's
    // estimate (src/chat/tokens.ts), which errs high: o200k_base counts 17
    expect(events.slice(-2)).toEqual([
      { type: "usage", inputTokens: 9, outputTokens: 18, estimated: false },
      { type: "done", finishReason: "stop" },
    ]);
  });

  it("echoes a summary of the last user message, deterministically", async () => {
    const req = ask("What are your opening hours on public holidays in the winter season this year?");
    const one = await drain(mock.stream(req, { signal: never() }));
    const two = await drain(mock.stream(req, { signal: never() }));
    expect(textOf(one.events)).toBe(
      'You said 14 words: "What are your opening hours on public holidays in the winter season ...". This is a deterministic reply from the mock model.',
    );
    expect(two.events).toEqual(one.events);
  });

  it("reuses the route's input estimate instead of re-tokenizing", async () => {
    const { events } = await drain(mock.stream(ask("hi", { inputTokens: 1234 }), { signal: never() }));
    expect(events.at(-2)).toMatchObject({ type: "usage", inputTokens: 1234 });
  });

  it("stops at maxTokens with finish reason length", async () => {
    const { events } = await drain(mock.stream(ask("hello", { maxTokens: 3 }), { signal: never() }));
    expect(textOf(events)).toBe("Hello! I'm");
    expect(events.slice(-2)).toEqual([
      { type: "usage", inputTokens: 8, outputTokens: 3, estimated: false },
      { type: "done", finishReason: "length" },
    ]);
  });

  it("calls a tool the visitor names, and answers the tool's result", async () => {
    const tools = [{ name: "track_order", parameters: { type: "object" } }];
    const first = await drain(mock.stream(ask("please track_order 42", { tools }), { signal: never() }));
    expect(first.events).toEqual([
      {
        type: "tool_call",
        index: 0,
        id: "call_mock_1",
        name: "track_order",
        argumentsDelta: '{"query":"please track_order 42"}',
      },
      { type: "usage", inputTokens: expect.any(Number), outputTokens: 11, estimated: false },
      { type: "done", finishReason: "tool_calls" },
    ]);
    expect(
      mockReply(
        ask("", {
          messages: [
            { role: "user", content: "please track_order 42" },
            {
              role: "assistant",
              content: "",
              toolCalls: [{ id: "call_mock_1", name: "track_order", arguments: "{}" }],
            },
            { role: "tool", toolCallId: "call_mock_1", content: "in transit" },
          ],
        }),
      ),
    ).toEqual({ text: "The tool returned: in transit" });
  });

  it("sends one delta when not streaming", async () => {
    const { events } = await drain(mock.stream(ask("hey", { stream: false }), { signal: never() }));
    expect(events[0]).toEqual({ type: "text", delta: MOCK_GREETING_REPLY });
  });

  it("paces words when configured, and stops when aborted", async () => {
    const slow = createMockProvider({ delayMs: 30 });
    const started = Date.now();
    await drain(slow.stream(ask("hi"), { signal: never() }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(11 * 30);

    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const { events, error } = await drain(slow.stream(ask("hi"), { signal: ctl.signal }));
    expect(error).toMatchObject({ kind: "aborted", provider: "mock" });
    expect(events.length).toBeLessThan(12);
  });

  it("splits replies into pieces that rejoin exactly", () => {
    expect(wordPieces("a  b c")).toEqual(["a", " ", " b", " c"]);
    expect(wordPieces(" lead")).toEqual([" lead"]);
    expect(wordPieces("")).toEqual([]);
  });
});
