import { describe, expect, it } from "vitest";
import { countTextTokens, estimateTokens, truncateToTokens } from "../../../src/chat/tokens";

describe("token estimates (o200k_base)", () => {
  it("counts text with the real tokenizer", () => {
    expect(countTextTokens("")).toBe(0);
    expect(countTextTokens("hello world")).toBe(2);
    expect(countTextTokens("Say this is a test")).toBe(5);
  });

  it("treats special-token text from visitors as plain text instead of throwing", () => {
    expect(countTextTokens("<|endoftext|>")).toBe(7);
  });

  it("adds OpenAI's per-message framing and reply priming", () => {
    // 3 priming + (4 framing + 5 content): the 12 prompt tokens OpenAI reports for this message.
    expect(estimateTokens([{ role: "user", content: "Say this is a test" }])).toBe(12);
    // The system prompt is one more message: 12 + 4 + 3.
    expect(estimateTokens([{ role: "user", content: "Say this is a test" }], { system: "You help." })).toBe(
      19,
    );
  });

  it("counts tool calls, tool results and tool definitions", () => {
    const base = estimateTokens([{ role: "user", content: "hello world" }]);
    expect(base).toBe(9);
    const withCall = estimateTokens([
      { role: "user", content: "hello world" },
      {
        role: "assistant",
        content: "",
        toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
      },
      { role: "tool", toolCallId: "call_1", content: "hello world" },
    ]);
    // assistant: 4 + 0 + (4 + 2 name + 5 args); tool: 4 + 2 content + 3 id
    expect(withCall).toBe(base + 15 + 9);
    const withTools = estimateTokens([{ role: "user", content: "hello world" }], {
      tools: [{ name: "get_weather", description: "Look up the weather.", parameters: { type: "object" } }],
    });
    // 8 framing + 2 name + 5 description + 5 schema
    expect(withTools).toBe(base + 20);
  });

  it("truncates to a token budget", () => {
    expect(truncateToTokens("hello world", 5)).toEqual({ text: "hello world", tokens: 2, cut: false });
    expect(truncateToTokens("hello world", 1)).toEqual({ text: "hello", tokens: 1, cut: true });
  });
});
