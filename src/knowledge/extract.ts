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
const DROPPED = /<(script|style|noscript|template|svg|iframe|object|head)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;
/** Elements that end a line of text. */
const BLOCK =
  /<\/?(p|div|section|article|header|footer|main|aside|nav|li|ul|ol|tr|table|blockquote|pre|br|hr|dd|dt|dl|figure|figcaption)\b[^>]*>/gi;

/** The text of an HTML document, headings kept as `#` lines and blocks as paragraphs. */
export function htmlToText(html: string): string {
  let s = html.replace(/<!--[\s\S]*?-->/g, " ").replace(DROPPED, " ");
  s = s.replace(/<h([1-6])\b[^>]*>([\s\S]*?)<\/h\1\s*>/gi, (_m, level: string, inner: string) => {
    const text = inner
      .replace(/<[^>]*>/g, " ")
      .replace(/\s+/g, " ")
      .trim();
    return text ? `\n\n${"#".repeat(Number(level))} ${text}\n\n` : "\n\n";
  });
  s = s.replace(/<li\b[^>]*>/gi, "\n- ").replace(BLOCK, "\n\n");
  // Any other tag, including unclosed or malformed ones, goes; what is left is text.
  s = s.replace(/<[^>]*>?/g, " ");
  s = decodeEntities(s);
  return s
    .split("\n")
    .map((l) => l.replace(/[ \t\f\v\r]+/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
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
