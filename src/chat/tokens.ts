import type { ChatMessage, ChatRequest, ToolDefinition } from "./providers/types";
import { forEachPiece, PUNCT } from "./token-pieces";
import { EMOJI_SINGLE, HAN_SINGLE, HANGUL_SINGLE, LETTER_PAIRS, PUNCT_PAIRS } from "./token-tables";

// Token counts in the worker are estimates, biased high: o200k_base's 200,000-entry rank table
// would be most of the bundle and most of a cold start, and admission only needs an upper bound
// (settlement uses the provider's reported usage). The estimator splits text the way o200k_base
// does before BPE (its pre-tokenizer regex: a token never spans two pieces), then prices each piece
// from what BPE does inside such pieces, learned from the exact tokenizer (local/token-tables.ts).
// Held against the exact count in test/worker/providers/tokens.test.ts: at most 10% under, at most
// 50% over, per text of 8 tokens or more (docs/chat.md).

// OpenAI's chat format wraps each message as <|im_start|>{role}<|im_sep|>{content}<|im_end|>:
// three framing tokens plus one for the role; every reply is primed with three more.
const PER_MESSAGE = 4;
const REPLY_PRIMING = 3;
// Each tool call and tool definition carries framing (type, name and argument keys) of about this size.
const PER_TOOL_CALL = 4;
const PER_TOOL_DEFINITION = 8;

const LETTER_OR_MARK = /[\p{L}\p{M}]/u;
const SPACE = /\s/u;
// Tuned on test/worker/providers/token-corpus.ts so that the estimate errs high.
const LETTER_CUT = 1.8; // a pair of letters cut with chance p costs 1.8 p tokens (at most 1)
const CAPS_CUT = 2; // words in capitals cut more often than the (lower-case) table says:
const CAPS_MIN = 0.15; // at least this often between two capitals
const PUNCT_CUT = 1.4;
const SPACE_CHANGE = 0.5; // "\n  \n" is two tokens, "\n\n" one
const LEAD_MARK = 0.4; // a mark before a word ("(word", "/path") is often its own token
const CONTRACTION = 0.4; // an apostrophe after letters
const LEAD_LIGHT = 0.2; // but "'est", "_id" are usually one
const LONG_WORD = 16; // from this many letters, a word is priced at one token per 3 letters past 4
const HAN = 0.75; // per single-token Han character (common ones also merge in pairs)
const HANGUL = 0.5;
const KANA = 0.6;
const CJK_RARE = 2.6; // a Han or Hangul character that is not one token is two or three
const CYRILLIC = 0.2; // per letter after the first of a word
const GREEK = 0.45;
const ARABIC_HEBREW = 0.35;
const INDIC = 0.35;
const THAI = 0.35;
const LATIN_ACCENTED = 0.4;
const OTHER_LETTER = 0.6;
const SYMBOL_2_BYTES = 1;
const SYMBOL_3_BYTES = 2;
const EMOJI = 1.1; // per single-token emoji
const ASTRAL = 2.8; // any other 4-byte character

// Decoded on first use and kept for the isolate's life: a few kilobytes of lookup tables.
let decoded:
  | {
      letters: Float64Array;
      marks: Float64Array;
      markIndex: Int8Array;
      han: Uint8Array;
      hangul: Uint8Array;
      emoji: Uint8Array;
    }
  | undefined;
