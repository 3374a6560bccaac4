import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MarkdownStream, type MdElement, type MdNode, parse, safeHref } from "../../web/widget/markdown";

const TAGS = new Set(["p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "hr"]);

/** Every element and attribute in the tree, for the safety properties. */
function* walk(nodes: MdNode[]): Generator<MdElement> {
  for (const n of nodes) {
    if (typeof n === "string") continue;
    yield n;
    yield* walk(n.kids);
  }
}
const textOf = (nodes: MdNode[]): string =>
  nodes.map((n) => (typeof n === "string" ? n : textOf(n.kids))).join("");

/** A compact, readable form of the tree: what the examples compare. */
function show(nodes: MdNode[]): string {
  return nodes
    .map((n) => {
      if (typeof n === "string") return n;
      const attrs = Object.entries(n.attrs ?? {})
        .filter(([k]) => k !== "rel" && k !== "target")
        .map(([k, v]) => ` ${k}=${v}`)
        .join("");
      return `<${n.tag}${attrs}>${show(n.kids)}</${n.tag}>`;
    })
    .join("");
}
const md = (text: string) => show(parse(text));

describe("the widget's Markdown", () => {
  it("renders the subset a model writes", () => {
    expect(md("Hello **bold** and *it* and _it_ and `a < b`")).toBe(
      "<p>Hello <strong>bold</strong> and <em>it</em> and <em>it</em> and <code>a < b</code></p>",
    );
    expect(md("line one\nline two\n\nnext")).toBe("<p>line one<br></br>line two</p><p>next</p>");
    expect(md("Steps:\n1. open\n2. **close**\n\n- a\n  - nested\n- b")).toBe(
      "<p>Steps:</p><ol><li>open</li><li><strong>close</strong></li></ol>" +
        "<ul><li>a<ul><li>nested</li></ul></li><li>b</li></ul>",
    );
    expect(md("3. three\n4. four")).toBe("<ol start=3><li>three</li><li>four</li></ol>");
    expect(md("```js\nif (a < b) { *x* }\n```\nafter")).toBe(
      "<pre><code>if (a < b) { *x* }</code></pre><p>after</p>",
    );
    expect(md("## Title\n---")).toBe("<p><strong>Title</strong></p><hr></hr>");
    expect(md("snake_case_name and 2 * 3 * 4 and **unclosed")).toBe(
      "<p>snake_case_name and 2 * 3 * 4 and **unclosed</p>",
    );
    expect(md("\\*not em\\* `` a ` b ``")).toBe("<p>*not em* <code> a ` b </code></p>");
    expect(md("*a **b** c*")).toBe("<p><em>a <strong>b</strong> c</em></p>");
  });

  it("links only to http(s) and mailto, opening a new tab without referrer or opener", () => {
    const [p] = parse(
      "[docs](https://example.com/a_(b)) and https://shop.example/x?y=1. Mail [us](mailto:hi@example.com)",
    );
    expect(show(p ? [p] : [])).toBe(
      "<p><a href=https://example.com/a_(b)>docs</a> and <a href=https://shop.example/x?y=1>https://shop.example/x?y=1</a>." +
        " Mail <a href=mailto:hi@example.com>us</a></p>",
    );
    const a = [...walk(parse("[x](https://example.com)"))].find((n) => n.tag === "a");
    expect(a?.attrs).toEqual({
      href: "https://example.com/",
      rel: "noopener noreferrer nofollow",
      target: "_blank",
    });
    // Not links: the label stays, as text.
    for (const bad of [
      "[click](javascript:alert(1))",
      "[click](JaVaScRiPt:alert(1))",
      "[click]( javascript:alert(1))",
      "[click](data:text/html,<script>alert(1)</script>)",
      "[click](vbscript:msgbox)",
      "[click](//evil.example/x)",
      "[click](/relative)",
      "[click](java\tscript:alert(1))",
    ]) {
      const tree = parse(bad);
      expect(
        [...walk(tree)].some((n) => n.tag === "a"),
        bad,
      ).toBe(false);
      expect(textOf(tree), bad).toContain("click");
    }
    expect(textOf(parse("[click](javascript:alert(1))"))).toBe("click");
    expect(safeHref("javascript:alert(1)")).toBeUndefined();
    expect(safeHref("https://example.com")).toBe("https://example.com/");
  });

  it("never makes markup of HTML in the text: any input gives known tags, safe links and every < as text", () => {
    const alphabet = fc.constantFrom(
      "<script>alert(1)</script>",
      "<img src=x onerror=alert(1)>",
      '<a href="javascript:alert(1)">x</a>',
      "javascript:",
      "[",
      "](",
      ")",
      "*",
      "**",
      "_",
      "`",
      "```",
      "\n",
      "\n\n",
      "- ",
      "1. ",
      "  ",
      "# ",
      "https://",
      "mailto:",
      "a",
      "word ",
      "\\",
      '"',
      "'",
      "&amp;",
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (parts) => {
        const text = parts.join("");
        const tree = parse(text);
        let hrefs = "";
        for (const n of walk(tree)) {
          expect(TAGS.has(n.tag)).toBe(true);
          for (const [k, v] of Object.entries(n.attrs ?? {})) {
            expect(["href", "rel", "target", "start"]).toContain(k);
            if (k === "href") {
              expect(["http:", "https:", "mailto:"]).toContain(new URL(v).protocol);
              hrefs += decodeURIComponent(v.replace(/%(?![0-9A-F]{2})/gi, "%25"));
            }
            if (k === "start") expect(v).toMatch(/^\d+$/);
          }
        }
        // Every "<" of the input is still there, as text or inside a link's address; none is
        // made up. Only a link the widget refuses drops its address (it shows its label alone,
        // as above), so with link syntax in the input a "<" may be gone, never added.
        const count = (s: string) => s.split("<").length - 1;
        const kept = count(textOf(tree)) + count(hrefs);
        if (text.includes("](")) expect(kept).toBeLessThanOrEqual(count(text));
        else expect(kept).toBe(count(text));
      }),
      { numRuns: 600 },
    );
  });

  it("streams block by block: the final blocks plus the open ones are always the whole parse", () => {
    const chunk = fc.constantFrom(
      "Hello ",
      "**bold**",
      " *em",
      "* ",
      "`code`",
      "\n",
      "\n\n",
      "- item",
      "1. one",
      "  - sub",
      "```\n",
      "x < y",
      "## Head",
      "[a](https://a.example)",
      "---",
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 30 }), (chunks) => {
        const stream = new MarkdownStream();
        let drawn: MdElement[] = [];
        let text = "";
        for (const c of chunks) {
          text += c;
          const u = stream.update(text);
          if (u.reset) drawn = [];
          drawn.push(...u.final);
          expect(show([...drawn, ...u.open])).toBe(md(text));
        }
      }),
      { numRuns: 400 },
    );
  });

  it("starts over when the text is replaced rather than grown", () => {
    const stream = new MarkdownStream();
    stream.update("first para\n\nsecond para\n\nthird");
    const u = stream.update("policy message");
    expect(u.reset).toBe(true);
    expect(show([...u.final, ...u.open])).toBe("<p>policy message</p>");
  });

  it("stays linear on adversarial input: 200 KB of unclosed markers parse in well under a second", () => {
    for (const unit of ["*a ", "**a ", "_a ", "`", "[a](", "[", "- ", "https://"]) {
      const text = unit.repeat(Math.ceil(200_000 / unit.length));
      const t0 = performance.now();
      parse(text);
      expect(performance.now() - t0, unit).toBeLessThan(1_000);
    }
  });
});
