import { describe, expect, it } from "vitest";
import { countTextTokens } from "../../../src/chat/tokens";
import { chunkText, MAX_CHUNK_TOKENS, TARGET_CHUNK_TOKENS } from "../../../src/knowledge/chunk";
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
      expect(c.tokens).toBe(countTextTokens(c.content));
      expect(c.tokens).toBeLessThanOrEqual(MAX_CHUNK_TOKENS);
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
  });
});
