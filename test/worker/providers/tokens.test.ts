import { countTokens, encode } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, it } from "vitest";
import { countTextTokens, estimateTokens, truncateToTokens } from "../../../src/chat/tokens";
import { TOKEN_CORPUS } from "./token-corpus";

// The worker estimates; gpt-tokenizer (o200k_base, a dev dependency) is the oracle.
const PLAIN = { disallowedSpecial: new Set<string>() };
const exact = (text: string) => countTokens(text, PLAIN);

// The estimator's stated bounds (src/chat/tokens.ts, docs/chat.md), per text of at least
// MIN_TOKENS exact tokens: never under the exact count, at most 40% over it.
const MIN_TOKENS = 8;
const MAX_UNDER = 0;
const MAX_OVER = 0.4;

describe("token estimates against o200k_base", () => {
  it.each(TOKEN_CORPUS.map((c) => [c.name, c.text] as const))(
    "%s: errs high, within bounds",
    (_name, text) => {
      const want = exact(text);
      expect(want).toBeGreaterThanOrEqual(MIN_TOKENS);
      const got = countTextTokens(text);
      expect(got).toBeGreaterThanOrEqual(Math.ceil(want * (1 - MAX_UNDER)));
      expect(got).toBeLessThanOrEqual(Math.floor(want * (1 + MAX_OVER)));
    },
  );

  it("errs high on the corpus as a whole, by about a sixth", () => {
    let want = 0;
    let got = 0;
    for (const { text } of TOKEN_CORPUS) {
      want += exact(text);
      got += countTextTokens(text);
    }
    expect(got / want).toBeGreaterThan(1);
    expect(got / want).toBeLessThan(1.25);
  });

  it("stays above the exact count on every prefix of a long mixed text", () => {
    // Prefixes cut pieces anywhere, including inside words and emoji sequences.
    const text = TOKEN_CORPUS.map((c) => c.text).join("\n\n");
    for (let end = 400; end <= text.length; end += 397) {
      const prefix = text.slice(0, end);
      expect(countTextTokens(prefix), prefix.slice(-40)).toBeGreaterThanOrEqual(exact(prefix));
    }
  });

  it("counts the simplest texts exactly", () => {
    expect(countTextTokens("")).toBe(0);
    expect(countTextTokens("hello world")).toBe(exact("hello world"));
    expect(countTextTokens("Say this is a test")).toBe(exact("Say this is a test"));
    expect(countTextTokens("1234567")).toBe(exact("1234567"));
  });

  it("treats special-token text from visitors as plain text", () => {
    // One special token if it were one; as text it is several (the corpus holds a longer case).
    expect(countTextTokens("<|endoftext|>")).toBeGreaterThanOrEqual(5);
  });
});

describe("message framing", () => {
  it("adds OpenAI's per-message framing and reply priming", () => {
    // 3 priming + (4 framing + 5 content): the 12 prompt tokens OpenAI reports for this message.
    expect(estimateTokens([{ role: "user", content: "Say this is a test" }])).toBe(12);
    // The system prompt is one more message: 12 + 4 + its text.
    expect(estimateTokens([{ role: "user", content: "Say this is a test" }], { system: "You help." })).toBe(
      12 + 4 + countTextTokens("You help."),
    );
  });

  it("counts tool calls, tool results and tool definitions", () => {
    const base = estimateTokens([{ role: "user", content: "hello world" }]);
    expect(base).toBe(9);
    const args = '{"city":"Paris"}';
    const withCall = estimateTokens([
      { role: "user", content: "hello world" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "get_weather", arguments: args }] },
      { role: "tool", toolCallId: "call_1", content: "hello world" },
    ]);
    // assistant: 4 + 0 + (4 + name + args); tool: 4 + 2 content + id
    const t = countTextTokens;
    expect(withCall).toBe(base + 4 + 4 + t("get_weather") + t(args) + 4 + 2 + t("call_1"));
    const description = "Look up the weather.";
    const withTools = estimateTokens([{ role: "user", content: "hello world" }], {
      tools: [{ name: "get_weather", description, parameters: { type: "object" } }],
    });
    expect(withTools).toBe(base + 8 + t("get_weather") + t(description) + t('{"type":"object"}'));
  });
});

describe("truncateToTokens", () => {
  it("keeps what fits and cuts between pieces", () => {
    expect(truncateToTokens("hello world", 5)).toEqual({ text: "hello world", tokens: 2, cut: false });
    expect(truncateToTokens("hello world", 1)).toEqual({ text: "hello", tokens: 1, cut: true });
    expect(truncateToTokens("hello world", 0)).toEqual({ text: "", tokens: 0, cut: true });
  });

  it("never keeps more tokens than asked, by the exact count too", () => {
    const text = TOKEN_CORPUS.map((c) => c.text).join(" ");
    for (const max of [1, 7, 50, 333]) {
      const cut = truncateToTokens(text, max);
      expect(cut.tokens).toBeLessThanOrEqual(max);
      expect(cut.tokens).toBe(countTextTokens(cut.text));
      expect(encode(cut.text, PLAIN).length).toBeLessThanOrEqual(max);
      expect(text.startsWith(cut.text)).toBe(true);
    }
  });
});
