// Shared by the estimator (tokens.ts) and the script that trains its tables (local/token-tables.ts).

/**
 * o200k_base's pre-tokenizer: words with their leading space or mark, 1-3 digits, punctuation,
 * spaces. Its source only: a regex with Unicode property classes costs about 3 ms to build, which a
 * cold isolate's first chat request paid while the module loaded though ASCII text never runs it
 * (see below). `piecePattern()` builds it.
 */
const PIECE_SOURCE = String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/** The pre-tokenizer as a global regex, for `matchAll` (the splitter's oracle in tests, the trainer). */
export const piecePattern = (): RegExp => new RegExp(PIECE_SOURCE, "gu");
/** The ASCII punctuation marks, in the order of PUNCT_PAIRS. */
export const PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

// Run by matchAll, the pre-tokenizer (a unicode-property regex) was about half the cost of counting
// in workerd, so pieces of ASCII are split by hand below, decision for decision as the regex makes
// them. Wherever a character outside ASCII could change a decision (it may be a letter of either
// class, a mark, a digit or a space), that piece is left to the regex itself, run from the piece's
// start: the split is the regex's for every text. Every character starts a match of some
// alternative, so the matches tile the text with no gaps, and each piece starts where the one before
// ended. The sticky copy of the regex that does so is built on the first such piece.
let at: RegExp | undefined;

// What the pre-tokenizer tells apart among ASCII characters; END past the text, WIDE outside ASCII.
const END = 0;
const UPPER = 1;
const LOWER = 2;
const DIGIT = 3;
const SPACE = 4; // \s but not \r or \n: may lead a word, as any other mark may
const NEWLINE = 5;
const MARK = 6; // neither letter, digit nor space, control characters included
const WIDE = 7;
const ASCII = Uint8Array.from({ length: 128 }, (_, c) =>
  c >= 65 && c <= 90
    ? UPPER
    : c >= 97 && c <= 122
      ? LOWER
      : c >= 48 && c <= 57
        ? DIGIT
        : c === 10 || c === 13
          ? NEWLINE
          : c === 32 || (c >= 9 && c <= 12)
            ? SPACE
            : MARK,
);
// `len` is the text's length, read once per text: `.length` on strings of many shapes (flat, sliced,
// two-byte...) is a slow megamorphic load. Bounds are checked before each charCodeAt: once it reads
// past the end, V8 stops inlining it.
/** The class of the character at `i`. */
function classAt(text: string, i: number, len: number): number {
  if (i >= len) return END;
  const c = text.charCodeAt(i);
  return c < 128 ? (ASCII[c] ?? MARK) : WIDE;
}
/** The character code at `i`, -1 past the end. */
const codeAt = (text: string, i: number, len: number) => (i < len ? text.charCodeAt(i) : -1);

/** The end of the pre-tokenizer's match at `start`, run as the regex itself. */
function regexEnd(text: string, start: number, len: number): number {
  at ??= new RegExp(PIECE_SOURCE, "uy");
  at.lastIndex = start;
  return at.test(text) ? at.lastIndex : len; // never fails: see above
}

/**
 * The end of the word at `start` (an ASCII letter), contraction included, or -1 if a character
 * outside ASCII ends a run of letters (letters of no case and marks belong to both runs, and the
 * regex backtracks over them). Capitals then small letters make one word ("HTMLParser"); capitals
 * with none after ("DON'T") match the second alternative, to the same end. The contraction's
 * letters are ASCII: what follows the apostrophe needs no check.
 */
function wordEnd(text: string, start: number, len: number): number {
  let i = start;
  let k = classAt(text, i, len);
  while (k === UPPER) k = classAt(text, ++i, len);
  while (k === LOWER) k = classAt(text, ++i, len);
  if (k === WIDE) return -1;
  if (codeAt(text, i, len) !== 39) return i;
  // 's 'd 'm 't 'll 've 're in either case: OR 0x20 folds ASCII capitals and nothing else onto these.
  const a = codeAt(text, i + 1, len) | 0x20;
  if (a === 115 || a === 100 || a === 109 || a === 116) return i + 2;
  const b = codeAt(text, i + 2, len) | 0x20;
  if ((a === 108 && b === 108) || ((a === 118 || a === 114) && b === 101)) return i + 3;
  return i;
}

/** The end of the piece the pre-tokenizer matches at `start`. */
function pieceEnd(text: string, start: number, len: number): number {
  const k = classAt(text, start, len);
  if (k === UPPER || k === LOWER) {
    const end = wordEnd(text, start, len);
    return end < 0 ? regexEnd(text, start, len) : end;
  }
  if (k === DIGIT) {
    // \p{N}{1,3}: a digit outside ASCII may be the second or third
    let i = start + 1;
    while (i < start + 3 && classAt(text, i, len) === DIGIT) i++;
    return i < start + 3 && classAt(text, i, len) === WIDE ? regexEnd(text, start, len) : i;
  }
  if (k === WIDE) return regexEnd(text, start, len);
  const next = classAt(text, start + 1, len);
  if (next === WIDE) return regexEnd(text, start, len); // a letter this leads, or a space, or neither
  if (k !== NEWLINE && (next === UPPER || next === LOWER)) {
    // A word led by this space or mark (\r and \n lead nothing).
    const end = wordEnd(text, start + 1, len);
    return end < 0 ? regexEnd(text, start, len) : end;
  }
  if (k === MARK || (next === MARK && text.charCodeAt(start) === 32)) {
    // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`: marks, led by at most one space (not a tab); the trail is ASCII.
    let i = k === MARK ? start : start + 1;
    let m = MARK;
    while (m === MARK) m = classAt(text, ++i, len);
    if (m === WIDE) return regexEnd(text, start, len);
    let c = codeAt(text, i, len);
    while (c === 10 || c === 13 || c === 47) c = codeAt(text, ++i, len);
    return i;
  }
  // A run of spaces (which may go on outside ASCII: U+00A0, U+2028, U+3000...): through its last
  // newline (`\s*[\r\n]+`), else all of it at the end of the text, else all but its last space,
  // which leads what follows (`\s+(?!\S)`), else its one space (`\s+`).
  let i = start;
  let newline = -1;
  let after = k;
  while (after === SPACE || after === NEWLINE) {
    if (after === NEWLINE) newline = i;
    after = classAt(text, ++i, len);
  }
  if (after === WIDE) return regexEnd(text, start, len);
  if (newline >= 0) return newline + 1;
  return after === END || i - start === 1 ? i : i - 1;
}

/**
 * Calls `fn` with the bounds of each piece of `text` (the piece is `text.slice(start, end)`), in
 * order, exactly as `text.matchAll(piecePattern())` matches them, until `fn` returns true.
 */
export function forEachPiece(text: string, fn: (start: number, end: number) => unknown): void {
  const len = text.length;
  for (let i = 0; i < len; ) {
    const end = pieceEnd(text, i, len);
    if (fn(i, end) === true) return;
    i = end;
  }
}
