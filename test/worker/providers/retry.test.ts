import { describe, expect, it } from "vitest";
import { redact } from "../../../src/chat/providers/errors";
import { createMockProvider } from "../../../src/chat/providers/mock";
import {
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  retryDelay,
  streamWithRetries,
} from "../../../src/chat/providers/retry";
import { fastPolicy, never } from "./helpers";

const h = (init: Record<string, string>) => new Headers(init);

describe("retry-after parsing", () => {
  const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");

  it("reads seconds, fractions, HTTP dates and OpenAI's retry-after-ms", () => {
    expect(parseRetryAfter(h({ "retry-after": "2" }), now)).toBe(2_000);
    expect(parseRetryAfter(h({ "retry-after": "0.25" }), now)).toBe(250);
    expect(parseRetryAfter(h({ "retry-after": "Wed, 21 Oct 2026 07:28:05 GMT" }), now)).toBe(5_000);
    expect(parseRetryAfter(h({ "retry-after": "Wed, 21 Oct 2026 07:27:00 GMT" }), now)).toBe(0);
    expect(parseRetryAfter(h({ "retry-after-ms": "1500", "retry-after": "2" }), now)).toBe(1_500);
  });

  it("ignores absent or garbled values", () => {
    expect(parseRetryAfter(h({}), now)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "-3" }), now)).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after-ms": "x", "retry-after": "1" }), now)).toBe(1_000);
  });
});

describe("backoff", () => {
  it("doubles per attempt up to the cap, with half of each wait jittered", () => {
    const low = { ...DEFAULT_RETRY_POLICY, random: () => 0 };
    const high = { ...DEFAULT_RETRY_POLICY, random: () => 1 };
    expect([0, 1, 2, 3, 4, 5].map((n) => retryDelay(n, low))).toEqual([125, 250, 500, 1_000, 2_000, 2_000]);
    expect([0, 1, 2, 3, 4, 5].map((n) => retryDelay(n, high))).toEqual([
      250, 500, 1_000, 2_000, 4_000, 4_000,
    ]);
  });

  it("uses the server's retry-after as is", () => {
    expect(retryDelay(3, DEFAULT_RETRY_POLICY, 1_234)).toBe(1_234);
  });
});

describe("redaction", () => {
  it("removes the key and key-shaped tokens, and bounds the length", () => {
    expect(redact("bad key sk-proj-abcdef123456 and sk-ant-api03-xyzxyz")).toBe(
      "bad key [redacted] and [redacted]",
    );
    expect(redact("token MYSECRET leaked", "MYSECRET")).toBe("token [redacted] leaked");
    expect(redact("x".repeat(400)).length).toBe(303);
  });
});

describe("timeout watchdog", () => {
  it("counts only time spent waiting on the provider, not time the consumer takes", async () => {
    const req = { model: "mock", messages: [{ role: "user" as const, content: "hi" }], maxTokens: 50 };
    const events: string[] = [];
    for await (const ev of streamWithRetries(
      createMockProvider(),
      req,
      fastPolicy({ timeoutMs: 100 }),
      never(),
    )) {
      events.push(ev.type);
      // A slow visitor: each event takes longer to deliver than the provider timeout.
      if (ev.type === "text" && events.length < 4) await new Promise((r) => setTimeout(r, 150));
    }
    expect(events.at(-1)).toBe("done");
    expect(events).not.toContain("retry");
  });
});
