import { describe, expect, it } from "vitest";
import { MOCK_GREETING_REPLY, mockReply } from "../../../src/chat/providers/mock";
import type { ChatRequest, ToolDefinition } from "../../../src/chat/providers/types";
import { unknownAnswerInstruction, unknownAnswerOf } from "../../../src/knowledge/reference";
import { contextBlock, type Grounding, saysUnknown } from "../../../src/knowledge/retrieve";
import type { Hit } from "../../../src/knowledge/search";

const SORRY = 'Sorry, we can\'t say "yet".\nWrite to help@shop.example.';
const SYSTEM = `You are the shop's assistant.\n\n${unknownAnswerInstruction(SORRY)}`;
const ORDER_TOOL: ToolDefinition = { name: "order_status", parameters: { type: "object" } };

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "mock",
  system: SYSTEM,
  messages: [{ role: "user", content }],
  maxTokens: 200,
  ...extra,
});

describe("the 'I don't know' instruction", () => {
  it("carries the tenant's sentence, quotes and all, on one line", () => {
    expect(unknownAnswerOf(SYSTEM)).toBe('Sorry, we can\'t say "yet". Write to help@shop.example.');
    expect(unknownAnswerOf("You are the shop's assistant.")).toBeUndefined();
    expect(unknownAnswerOf(undefined)).toBeUndefined();
  });

  it("has the mock say the sentence to a question nothing else answers, and only then", () => {
    const sentence = unknownAnswerOf(SYSTEM);
    expect(mockReply(ask("Do you sell gift cards?"))).toEqual({ text: sentence });
    expect(mockReply(ask("Hello!"))).toEqual({ text: MOCK_GREETING_REPLY });
    expect(mockReply(ask("thanks a lot"))).toEqual({
      text: 'You said 3 words: "thanks a lot". This is a deterministic reply from the mock model.',
    });
    expect(mockReply(ask("Do you sell gift cards?", { system: "No instruction." }))).not.toEqual({
      text: sentence,
    });
    // A tool that answers it is called instead.
    expect(mockReply(ask("where is my order #1234?", { tools: [ORDER_TOOL] }))).toEqual({
      toolCall: { id: "call_mock_1", name: "order_status", arguments: '{"order_id":"1234"}' },
    });
    expect(mockReply(ask("can order_status find it?", { tools: [ORDER_TOOL] }))).toEqual({
      toolCall: {
        id: "call_mock_1",
        name: "order_status",
        arguments: '{"query":"can order_status find it?"}',
      },
    });
    // References answer first.
    const hit: Hit = {
      chunkId: 1,
      sourceId: "s1",
      title: "Gift cards",
      url: null,
      heading: "",
      content: "Gift cards come in 20 and 50 euros.",
      tokens: 10,
      score: 0.5,
    };
    const grounded = contextBlock([hit], 1_500, SORRY);
    expect(unknownAnswerOf(grounded.context)).toBe(unknownAnswerOf(SYSTEM));
    expect(mockReply(ask("Do you sell gift cards?", { system: grounded.context }))).toEqual({
      text: "Gift cards come in 20 and 50 euros. [S1]",
    });
  });

  it("counts an answer as unanswered when it contains the sentence, whitespace aside", () => {
    const g: Grounding = { kind: "unknown", context: "", unknownAnswer: SORRY };
    expect(saysUnknown(`Hmm.  ${SORRY.replace(" ", "\n  ")}`, g)).toBe(true);
    expect(saysUnknown("Sorry, we can't say.", g)).toBe(false);
    expect(saysUnknown(SORRY, { kind: "off" })).toBe(false);
    expect(saysUnknown(SORRY, undefined)).toBe(false);
  });
});
