import { describe, expect, it } from "vitest";
import { ApiError, apiErrorOf, retryAfterSeconds } from "../../web/shared/api-error";
import { NetworkError } from "../../web/widget/api";
import { explain, toolStatus } from "../../web/widget/chat";
import { TRANSLATIONS } from "../../web/widget/locales";
import { parseFrame, readSse } from "../../web/widget/sse";
import { Memo, VisitorToken } from "../../web/widget/storage";
import { BotCheckError } from "../../web/widget/turnstile";

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

describe("the widget's visitor token", () => {
  it("is used only for the user it was issued for (data-user-id), anonymous or not", () => {
    // No window here: the store falls back to memory, shared by the tokens below as one page's.
    const local = new Memo("localStorage");
    const anonymous = new VisitorToken(local);
    anonymous.set("vt1.anon.mac");
    expect(anonymous.get()).toBe("vt1.anon.mac");
    const alice = new VisitorToken(local, "alice");
    expect(alice.get()).toBeUndefined();
    alice.set("vt1.alice.mac");
    expect(alice.get()).toBe("vt1.alice.mac");
    expect(new VisitorToken(local, "bob").get()).toBeUndefined();
    expect(new VisitorToken(local).get()).toBeUndefined();
    expect(new VisitorToken(local, "alice").get()).toBe("vt1.alice.mac");
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
    expect(
      explain(
        new ApiError("user rate limit", {
          status: 429,
          code: "RATE_LIMITED",
          details: { level: "user" },
          retryAfterSeconds: 42,
        }),
      ),
    ).toBe("You're sending messages faster than this chat allows. You can send again in 42 s.");
    expect(
      explain(
        new ApiError("monthly", {
          status: 429,
          code: "BUDGET_EXCEEDED",
          details: { level: "budget" },
          retryAfterSeconds: 3 * 86_400,
        }),
      ),
    ).toBe("This assistant has reached its usage limit for now. Please try again in 3 days.");
    expect(
      explain(
        new ApiError("daily", {
          status: 429,
          code: "BUDGET_EXCEEDED",
          details: { level: "budget" },
          retryAfterSeconds: 5 * 3600,
        }),
      ),
    ).toContain("in 5 h.");
    expect(explain(new ApiError("origin not allowed", { status: 403, code: "FORBIDDEN" }))).toBe(
      "This chat isn't available on this site right now.",
    );
    expect(explain(new NetworkError("offline"))).toContain("We can't reach the chat right now");
    // The bot check: refused by the server (siteverify's codes in details) or by Turnstile itself.
    const notPerson = "We couldn't confirm that you're a person, so the chat can't start. Please try again.";
    expect(
      explain(
        new ApiError("bot check failed", {
          status: 403,
          code: "FORBIDDEN",
          details: { error_codes: ["invalid-input-response"] },
        }),
      ),
    ).toBe(notPerson);
    expect(explain(new BotCheckError("turnstile error 600010"))).toBe(notPerson);
  });
});

describe("the shared error envelope reader", () => {
  it("reads code, message, request id, details and Retry-After from a refusal", async () => {
    const res = new Response(
      JSON.stringify({
        error: { code: "RATE_LIMITED", message: "slow down", requestId: "req_9", details: { level: "user" } },
      }),
      { status: 429, headers: { "content-type": "application/json", "retry-after": "7" } },
    );
    const err = await apiErrorOf(res);
    expect([err.status, err.code, err.message, err.requestId, err.details, err.retryAfterSeconds]).toEqual([
      429,
      "RATE_LIMITED",
      "slow down",
      "req_9",
      { level: "user" },
      7,
    ]);
  });

  it("falls back to the status when the body is not the envelope", async () => {
    const err = await apiErrorOf(
      new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }),
    );
    expect([err.code, err.message, err.requestId, err.details]).toEqual([
      "HTTP_502",
      "Bad Gateway",
      undefined,
      undefined,
    ]);
    const nul = await apiErrorOf(new Response("null", { status: 500, statusText: "Internal Server Error" }));
    expect([nul.code, nul.message]).toEqual(["HTTP_500", "Internal Server Error"]);
  });
});

describe("the widget's tool status line", () => {
  it("says a tool is running, with its label, in the visitor's language, and clears when it ends", () => {
    const start = { phase: "start" as const, name: "order_status", label: "Looks up an order." };
    expect(toolStatus(start)).toBe("Checking… Looks up an order.");
    expect(toolStatus({ ...start, label: "" })).toBe("Checking…");
    expect(toolStatus(start, TRANSLATIONS.de)).toBe("Wird geprüft… Looks up an order.");
    expect(toolStatus({ phase: "end", name: "order_status", ok: false })).toBe("");
  });
});
