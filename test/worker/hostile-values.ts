/**
 * What the hostile-input tests share: the strings an attacker tries first, and the check every
 * answer to a hostile request must pass.
 */
import { expect } from "vitest";
import { envelope } from "./helpers";

/** Strings an attacker tries first: SQL, markup, templates, paths, control and bidi characters. */
export const INJECTIONS = [
  "'; drop table tenants; --",
  '" or 1=1 --',
  "<script>alert(1)</script>",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, on purpose.
  "${7*7}",
  "../../../../etc/passwd",
  "\u0000\u0001\u0002",
  "\ud83d\ude00\u202e\u200b",
  "%00%0d%0aSet-Cookie: x=1",
  "{{constructor.constructor('return 1')()}}",
  "__proto__",
];

/**
 * Raw JSON text of `depth` nested arrays (2 bytes a level) or objects (`{"a":`, 6 bytes a level)
 * around `leaf`: deeper than a test can build with JSON.stringify, which overflows from about 8,000.
 */
export function deepJson(kind: "array" | "object", depth: number, leaf: string): string {
  return kind === "array"
    ? `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`
    : `${'{"a":'.repeat(depth)}${leaf}${"}".repeat(depth)}`;
}

/**
 * Checks one answer to a hostile request: below 500, and a refusal in the route's error envelope
 * (helpers' `envelope`, which throws on anything else; OpenAI's shape on the OpenAI routes). A
 * socket that was accepted is closed at once.
 */
export async function expectHandled(res: Response, what: string, openai = false): Promise<void> {
  if (res.status === 101) {
    res.webSocket?.accept();
    res.webSocket?.close();
    return;
  }
  const text = await res.text();
  expect(res.status, `${what} -> ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status < 400) return;
  if (!openai) await envelope(new Response(text));
  else
    expect((JSON.parse(text) as { error?: unknown }).error, what).toMatchObject({
      message: expect.any(String),
      type: expect.any(String),
    });
}
