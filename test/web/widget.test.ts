import { describe, expect, it } from "vitest";
import { ApiError, NetworkError, retryAfterSeconds } from "../../web/widget/api";
import { explain } from "../../web/widget/chat";
import { parseFrame, readSse } from "../../web/widget/sse";

/** A body that delivers `chunks` one read at a time, as a slow network does. */
function body(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function all(stream: ReadableStream<Uint8Array>) {
  const out: { event: string; data: string }[] = [];
  for await (const ev of readSse(stream)) out.push(ev);
  return out;
}

describe("the widget's SSE reader", () => {
  it("reads named events split anywhere across chunks, CRLF or LF", async () => {
    const events = await all(
      body([
        'event: delta\ndata: {"te',
        'xt":"Hel"}\n',
        "\nevent: delta\r\ndata: ",
        '{"text":"lo"}\r\n\r\n',
        "event: done\ndata: {}\n\n",
      ]),
    );
    expect(events).toEqual([
      { event: "delta", data: '{"text":"Hel"}' },
      { event: "delta", data: '{"text":"lo"}' },
      { event: "done", data: "{}" },
    ]);
  });

  it("joins data lines, skips comments, defaults the event name, drops a frame cut short", async () => {
    expect(parseFrame(": keep-alive")).toBeUndefined();
    expect(parseFrame("data: a\ndata: b")).toEqual({ event: "message", data: "a\nb" });
    expect(await all(body(["event: delta\ndata: {}\n\nevent: done\ndata: {"]))).toEqual([
      { event: "delta", data: "{}" },
    ]);
  });
});

describe("the widget's messages", () => {
  it("reads Retry-After as seconds or as a date", () => {
    expect(retryAfterSeconds("12")).toBe(12);
    expect(retryAfterSeconds(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(
      60,
    );
    expect(retryAfterSeconds(null)).toBeUndefined();
    expect(retryAfterSeconds("soon")).toBeUndefined();
  });

  it("says what happened and how long to wait", () => {
    expect(explain(new ApiError(429, "RATE_LIMITED", "user rate limit", "user", 42))).toBe(
      "You're sending messages faster than this chat allows. You can send again in 42 s.",
    );
    expect(explain(new ApiError(429, "BUDGET_EXCEEDED", "monthly", "budget", 3 * 86_400))).toBe(
      "This assistant has reached its usage limit for now. Please try again in 3 days.",
    );
    expect(explain(new ApiError(429, "BUDGET_EXCEEDED", "daily", "budget", 5 * 3600))).toContain("in 5 h.");
    expect(explain(new ApiError(403, "FORBIDDEN", "origin not allowed", undefined, undefined))).toBe(
      "This chat isn't available on this site right now.",
    );
    expect(explain(new NetworkError("offline"))).toContain("We can't reach the chat right now");
  });
});
