/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { uniqueId } from "../helpers";
import { batchOf, countRows, deliver, turnEvent } from "./helpers";

// The sources of everything that talks SQL for analytics, as text.
const sources = {
  ...import.meta.glob(["../../../src/analytics/*.ts", "../../../src/monitoring/*.ts"], {
    query: "?raw",
    import: "default",
    eager: true,
  }),
  ...import.meta.glob(["../../../local/seed-analytics.ts", "../../../bench/analytics.ts"], {
    query: "?raw",
    import: "default",
    eager: true,
  }),
} as Record<string, string>;

/** Removes comments and drizzle `sql` tagged templates (parameterized by construction). */
function outsideSqlTags(src: string): string {
  let s = src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  // Tagged templates may nest `${...}` holes; strip them innermost-first until none is left.
  let prev = "";
  while (prev !== s) {
    prev = s;
    s = s.replace(/\bsql`[^`]*`/g, "SQL_TAG");
  }
  return s;
}

describe("no SQL is assembled from strings", () => {
  it("finds the sources it checks", () => {
    const names = Object.keys(sources).map((p) => p.split("/").slice(-2).join("/"));
    expect(names).toEqual(
      expect.arrayContaining([
        "analytics/ingest.ts",
        "analytics/rollups.ts",
        "analytics/dashboard.ts",
        "analytics/dead-letters.ts",
        "local/seed-analytics.ts",
        "bench/analytics.ts",
      ]),
    );
  });

  for (const [path, src] of Object.entries(sources)) {
    it(`${path.split("/").slice(-2).join("/")}: SQL only in sql\`\` templates or constant strings`, () => {
      const rest = outsideSqlTags(src);
      expect(rest).not.toMatch(/sql\.raw\s*\(/);
      // A SQL keyword inside a template literal with a hole, or next to string concatenation.
      const sqlWord = /\b(select|insert\s+into|update|delete\s+from|create|drop|alter|truncate|copy)\b/i;
      for (const tpl of rest.match(/`(?:[^`\\]|\\.)*`/g) ?? []) {
        if (tpl.includes("${")) expect(sqlWord.test(tpl), `template: ${tpl.slice(0, 120)}`).toBe(false);
      }
      for (const line of rest.split("\n")) {
        if (/["'`]\s*\+|\+\s*["'`]/.test(line))
          expect(sqlWord.test(line), `concatenation: ${line.trim()}`).toBe(false);
      }
    });
  }

  it("stores hostile strings verbatim", async () => {
    const t = uniqueId("sq");
    const hostile = "x'); drop table turns; --";
    await deliver(
      batchOf([turnEvent(t, { userId: hostile, conversationId: "$1::text", model: "\\'; select 1" })]),
    );
    expect(await countRows("turns", t)).toBe(1);
  });
});
