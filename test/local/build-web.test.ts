import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildWeb } from "../../local/build-web.ts";
import { EN } from "../../web/widget/i18n.ts";

const out = mkdtempSync(join(tmpdir(), "chatedge-web-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the web build", () => {
  it("keeps widget.js under 12 KB gzipped and writes each translation next to it", async () => {
    const built = await buildWeb(out);
    // The budget docs/web.md states; the build prints the figure (npm run build:web).
    expect(built.widgetGzipBytes).toBeLessThan(12 * 1024);
    for (const locale of ["de", "fr", "es", "ja"]) {
      const strings = JSON.parse(readFileSync(join(out, "widget", `${locale}.json`), "utf8")) as object;
      expect(Object.keys(strings).sort(), locale).toEqual(Object.keys(EN).sort());
    }
    // Translations are fetched, not bundled: a German-only text is not in widget.js.
    expect(readFileSync(join(out, "widget.js"), "utf8")).not.toContain("Chat schließen");
  }, 60_000);
});
