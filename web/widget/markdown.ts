/**
 * The Markdown a model writes, as a safe subset: paragraphs (every newline a line break, as chats
 * read), **bold**, *italic*, `code`, fenced code, bullet and numbered lists (nested by indent),
 * headings (shown as bold paragraphs: the page's heading outline is not the model's), rules, and
 * links to http(s) and mailto only. Parsing yields a tree of a fixed set of tags whose only
 * attributes are the ones set here; text always stays text (a DOM text node), so no `<` in a model's
 * answer ever becomes markup. Anything else shows as the characters that were written.
 */

export type Tag = "p" | "br" | "strong" | "em" | "code" | "pre" | "ul" | "ol" | "li" | "a" | "hr";
export interface MdElement {
  tag: Tag;
  attrs?: Record<string, string>;
  kids: MdNode[];
}
export type MdNode = MdElement | string;

/** One block of the source and the lines it spans ([start, end) of the parsed lines). */
export interface Block {
  node: MdElement;
  start: number;
  end: number;
}

/** A fence may name a language; any other text after it and the line is not a fence (nothing is dropped). */
const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*[\w+#.-]*[ \t]*$/;
const HEADING = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const ITEM = /^([ \t]*)([-*+]|(\d{1,9})[.)])[ \t]+(.*)$/;
const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);
/** Emphasis inside emphasis deeper than this stays literal, which bounds the work per character. */
const MAX_DEPTH = 4;

const blank = (line: string) => line.trim() === "";
const indentOf = (s: string) => s.replace(/\t/g, "    ").length;
const startsBlock = (line: string) =>
  FENCE.test(line) || HEADING.test(line) || RULE.test(line) || ITEM.test(line);
const el = (tag: Tag, kids: MdNode[] = [], attrs?: Record<string, string>): MdElement =>
  attrs ? { tag, attrs, kids } : { tag, kids };

