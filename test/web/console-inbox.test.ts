import { describe, expect, it } from "vitest";
import type { InboxConversation } from "../../src/api-types";
import { InboxQuery } from "../../src/inbox/schemas";
import { liveUrl, turnLine } from "../../web/console/views/conversation";
import { inboxQuery } from "../../web/console/views/inbox";

type Turn = InboxConversation["turns"][number];

const turn = (o: Partial<Turn> = {}): Turn => ({
  turn_index: 0,
  at: 1_800_000_000_000,
  model: "fast",
  called_model: "gpt-4o-mini",
  input_tokens: 1200,
  output_tokens: 40,
  cost_usd: 0.0003,
  latency_ms: 850.4,
  outcome: "ok",
  error: null,
  blocked_topic: null,
  tools_used: [],
  tools: [],
  ...o,
});

describe("the console's inbox", () => {
  it("asks for the filters set, which the API accepts, and leaves the empty ones out", () => {
    const qs = inboxQuery({ q: " refund card ", status: "waiting", channel: "", variant: "  " }, "abc_-1");
    expect(qs).toBe("q=refund+card&status=waiting&limit=25&cursor=abc_-1");
    const parsed = InboxQuery.safeParse(Object.fromEntries(new URLSearchParams(qs)));
    expect(parsed.success && parsed.data).toEqual({
      q: "refund card",
      status: "waiting",
      limit: 25,
      cursor: "abc_-1",
    });
    expect(inboxQuery({ q: "", status: "" }, null)).toBe("limit=25");
  });

  it("writes each answered message's figures, and says when no model answered", () => {
    expect(turnLine(turn())).toBe(
      "model fast → gpt-4o-mini · 1,200 in / 40 out tokens · $0.0003 · 850 ms · ok",
    );
    expect(
      turnLine(
        turn({
          called_model: "fast",
          tools_used: ["lookup_order", "refund"],
          tools: [
            { name: "lookup_order", ok: true, failure: null, latency_ms: 12 },
            { name: "refund", ok: false, failure: "timeout", latency_ms: 5000 },
          ],
        }),
      ),
    ).toBe(
      "model fast · 1,200 in / 40 out tokens · $0.0003 · 850 ms · ok · tools: lookup_order, refund failed (timeout)",
    );
    expect(
      turnLine(
        turn({ called_model: null, outcome: "blocked", blocked_topic: "medical advice", latency_ms: 3 }),
      ),
    ).toBe("no model call (blocked) · 3 ms · blocked: medical advice");
    // Turns recorded before per-call records name their tools only.
    expect(turnLine(turn({ tools_used: ["lookup_order"], error: "upstream 502", outcome: "error" }))).toBe(
      "model fast → gpt-4o-mini · 1,200 in / 40 out tokens · $0.0003 · 850 ms · error · tools: lookup_order · error: upstream 502",
    );
  });

  it("opens the live socket on the page's own origin", () => {
    expect(liveUrl("https://chat.example.com", "conv_abc")).toBe(
      "wss://chat.example.com/operator/inbox/conv_abc/live",
    );
    expect(liveUrl("http://127.0.0.1:8787", "a/b")).toBe("ws://127.0.0.1:8787/operator/inbox/a%2Fb/live");
  });
});
