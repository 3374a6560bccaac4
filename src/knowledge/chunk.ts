/**
 * Splits a document's text into chunks for search: sections never share a chunk (a heading starts
 * a new one), paragraphs stay whole while they fit, and each chunk keeps the path of headings above
 * it, so a chunk about "Refunds" under "Returns" is found by either word. Sizes are counted with the
 * same token estimator as the prompt (src/chat/tokens.ts).
 */
import { countTextTokens } from "../chat/tokens";

/** A chunk aims at this many tokens; paragraphs are added while the chunk stays under it. */
export const TARGET_CHUNK_TOKENS = 300;
/** No chunk is longer: a paragraph over it is cut at sentences, a sentence over it at words. */
export const MAX_CHUNK_TOKENS = 400;

export interface Chunk {
  /** The headings above the chunk, outermost first, joined by " > ". */
  heading: string;
  content: string;
  tokens: number;
}

/** A Markdown heading line: its level and text (a closing run of `#`s is taken off by `headingText`). */
const HEADING = /^(#{1,6})[ \t]+(\S.*)$/;
/** A heading's text is cut to this many characters: every chunk of its section carries it. */
export const MAX_HEADING_CHARS = 200;
/** A Markdown code fence: three or more backticks or tildes at the start of a line. */
const FENCE = /^\s{0,3}(`{3,}|~{3,})/;

/** Cuts a piece of text over MAX_CHUNK_TOKENS at sentence ends, then at words. */
function splitLong(text: string): string[] {
  if (countTextTokens(text) <= MAX_CHUNK_TOKENS) return [text];
  const sentences = text.match(/[^.!?]+(?:[.!?]+|$)\s*/g) ?? [text];
  const out: string[] = [];
  let cur = "";
  const push = () => {
    if (cur.trim()) out.push(cur.trim());
    cur = "";
  };
  for (const s of sentences) {
    if (countTextTokens(cur + s) <= MAX_CHUNK_TOKENS) {
      cur += s;
      continue;
    }
    push();
    if (countTextTokens(s) <= MAX_CHUNK_TOKENS) {
      cur = s;
      continue;
    }
    for (const word of s.split(/\s+/)) {
      if (cur && countTextTokens(`${cur} ${word}`) > MAX_CHUNK_TOKENS) push();
      cur = cur ? `${cur} ${word}` : word;
    }
  }
  push();
  return out;
}

/**
 * A heading line's text: without a closing run of `#`s (one that follows a blank, as CommonMark
 * has it: "C#" keeps its `#`), cut to MAX_HEADING_CHARS. String operations, not a pattern with
 * runs of blanks on both sides of optional `#`s, which took time growing with the cube of a long
 * line of blanks.
 */
function headingText(raw: string): string {
  let text = raw.trimEnd();
  let end = text.length;
  while (end > 0 && text[end - 1] === "#") end--;
  if (end < text.length && (end === 0 || text[end - 1] === " " || text[end - 1] === "\t"))
    text = text.slice(0, end).trimEnd();
  return text.slice(0, MAX_HEADING_CHARS);
}

/** The chunks of `text`; with `headings`, Markdown `#` lines open sections. */
export function chunkText(text: string, headings: boolean): Chunk[] {
  const chunks: Chunk[] = [];
  const path: string[] = [];
  let paragraphs: string[] = [];
  let tokens = 0;
  const flush = () => {
    if (paragraphs.length === 0) return;
    const content = paragraphs.join("\n\n");
    const heading = path.filter(Boolean).join(" > ");
    // The heading goes into the prompt with the content, so it counts in the chunk's tokens.
    const counted = countTextTokens(content) + (heading ? countTextTokens(heading) : 0);
    chunks.push({ heading, content, tokens: counted });
    paragraphs = [];
    tokens = 0;
  };
  const add = (paragraph: string) => {
    for (const piece of splitLong(paragraph)) {
      const n = countTextTokens(piece);
      if (paragraphs.length > 0 && tokens + n > TARGET_CHUNK_TOKENS) flush();
      paragraphs.push(piece);
      tokens += n;
    }
  };
  let block: string[] = [];
  const endBlock = () => {
    const p = block.join("\n").trim();
    block = [];
    if (p) add(p);
  };
  // Inside a fenced code block a `#` line is code (a shell comment), not a heading.
  let fence: string | null = null;
  for (const line of text.split("\n")) {
    const f = headings ? FENCE.exec(line) : null;
    if (f?.[1] && (fence === null || f[1].startsWith(fence))) fence = fence === null ? f[1] : null;
    const h = headings && fence === null ? HEADING.exec(line) : null;
    if (h) {
      endBlock();
      flush();
      const level = (h[1] ?? "#").length;
      path.length = level - 1;
      path[level - 1] = headingText(h[2] ?? "");
    } else if (line.trim() === "") endBlock();
    else block.push(line);
  }
  endBlock();
  flush();
  return chunks;
}
