import { describe, expect, it } from "vitest";
import { MOCK_GREETING_REPLY, mockReply } from "../../../src/chat/providers/mock";
import type { ChatRequest, ToolDefinition } from "../../../src/chat/providers/types";
import { countTextTokens } from "../../../src/chat/tokens";
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
    const g: Grounding = { kind: "unknown", context: "", tokens: 0, unknownAnswer: SORRY };
    expect(saysUnknown(`Hmm.  ${SORRY.replace(" ", "\n  ")}`, g)).toBe(true);
    expect(saysUnknown("Sorry, we can't say.", g)).toBe(false);
    expect(saysUnknown(SORRY, { kind: "off" })).toBe(false);
    expect(saysUnknown(SORRY, undefined)).toBe(false);
  });
});

describe("the knowledge block's size", () => {
  const hit = (i: number, content: string, title = `Source ${i}`): Hit => ({
    chunkId: i,
    sourceId: `s${i}`,
    title,
    url: null,
    heading: "Section",
    content,
    tokens: countTextTokens(`Section\n${content}`),
    score: 1 / (i + 1),
  });
  const prose = (n: number) =>
    Array.from({ length: n }, (_, i) => `Orders over ${i} euros ship free; returns take 30 days.`).join(" ");

  it("is at most its head and the budget, references' tags and titles counted", () => {
    const head = contextBlock([], 300).tokens;
    expect(head).toBe(countTextTokens(contextBlock([], 300).context));
    const hits = Array.from({ length: 40 }, (_, i) => hit(i, prose(3), `«${"Ω".repeat(150)}» ${i}`));
    for (const budget of [100, 300, 1_500]) {
      const g = contextBlock(hits, budget);
      expect(g.tokens).toBe(countTextTokens(g.context));
      expect(g.tokens).toBeLessThanOrEqual(head + budget);
      expect(g.hits.length).toBeGreaterThan(0);
      expect(g.sources.length).toBe(g.hits.length);
    }
  });

  it("cuts a first chunk larger than the whole budget to fit, and keeps a chunk that fits whole", () => {
    const big = hit(0, prose(40));
    const g = contextBlock([big], 100);
    expect(g.tokens).toBeLessThanOrEqual(contextBlock([], 100).tokens + 100);
    expect(g.context).toContain("Orders over 0 euros ship free");
    expect(g.context).not.toContain("Orders over 39 euros");
    const small = hit(1, prose(2));
    expect(contextBlock([small], 1_500).context).toContain(small.content);
  });
});