function tables() {
  if (decoded) return decoded;
  const bits = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const chances = (digits: string) => Float64Array.from(digits, (d) => Number.parseInt(d, 36) / 35);
  const markIndex = new Int8Array(128).fill(-1);
  for (let i = 0; i < PUNCT.length; i++) markIndex[PUNCT.charCodeAt(i)] = i;
  decoded = {
    letters: chances(LETTER_PAIRS),
    marks: chances(PUNCT_PAIRS),
    markIndex,
    han: bits(HAN_SINGLE),
    hangul: bits(HANGUL_SINGLE),
    emoji: bits(EMOJI_SINGLE),
  };
  return decoded;
}
const has = (bits: Uint8Array, i: number) => (((bits[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;
const isAsciiSpace = (cp: number) => cp === 32 || (cp >= 9 && cp <= 13);

/** Tokens a run of one repeated mark or space costs: o200k_base has tokens for long runs of some. */
function runTokens(cp: number, n: number): number {
  const ch = String.fromCharCode(cp);
  const per =
    ch === " " ? 32 : "-=*#_./".includes(ch) ? 16 : "\n\t\r!~".includes(ch) ? 8 : ch === "`" ? 2 : 4;
  return Math.ceil(n / per);
}

// Classes of the BMP characters outside ASCII, learned from the regexes on first sight and kept for
// the isolate's life (64 KB, made on the first such character): a Han text asks about the same few
// thousand characters over and over. 1 space, 2 letter or mark, 3 other; 0 not seen yet.
let wide: Uint8Array | undefined;
function wideClass(cp: number): number {
  // Beyond the BMP only spaces matter (the rest is priced as emoji or by size), and it is rare.
  if (cp > 0xffff) return SPACE.test(String.fromCodePoint(cp)) ? 1 : 3;
  wide ??= new Uint8Array(0x10000);
  let k = wide[cp] ?? 0;
  if (k === 0) {
    const ch = String.fromCharCode(cp);
    k = SPACE.test(ch) ? 1 : LETTER_OR_MARK.test(ch) ? 2 : 3;
    wide[cp] = k;
  }
  return k;
}

/** Tokens of one non-ASCII letter (first letters of a word included). */
function letterTokens(cp: number): number {
  if (cp >= 0x4e00 && cp <= 0x9fff) return has(tables().han, cp - 0x4e00) ? HAN : CJK_RARE;
  if (cp >= 0xac00 && cp <= 0xd7a3) return has(tables().hangul, cp - 0xac00) ? HANGUL : CJK_RARE;
  if (cp >= 0x3040 && cp <= 0x30ff) return KANA;
  if ((cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0xf900 && cp <= 0xfaff)) return CJK_RARE;
  if (cp >= 0x0400 && cp <= 0x052f) return CYRILLIC;
  if (cp >= 0x0370 && cp <= 0x03ff) return GREEK;
  if (cp >= 0x0590 && cp <= 0x06ff) return ARABIC_HEBREW;
  if (cp >= 0x0900 && cp <= 0x0dff) return INDIC;
  if (cp >= 0x0e00 && cp <= 0x0e7f) return THAI;
  if ((cp >= 0x00c0 && cp <= 0x024f) || (cp >= 0x1e00 && cp <= 0x1eff)) return LATIN_ACCENTED;
  return OTHER_LETTER;
}

/**
 * Estimated tokens of one pre-tokenizer piece, `text.slice(start, end)` (read in place: no string
 * per piece, nor per character): at least one. Exported for its tests.
 */
export function pieceTokens(text: string, start: number, end: number): number {
  const c0 = text.charCodeAt(start);
  if (c0 >= 48 && c0 <= 57) return 1; // 1-3 digits
  const t = tables();
  let caps = true; // no small ASCII letter in the piece
  for (let i = start; i < end && caps; i++) {
    const c = text.charCodeAt(i);
    caps = c < 97 || c > 122;
  }
  let n = 0;
  let ascii = 0; // ASCII letters and marks: the piece then costs one token before any cut
  let other = 0; // non-ASCII letters: priced one by one, on half a token of base
  let word = 0;
  let prevLetter = -1;
  let prevUpper = false;
  let prevMark = -1;
  let leadMark = false;
  let leadLight = false;
  let run = -1; // the ASCII character repeated, if any
  let runLength = 0;
  let prevSpace = false;
  // By code point, as `for (const ch of piece)` went: a surrogate pair is one character.
  for (let i = start; i < end; ) {
    let cp = text.charCodeAt(i++);
    if (cp >= 0xd800 && cp <= 0xdbff && i < end) {
      const lo = text.charCodeAt(i);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp === run) {
      runLength++;
      continue;
    }
    const afterRun = runLength > 1;
    if (afterRun) n += runTokens(run, runLength) - 1;
    run = -1;
    runLength = 0;
    const wasSpace = prevSpace;
    prevSpace = false;
    const lower = cp >= 97 && cp <= 122;
    const upper = cp >= 65 && cp <= 90;
    if (lower || upper) {
      const l = cp - (lower ? 97 : 65);
      if (prevLetter >= 0) {
        // A cut costs one token; the chance comes from the table, scaled up to err high.
        const p = t.letters[prevLetter * 26 + l] ?? 1;
        n +=
          upper && prevUpper && caps
            ? Math.min(1, Math.max(CAPS_MIN, CAPS_CUT * p))
            : Math.min(1, LETTER_CUT * p);
      } else if (leadMark && word === 0) n += leadLight ? LEAD_LIGHT : LEAD_MARK;
      prevLetter = l;
      prevUpper = upper;
      prevMark = -1;
      ascii++;
      word++;
      continue;
    }
    prevLetter = -1;
    if (cp < 128) {
      const m = t.markIndex[cp] ?? -1;
      if (m >= 0) {
        if (prevMark >= 0)
          n += afterRun ? 1 : Math.min(1, PUNCT_CUT * (t.marks[prevMark * PUNCT.length + m] ?? 1));
        else if (ascii > 0) n += cp === 39 ? CONTRACTION : 1; // "I'm", "don't": often one token
        leadMark = ascii === 0 && other === 0;
        leadLight = leadMark && (cp === 39 || cp === 95); // ' or _
        ascii++;
      } else if (isAsciiSpace(cp)) {
        if (wasSpace) n += SPACE_CHANGE;
        if (cp !== 32) ascii++;
        prevSpace = true;
      }
      prevMark = m;
      run = cp;
      runLength = 1;
      continue;
    }
    prevMark = -1;
    const k = wideClass(cp);
    if (k === 1) continue; // a space
    if (cp > 0xffff)
      n += cp >= 0x1f000 && cp <= 0x1faff && has(tables().emoji, cp - 0x1f000) ? EMOJI : ASTRAL;
    else if (k === 2) {
      n += letterTokens(cp);
      other++;
    } else n += cp === 0x200d || cp === 0xfe0f ? 0.5 : cp < 0x800 ? SYMBOL_2_BYTES : SYMBOL_3_BYTES;
  }
  if (runLength > 1) n += runTokens(run, runLength) - 1;
  if (word >= LONG_WORD) n = Math.max(n, (word - 4) / 3);
  n += ascii > 0 ? 1 : other > 0 ? 0.5 : 0;
  return Math.max(1, Math.round(n));
}

/** Estimated tokens in a piece of text under o200k_base; errs high (see the bounds above). */
export function countTextTokens(text: string): number {
  let n = 0;
  forEachPiece(text, (start, end) => {
    n += pieceTokens(text, start, end);
  });
  return n;
}

/** The longest prefix of a text estimated at no more than `max` tokens, cut between pieces. */
export function truncateToTokens(text: string, max: number): { text: string; tokens: number; cut: boolean } {
  let n = 0;
  let cut = -1;
  forEachPiece(text, (start, end) => {
    const t = pieceTokens(text, start, end);
    if (n + t > max) cut = start;
    else n += t;
    return cut >= 0;
  });
  return cut < 0 ? { text, tokens: n, cut: false } : { text: text.slice(0, cut), tokens: n, cut: true };
}

/** Estimated tokens of one message with its framing, as `estimateTokens` counts it in a list. */
export function messageTokens(m: ChatMessage): number {
  let n = PER_MESSAGE + countTextTokens(m.content);
  if (m.role === "assistant" && m.toolCalls) {
    for (const call of m.toolCalls) {
      n += PER_TOOL_CALL + countTextTokens(call.name) + countTextTokens(call.arguments);
    }
  }
  if (m.role === "tool") n += countTextTokens(m.toolCallId);
  return n;
}

function toolTokens(tools: readonly ToolDefinition[]): number {
  let n = 0;
  for (const t of tools) {
    // Stringified once per request, not per chunk: schemas are small and this is an estimate.
    n += PER_TOOL_DEFINITION + countTextTokens(t.name) + countTextTokens(t.description ?? "");
    n += countTextTokens(JSON.stringify(t.parameters));
  }
  return n;
}

/** Estimated input tokens of a message list, counted the way OpenAI's chat format counts them. */
export function estimateTokens(
  messages: readonly ChatMessage[],
  opts: { system?: string; tools?: readonly ToolDefinition[] } = {},
): number {
  let n = REPLY_PRIMING;
  if (opts.system) n += PER_MESSAGE + countTextTokens(opts.system);
  for (const m of messages) n += messageTokens(m);
  if (opts.tools) n += toolTokens(opts.tools);
  return n;
}

/** Estimated input tokens of a whole request: system prompt, history and tool definitions. */
export function estimateRequestTokens(req: Pick<ChatRequest, "system" | "messages" | "tools">): number {
  return estimateTokens(req.messages, { system: req.system, tools: req.tools });
}
