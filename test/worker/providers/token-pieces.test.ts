import { describe, expect, it } from "vitest";
import { forEachPiece, piecePattern } from "../../../src/chat/token-pieces";
import { countTextTokens, pieceTokens, truncateToTokens } from "../../../src/chat/tokens";
import { prng } from "../prng";
import { TOKEN_CORPUS } from "./token-corpus";

// The hand-written split (forEachPiece) against its oracle, the pre-tokenizer regex itself: the same
// pieces at the same indices for every text, in workerd's own regex engine and Unicode tables.

type Piece = readonly [index: number, piece: string];
const PIECE = piecePattern();
const byRegex = (text: string): Piece[] => Array.from(text.matchAll(PIECE), (m) => [m.index, m[0]] as const);
function byHand(text: string): Piece[] {
  const out: Piece[] = [];
  forEachPiece(text, (start, end) => {
    out.push([start, text.slice(start, end)]);
  });
  return out;
}
// Failures are reported as JSON (the first ten): a lone surrogate in a message breaks the pool's
// WebSocket (invalid UTF-8), which would hide which text failed.
const report = (texts: string[]) => texts.slice(0, 10).map((t) => JSON.stringify(t));
/** The texts the two split differently: none when all is well. */
const misfits = (texts: Iterable<string>) =>
  report(Array.from(texts).filter((t) => JSON.stringify(byHand(t)) !== JSON.stringify(byRegex(t))));

// countTextTokens and truncateToTokens as they were written on the regex, with the same pricing.
const priced = (piece: string) => pieceTokens(piece, 0, piece.length);
function countByRegex(text: string): number {
  let n = 0;
  for (const m of text.matchAll(PIECE)) n += priced(m[0]);
  return n;
}
function truncateByRegex(text: string, max: number) {
  let n = 0;
  for (const m of text.matchAll(PIECE)) {
    const t = priced(m[0]);
    if (n + t > max) return { text: text.slice(0, m.index), tokens: n, cut: true };
    n += t;
  }
  return { text, tokens: n, cut: false };
}
/** The texts whose count or truncation (at a few limits) differ from the regex-based reference. */
const miscounted = (texts: Iterable<string>) =>
  report(
    Array.from(texts).filter(
      (t) =>
        countTextTokens(t) !== countByRegex(t) ||
        [0, 1, 2, 5, 20].some(
          (max) => JSON.stringify(truncateToTokens(t, max)) !== JSON.stringify(truncateByRegex(t, max)),
        ),
    ),
  );

// Every kind of character the regex tells apart: ASCII letters of both cases (the contraction
// letters among them), digits, ASCII spaces and newlines, marks (' and / have roles of their own),
// control characters, and outside ASCII: letters of each case and of none (Lo, Lm, Lt), a combining
// mark, digits and numerals, spaces (\s beyond ASCII), emoji with and without a ZWJ, lone surrogates.
const ALPHABET = [
  ..."aesdmtlvrxAESDMTLVRX",
  ..."0179",
  ..."   \t\r\n\v\f",
  ..."'/.,!?-_\"(){}<>#*`~\\;:@",
  "\0",
  "\x7f",
  ..."éÉßñ", // Ll, Lu
  "\u0301", // a combining mark (M)
  ..."中한ア", // Lo
  "\u01c5", // ǅ, titlecase (Lt)
  "\u02b0", // ʰ, modifier letter (Lm)
  ..."٣Ⅻ²", // Nd, Nl, No
  "\u00a0",
  "\u2028",
  "\u3000",
  "\ufeff",
  "\u00ad", // a format character (Cf)
  "€",
  "😀",
  "👩\u200d💻",
  "\u200d",
  "\ufe0f",
  "\ud800", // lone surrogates
  "\udc00",
];

/** Seeded random texts: each from a random part of the alphabet, in runs short and long. */
function fuzzTexts(count: number, seed: number): string[] {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const texts: string[] = [];
  for (let n = 0; n < count; n++) {
    // A few characters only (dense in spaces, say, or in capitals and apostrophes), or any of them.
    const part = random() < 0.7 ? ALPHABET.filter(() => random() < 0.25) : ALPHABET;
    const chars = part.length > 0 ? part : ALPHABET;
    const length = random() < 0.9 ? 1 + Math.floor(random() * 24) : 24 + Math.floor(random() * 400);
    let text = "";
    while (text.length < length) {
      const run =
        random() < 0.8 ? 1 : random() < 0.8 ? 2 + Math.floor(random() * 4) : 6 + Math.floor(random() * 40);
      text += pick(chars).repeat(run);
    }
    texts.push(text);
  }
  return texts;
}

