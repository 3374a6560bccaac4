import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AxeResults, ImpactValue, RunOptions } from "axe-core";
import type { Frame, Page } from "playwright-core";

/** One failing rule, with where it failed: what the tests compare and print. */
export interface AxeViolation {
  id: string;
  impact: ImpactValue;
  help: string;
  helpUrl: string;
  nodes: { target: string; html: string; summary: string }[];
}

/** Only these fail a test: "moderate" and "minor" findings are advice, not regressions. */
const BLOCKING: readonly ImpactValue[] = ["serious", "critical"];

// Read once per test file: axe.min.js is ~550 KB.
let source: string | undefined;
function axeSource(): string {
  source ??= readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  return source;
}

/**
 * Puts axe into `frame` through DevTools rather than a script tag: an inline tag would be refused by
 * a page's CSP (the console's, a strict host page's) and leave a violation report the page can see.
 */
async function inject(frame: Frame): Promise<void> {
  if (await frame.evaluate(() => "axe" in window)) return;
  await frame.evaluate(axeSource());
}

/**
 * axe-core's serious and critical violations on `page` as it is now (every frame, open shadow roots),
 * optionally only inside the element matching the CSS selector `include`.
 */
export async function axeViolations(page: Page, opts: { include?: string } = {}): Promise<AxeViolation[]> {
  // Every frame needs its own copy: axe asks child frames over postMessage and waits for them.
  for (const frame of page.frames()) if (!frame.isDetached()) await inject(frame).catch(() => {});
  const options: RunOptions = { resultTypes: ["violations"] };
  const results = await page.evaluate(
    ([include, options]) => {
      const w = window as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<AxeResults> } };
      return w.axe.run(include ? { include: [include] } : document, options);
    },
    [opts.include, options] as const,
  );
  return results.violations
    .filter((v) => v.impact && BLOCKING.includes(v.impact))
    .map((v) => ({
      id: v.id,
      impact: v.impact ?? "serious",
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({
        target: n.target.map(String).join(" >> "),
        html: n.html,
        summary: n.failureSummary ?? "",
      })),
    }));
}

/** Violations as text a person can act on; "" when there are none, so `expect(...).toBe("")` prints them. */
export function formatViolations(violations: AxeViolation[]): string {
  return violations
    .map((v) => {
      const nodes = v.nodes.map(
        (n) => `  - ${n.target}\n    ${n.html}\n    ${n.summary.replace(/\n/g, "\n    ")}`,
      );
      return `[${v.impact}] ${v.id}: ${v.help} (${v.nodes.length}) ${v.helpUrl}\n${nodes.join("\n")}`;
    })
    .join("\n");
}
