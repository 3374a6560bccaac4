/**
 * Turns a source's content into plain text with Markdown-style headings (`#`, `##`, ...), the one
 * shape the chunker reads. HTML is reduced to its text: the result is only ever searched and shown
 * as text (never as markup), so dropping tags cannot let markup through, and script, style and
 * similar elements are dropped with their content so their code never becomes "knowledge".
 */

/** How a document's content is written. `pdf_text` is text already extracted from a PDF. */
export type DocumentFormat = "markdown" | "text" | "html" | "pdf_text";

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
  ndash: "–",
  mdash: "—",
  hellip: "…",
  rsquo: "’",
  lsquo: "‘",
  rdquo: "”",
  ldquo: "“",
  copy: "©",
  reg: "®",
  euro: "€",
};

/** Decodes the character references text keeps after its tags are gone. */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === "#") {
      const code =
        ref[1] === "x" || ref[1] === "X" ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      // Control characters and surrogates have no business in text: a space instead.
      return code > 31 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
        ? String.fromCodePoint(code)
        : " ";
    }
    return NAMED_ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

/** Elements whose content is never text a reader sees. */
const DROPPED = new Set(["script", "style", "noscript", "template", "svg", "iframe", "object", "head"]);
/** Elements that end a line of text. */
const BLOCK = new Set([
  "p",
  "div",
  "section",
  "article",
  "header",
  "footer",
  "main",
  "aside",
  "nav",
  "li",
  "ul",
  "ol",
  "tr",
  "table",
  "blockquote",
  "pre",
  "br",
  "hr",
  "dd",
  "dt",
  "dl",
  "figure",
  "figcaption",
]);
const TAG_NAME = /\/?([a-z][a-z0-9]*)/iy;
const HEADING_TAG = /^h[1-6]$/;

/** The text of an HTML document, headings kept as `#` lines and blocks as paragraphs. */
export function htmlToText(html: string): string {
  return decodeEntities(textOf(html))
    .split("\n")
    .map((l) => l.replace(/[ \t\f\v\r]+/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/**
 * The first match of the global `re` in `s` at or after a position, for positions that only grow:
 * a match still ahead is answered again without searching, and once none is left none is searched
 * for. So a page full of unclosed comments or tags costs one scan, not one per tag (the regular
 * expressions this replaced took time growing with the square of such a page's length).
 */
function ahead(s: string, re: RegExp): (pos: number) => [start: number, end: number] | undefined {
  let found: [number, number] | undefined = [-1, -1];
  return (pos) => {
    if (found && found[0] < pos) {
      re.lastIndex = pos;
      const m = re.exec(s);
      found = m ? [m.index, m.index + m[0].length] : undefined;
    }
    return found;
  };
}

/**
 * The text of `html`, tags replaced by what they mean for lines, entities not yet decoded. One pass
 * from left to right; every search starts where the last ended.
 */
function textOf(html: string): string {
  const out: string[] = [];
  const tagEnd = ahead(html, />/g);
  const closers = new Map<string, ReturnType<typeof ahead>>();
  const closerOf = (tag: string) => {
    let find = closers.get(tag);
    if (!find) {
      find = ahead(html, new RegExp(`</${tag}\\s*>`, "gi"));
      closers.set(tag, find);
    }
    return find;
  };
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      out.push(html.slice(i));
      break;
    }
    out.push(html.slice(i, lt));
    if (html.startsWith("<!--", lt)) {
      // `<!-->` and `<!--->` are empty comments; one that never closes runs to the end, as a
      // browser reads them.
      const empty = html.startsWith(">", lt + 4) ? lt + 5 : html.startsWith("->", lt + 4) ? lt + 6 : -1;
      if (empty > 0) {
        out.push(" ");
        i = empty;
        continue;
      }
      const end = html.indexOf("-->", lt + 4);
      out.push(" ");
      if (end < 0) break;
      i = end + 3;
      continue;
    }
    const gt = tagEnd(lt);
    // Any other tag, including unclosed or malformed ones, goes; one that never closes takes the rest.
    out.push(" ");
    if (!gt) break;
    i = gt[1];
    TAG_NAME.lastIndex = lt + 1;
    const name = TAG_NAME.exec(html);
    if (!name?.[1]) continue;
    const tag = name[1].toLowerCase();
    if (name[0].startsWith("/")) {
      if (BLOCK.has(tag)) out.push("\n\n");
      continue;
    }
    const heading = HEADING_TAG.test(tag);
    if (heading || DROPPED.has(tag)) {
      const close = closerOf(tag)(i);
      if (close) {
        if (heading) {
          const text = textOf(html.slice(i, close[0])).replace(/\s+/g, " ").trim();
          out.push(text ? `\n\n${"#".repeat(Number(tag[1]))} ${text}\n\n` : "\n\n");
        }
        i = close[1];
        continue;
      }
    }
    if (tag === "li") out.push("\n- ");
    else if (BLOCK.has(tag)) out.push("\n\n");
  }
  return out.join("");
}

/** Normalizes text extracted from a PDF: joins hyphenated line breaks and drops form feeds. */
function pdfText(text: string): string {
  return text
    .replace(/\f/g, "\n\n")
    .replace(/(\w)-\n(\w)/g, "$1$2")
    .replace(/\r\n?/g, "\n");
}

/** The text the chunker reads, from a document of `format`. */
export function extractText(content: string, format: DocumentFormat): string {
  switch (format) {
    case "html":
      return htmlToText(content);
    case "pdf_text":
      return pdfText(content);
    case "markdown":
    case "text":
      return content.replace(/\r\n?/g, "\n");
  }
}

/** Whether `#` lines of the format's text are headings (plain text and PDF text have none). */
export function hasHeadings(format: DocumentFormat): boolean {
  return format === "markdown" || format === "html";
}

/** The document format of a fetched page, from its Content-Type; null when it is not text. */
export function formatOfContentType(contentType: string | null): DocumentFormat | null {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "text/html" || type === "application/xhtml+xml") return "html";
  if (type === "text/markdown" || type === "text/x-markdown") return "markdown";
  if (type === "text/plain" || type === "") return "text";
  return null;
}