/** A link target the widget may open: an absolute http(s) or mailto URL, else undefined. */
export function safeHref(raw: string): string | undefined {
  try {
    const url = new URL(raw.trim());
    return SAFE_SCHEMES.has(url.protocol) ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function link(href: string, kids: MdNode[]): MdElement {
  return el("a", kids, { href, rel: "noopener noreferrer nofollow", target: "_blank" });
}

/** Inline Markdown of one block's text. */
export function inline(text: string, depth = 0): MdNode[] {
  const out: MdNode[] = [];
  let plain = "";
  // A delimiter with no closer after position p has none after any later position either: each
  // kind is searched to the end at most once, so unclosed markers cost linear time, not quadratic.
  const unclosed = new Set<string>();
  const flush = () => {
    if (plain) out.push(plain);
    plain = "";
  };
  const closer = (delim: string, from: number): number => {
    if (unclosed.has(delim)) return -1;
    for (let j = text.indexOf(delim, from); j !== -1; j = text.indexOf(delim, j + 1)) {
      // A closer follows text, not a space; no single `*` of a `**` closes a `*`.
      const single = delim.length === 1 && (text[j + 1] === delim || text[j - 1] === delim);
      if (!/\s/.test(text[j - 1] ?? " ") && !single) return j;
    }
    unclosed.add(delim);
    return -1;
  };
  // Where the next "](" is: no link can start past the last one (keeps "[[[[..." linear).
  let linkEnd = -2;
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? "";
    if (c === "\\" && i + 1 < text.length && /[!-/:-@[-`{-~]/.test(text[i + 1] ?? "")) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      flush();
      out.push(el("br"));
      i++;
      continue;
    }
    if (c === "`") {
      const run = /^`+/.exec(text.slice(i))?.[0] ?? "`";
      const end = text.indexOf(run, i + run.length);
      if (end !== -1) {
        flush();
        out.push(el("code", [text.slice(i + run.length, end)]));
        i = end + run.length;
        continue;
      }
      plain += run;
      i += run.length;
      continue;
    }
    if ((c === "*" || c === "_") && depth < MAX_DEPTH) {
      const double = text[i + 1] === c;
      const delim = double ? c + c : c;
      const after = text[i + delim.length] ?? " ";
      // `_` inside a word (snake_case) is not emphasis.
      const opens = !/\s/.test(after) && !(c === "_" && /[A-Za-z0-9]/.test(text[i - 1] ?? " "));
      const end = opens ? closer(delim, i + delim.length + 1) : -1;
      if (end !== -1) {
        flush();
        out.push(el(double ? "strong" : "em", inline(text.slice(i + delim.length, end), depth + 1)));
        i = end + delim.length;
        continue;
      }
      plain += delim;
      i += delim.length;
      continue;
    }
    if (linkEnd !== -1 && linkEnd < i) linkEnd = text.indexOf("](", i);
    if (c === "[" && linkEnd !== -1 && depth < MAX_DEPTH) {
      const m = /^\[([^\]\n]{1,300})\]\(([^()\s]{0,2000}(?:\([^()\s]*\)[^()\s]*)?)\)/.exec(
        text.slice(i, i + 2_400),
      );
      if (m) {
        flush();
        const label = inline(m[1] ?? "", MAX_DEPTH);
        const href = safeHref(m[2] ?? "");
        // A link the widget will not open is its label alone, as text: never an anchor.
        if (href) out.push(link(href, label));
        else out.push(...label);
        i += m[0].length;
        continue;
      }
    }
    if (
      (text.startsWith("http://", i) || text.startsWith("https://", i)) &&
      !/[A-Za-z0-9]/.test(text[i - 1] ?? " ")
    ) {
      const m = /^[^\s<>"]+/.exec(text.slice(i, i + 2_048))?.[0] ?? "";
      const url = m.replace(/[.,;:!?'")\]*_]+$/, "");
      const href = safeHref(url);
      if (href) {
        flush();
        out.push(link(href, [url]));
        i += url.length;
        continue;
      }
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}

interface ListFrame {
  indent: number;
  node: MdElement;
}

/** A list starting at `lines[i]`; answers it and the line after it. */
function list(lines: string[], i: number): { node: MdElement; end: number } {
  const first = ITEM.exec(lines[i] ?? "");
  const ordered = first?.[3] !== undefined;
  const make = (m: RegExpExecArray) => {
    const n = Number(m[3] ?? "1");
    return el(
      m[3] !== undefined ? "ol" : "ul",
      [],
      m[3] !== undefined && n !== 1 ? { start: String(n) } : undefined,
    );
  };
  const root: ListFrame = { indent: indentOf(first?.[1] ?? ""), node: first ? make(first) : el("ul") };
  const stack = [root];
  // Each item's text is gathered first and parsed as inline Markdown once it is complete.
  const texts = new Map<MdElement, string>();
  let last: MdElement | undefined;
  let end = i;
  for (let j = i; j < lines.length; j++) {
    const line = lines[j] ?? "";
    if (blank(line)) continue;
    const m = ITEM.exec(line);
    if (m && !RULE.test(line)) {
      const indent = indentOf(m[1] ?? "");
      if (indent < root.indent || (indent <= root.indent && (m[3] !== undefined) !== ordered)) break;
      let top = stack[stack.length - 1] ?? root;
      while (stack.length > 1 && indent < top.indent) {
        stack.pop();
        top = stack[stack.length - 1] ?? root;
      }
      if (indent >= top.indent + 2 && last) {
        const sub: ListFrame = { indent, node: make(m) };
        last.kids.push(sub.node);
        stack.push(sub);
        top = sub;
      }
      last = el("li");
      texts.set(last, m[4] ?? "");
      top.node.kids.push(last);
      end = j + 1;
    } else if (last && /^[ \t]/.test(line) && !FENCE.test(line)) {
      texts.set(last, `${texts.get(last) ?? ""}\n${line.trim()}`);
      end = j + 1;
    } else break;
  }
  for (const [li, text] of texts) li.kids.unshift(...inline(text));
  return { node: root.node, end };
}

/** The blocks of `lines` (a text split at "\n"), in order. */
export function blocks(lines: string[]): Block[] {
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    const start = i;
    if (blank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const mark = fence[1] ?? "```";
      const close = new RegExp(`^ {0,3}${mark[0] === "`" ? "`" : "~"}{${mark.length},}[ \\t]*$`);
      const body: string[] = [];
      for (i++; i < lines.length && !close.test(lines[i] ?? ""); i++) body.push(lines[i] ?? "");
      i++;
      out.push({ node: el("pre", [el("code", [body.join("\n")])]), start, end: Math.min(i, lines.length) });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      out.push({ node: el("p", [el("strong", inline(heading[1] ?? ""))]), start, end: ++i });
      continue;
    }
    if (RULE.test(line)) {
      out.push({ node: el("hr"), start, end: ++i });
      continue;
    }
    if (ITEM.test(line)) {
      const l = list(lines, i);
      out.push({ node: l.node, start, end: l.end });
      i = l.end;
      continue;
    }
    const para = [line];
    for (i++; i < lines.length && !blank(lines[i] ?? "") && !startsBlock(lines[i] ?? ""); i++)
      para.push(lines[i] ?? "");
    out.push({ node: el("p", inline(para.join("\n").trim())), start, end: i });
  }
  return out;
}

/** The whole text as a tree. */
export function parse(text: string): MdElement[] {
  return blocks(text.replace(/\r\n?/g, "\n").split("\n")).map((b) => b.node);
}

/** Builds DOM nodes from the tree: elements by name, text as text nodes, only the tree's attributes. */
export function toDom(node: MdNode): Node {
  if (typeof node === "string") return document.createTextNode(node);
  const e = document.createElement(node.tag);
  for (const [k, v] of Object.entries(node.attrs ?? {})) e.setAttribute(k, v);
  for (const k of node.kids) e.append(toDom(k));
  return e;
}

/** What one update of a streaming message brings: blocks drawn for good, and those still open. */
export interface Update {
  /** The text changed other than by growing: everything drawn so far goes. */
  reset: boolean;
  final: MdElement[];
  open: MdElement[];
}

/**
 * A message parsed while it streams. Blocks that can no longer change are handed out once as
 * `final`; each update re-parses only the text from the first block still open (a paragraph that
 * may go on, an unclosed fence or list), so a chunk costs the length of that block, not of the
 * whole answer.
 */
export class MarkdownStream {
  #text = "";
  /** Characters of #text whose blocks are final. */
  #done = 0;

  update(text: string): Update {
    const t = text.replace(/\r\n?/g, "\n");
    const reset = this.#done > 0 && t.slice(0, this.#done) !== this.#text.slice(0, this.#done);
    if (reset) this.#done = 0;
    this.#text = t;
    const lines = t.slice(this.#done).split("\n");
    const bs = blocks(lines);
    // A block is final once the next block has begun on a complete line (the last element of
    // `lines` is the line still being written).
    let keep = 0;
    while (keep + 1 < bs.length && (bs[keep + 1]?.start ?? lines.length) < lines.length - 1) keep++;
    const first = bs[keep];
    if (first && keep > 0) for (let l = 0; l < first.start; l++) this.#done += (lines[l] ?? "").length + 1;
    return { reset, final: bs.slice(0, keep).map((b) => b.node), open: bs.slice(keep).map((b) => b.node) };
  }
}

/** A MarkdownStream drawn into `into`: final blocks are appended once, open ones redrawn per update. */
export class MarkdownView {
  readonly #stream = new MarkdownStream();
  #open: Node[] = [];

  constructor(readonly into: HTMLElement) {}

  /** Shows `text`: usually the last text with more at its end; anything else is drawn afresh. */
  show(text: string): void {
    const u = this.#stream.update(text);
    if (u.reset) this.into.replaceChildren();
    for (const n of this.#open) n.parentNode?.removeChild(n);
    for (const b of u.final) this.into.append(toDom(b));
    this.#open = u.open.map(toDom);
    this.into.append(...this.#open);
  }
}
