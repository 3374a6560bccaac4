import { describe, expect, it } from "vitest";
import { asksForHuman } from "../../../src/chat/safety";
import { countTextTokens } from "../../../src/chat/tokens";
import { readCapped } from "../../../src/http-body";
import {
  chunkText,
  MAX_CHUNK_TOKENS,
  MAX_HEADING_CHARS,
  TARGET_CHUNK_TOKENS,
} from "../../../src/knowledge/chunk";
import { htmlToText } from "../../../src/knowledge/extract";

const sentence = (i: number) => `Sentence number ${i} says something about parcels and refunds.`;

describe("chunking", () => {
  it("reads a # line inside a fenced code block as code, not as a heading", () => {
    const text =
      "# Tools\n\n## Deploy\n\n```sh\n# edit src/index.ts\nnpx wrangler deploy\n```\n\n~~~\n# also code\n~~~\n\n## Registry\n\nRoutes.";
    expect(chunkText(text, true).map((c) => [c.heading, c.content])).toEqual([
      ["Tools > Deploy", "```sh\n# edit src/index.ts\nnpx wrangler deploy\n```\n\n~~~\n# also code\n~~~"],
      ["Tools > Registry", "Routes."],
    ]);
  });

  it("packs paragraphs up to the target and never passes the maximum, cutting long ones at sentences", () => {
    const paragraphs = Array.from({ length: 30 }, (_, p) =>
      Array.from({ length: 1 + (p % 7) * 6 }, (_, i) => sentence(p * 100 + i)).join(" "),
    );
    const chunks = chunkText(`# Guide\n\n${paragraphs.join("\n\n")}`, true);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) {
      expect(c.heading).toBe("Guide");
      // The heading counts too: it goes into the prompt with the content.
      expect(c.tokens).toBe(countTextTokens(c.content) + countTextTokens("Guide"));
      expect(countTextTokens(c.content)).toBeLessThanOrEqual(MAX_CHUNK_TOKENS);
      // Cut at sentence ends: every chunk starts a sentence and ends one.
      expect(c.content).toMatch(/^Sentence number \d+/);
      expect(c.content).toMatch(/refunds\.$/);
    }
    // Nothing lost, nothing repeated.
    const words = (s: string) => s.split(/\s+/).filter(Boolean);
    expect(chunks.flatMap((c) => words(c.content))).toEqual(words(paragraphs.join(" ")));
    // Packed: two neighbouring chunks would not have fitted in one.
    for (let i = 1; i < chunks.length; i++) {
      expect((chunks[i - 1]?.tokens ?? 0) + (chunks[i]?.tokens ?? 0)).toBeGreaterThan(
        TARGET_CHUNK_TOKENS - 60,
      );
    }
  });

  it("cuts a sentence longer than the maximum at words", () => {
    const long = Array.from({ length: 2_000 }, (_, i) => `w${i}`).join(" ");
    const chunks = chunkText(long, false);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(MAX_CHUNK_TOKENS);
    expect(chunks.map((c) => c.content).join(" ")).toBe(long);
  });

  it("keeps the heading path, with skipped levels and sections that close", () => {
    const chunks = chunkText("# A\n\nintro\n\n### A3\n\ndeep\n\n## B\n\nbee\n\n# C\n\nsea", true);
    expect(chunks.map((c) => [c.heading, c.content])).toEqual([
      ["A", "intro"],
      ["A > A3", "deep"],
      ["A > B", "bee"],
      ["C", "sea"],
    ]);
  });

  it("reads hostile HTML as inert text", () => {
    const text = htmlToText(
      `<h2 onclick="x()">Title &lt;b&gt;</h2><p>a<script>evil()</script>b</p><img src=x onerror=alert(1)><p>c &#x3C;d&#62; &#0; &bogus;</p><!-- <p>hidden</p> --><style>p{}</style><p>e`,
    );
    expect(text).toBe("## Title <b>\n\na b\n\nc <d> &bogus;\n\ne");
    // Empty comments end where they start; one that never closes runs to the end.
    expect(htmlToText("a<!-->b<!--->c<!-- d")).toBe("a b c");
  });

  it("takes a heading's closing #s off only after a blank, cuts a long heading, and counts it in the chunk's tokens", () => {
    const long = "w".repeat(500);
    const chunks = chunkText(`# Title ##\n\nx\n\n## C#\n\ny\n\n### ${long} #\n\nz`, true);
    expect(chunks.map((c) => c.heading)).toEqual([
      "Title",
      "Title > C#",
      `Title > C# > ${"w".repeat(MAX_HEADING_CHARS)}`,
    ]);
    for (const c of chunks) expect(c.tokens).toBe(countTextTokens(c.content) + countTextTokens(c.heading));
  });
});

describe("hostile content takes time in proportion to its length", () => {
  // The patterns these replaced took minutes on such inputs (a heading line of blanks: the cube of
  // its length; unclosed comments and tags: the square), in the knowledge queue's consumer, which
  // every tenant's sources share. Each input here is about 1 MB; the bound is generous (the
  // replaced code needed over 30 s for the first and about 100 s for the second).
  const within = (ms: number, what: string, run: () => void) => {
    const started = performance.now();
    run();
    expect(performance.now() - started, what).toBeLessThan(ms);
  };

  it("markdown headings and HTML comments, tags and elements that never close", () => {
    within(5_000, "a heading line of blanks", () => chunkText(`# a${" ".repeat(1_000_000)}b\n\ntext`, true));
    within(5_000, "unclosed comments", () => htmlToText("<!--".repeat(250_000)));
    within(5_000, "unclosed scripts", () => htmlToText("<script>".repeat(125_000)));
    within(5_000, "tags without >", () => htmlToText("<p".repeat(500_000)));
    within(5_000, "unclosed headings", () => htmlToText("<h1>x".repeat(200_000)));
  });

  it("the visitor's 'asks for a human' check, on every message before admission", () => {
    within(1_000, "a word, blanks, then anything", () => asksForHuman(`agent${" ".repeat(200_000)}x`));
    expect([asksForHuman("agent"), asksForHuman("  Human!! "), asksForHuman("agent please")]).toEqual([
      true,
      true,
      false,
    ]);
  });
});

describe("a body read from a server a tenant chose", () => {
  const big = (bytes: number, declared = false) =>
    new Response(
      new ReadableStream({
        start(c) {
          for (let sent = 0; sent < bytes; sent += 65_536) c.enqueue(new Uint8Array(65_536));
          c.close();
        },
      }),
      declared ? { headers: { "content-length": String(bytes) } } : {},
    );

  it("is read up to its cap, and refused past it, declared or not", async () => {
    expect(await readCapped(new Response("small"), 10)).toBe("small");
    expect(await readCapped(big(1_000_000), 100_000)).toBeNull();
    expect(await readCapped(big(1_000_000, true), 100_000)).toBeNull();
    expect((await readCapped(big(65_536), 100_000))?.length).toBe(65_536);
  });
});