const FUZZ = fuzzTexts(20_000, 0x70c3a5);

// Each of the regex's decisions, and where its lookahead and backtracking make a difference.
const EDGES = [
  "",
  "a",
  "A",
  "don't",
  "DON'T",
  "Don'T",
  "'ll",
  "I've",
  "I'M",
  "I'd",
  "she'D",
  "we'll",
  "WE'LL",
  "we'Re here",
  "they'rex",
  "it's'",
  "'s's",
  "a'",
  "a'l",
  "a'lL",
  "a'v",
  "rock'n'roll",
  " don't",
  "\tdon't",
  "HTMLParser",
  "getHTTPResponse",
  "ABC",
  "ABCdef GHI",
  "camelCase",
  "hello world",
  "hello  world",
  "hello   world",
  "a \n b",
  "a  \n  b",
  "  \n\n  word",
  "\n\n\n",
  "\r\n",
  "\r\n\r\n",
  "a\r\nb",
  "line \r\n next",
  " \t \n \t x",
  "trailing   ",
  "trailing \n ",
  "   ",
  " ",
  "\t",
  "\tword",
  "\t\tword",
  "  !",
  "\t\t!",
  " !!!\n\n/x",
  "a/b\n/",
  "a/b\n/\r\n//c",
  "path/to/file.ts",
  "https://example.com/a?b=c",
  "...word",
  "(word)",
  "__init__",
  "12345",
  "1234567",
  "a1b22c333d4444",
  " 12",
  "  12",
  "x=1;y=22",
  "3.14159",
  "\0a\x7fb\x01",
  "\va\fb",
  "über",
  "Über straße",
  "naïve café",
  "e\u0301t\u0301e\u0301",
  " \u0301a",
  "A\u0301B",
  "a\u00a0b",
  "a \u00a0 b",
  "\u00a0\u00a0word",
  "a\u2028b",
  " \u2028 x",
  "中文 text",
  "text中文",
  "\n中",
  " 中",
  "!中",
  "ǅemal",
  "aǅ",
  "ʰa",
  "aʰB",
  "٣٣٣٣",
  "1٣2",
  "12٣",
  "123٣",
  "ⅫⅫ",
  "😀😀 ok",
  " 😀",
  "a😀b",
  "👩\u200d💻 dev",
  "\ud800",
  "a\ud800b",
  "\udc00\ud800",
  " \ud800",
  "don\u2019t",
];

describe("forEachPiece splits as the pre-tokenizer regex does", () => {
  it("on the hand-picked edge cases", () => {
    expect(misfits(EDGES)).toEqual([]);
    expect(byHand("don't stop")).toEqual([
      [0, "don't"],
      [5, " stop"],
    ]);
    expect(byHand("  \n\n  word")).toEqual([
      [0, "  \n\n"],
      [4, " "],
      [5, " word"],
    ]);
  });

  it("on the token corpus", () => {
    expect(misfits(TOKEN_CORPUS.map((c) => c.text))).toEqual([]);
  });

  it("on every prefix of some of the corpus's texts", () => {
    const names = ["english chat", "french", "whitespace runs", "emoji", "typescript", "mixed"];
    for (const name of names) {
      const text = TOKEN_CORPUS.find((c) => c.name === name)?.text;
      expect(text, name).toBeDefined();
      const prefixes = Array.from({ length: (text ?? "").length }, (_, i) => (text ?? "").slice(0, i + 1));
      expect(misfits(prefixes), name).toEqual([]);
    }
  });

  it(`on ${FUZZ.length} seeded random texts of every kind of character`, () => {
    expect(misfits(FUZZ)).toEqual([]);
  });

  it("stops when the callback returns true", () => {
    const seen: number[] = [];
    forEachPiece("one two three four", (start) => {
      seen.push(start);
      return seen.length === 2;
    });
    expect(seen).toEqual([0, 3]);
  });
});

describe("countTextTokens and truncateToTokens on the hand-written split", () => {
  it("match the regex-based reference on the corpus and the edge cases", () => {
    expect(miscounted([...TOKEN_CORPUS.map((c) => c.text), ...EDGES])).toEqual([]);
  });

  it("match the regex-based reference on the random texts", () => {
    expect(miscounted(FUZZ)).toEqual([]);
  });
});
