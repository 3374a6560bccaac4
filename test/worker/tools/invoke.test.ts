/**
 * invokeTool against real tools over HTTP: the example order-status worker running in workerd
 * (local/tools.ts) and a faulty tool that checks signatures the same way and fails on demand.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { invokeTool, MAX_TOOL_RESPONSE_BYTES, type ToolEnv } from "../../../src/tools/invoke";
import type { RegisteredTool } from "../../../src/tools/types";
import { TEST_TOOL_SECRET } from "../../local-services";

const TEST_ENV: ToolEnv = { ENVIRONMENT: "test" };

function tool(url: string, overrides: Partial<RegisteredTool> = {}): RegisteredTool {
  return {
    id: "00000000-0000-4000-8000-000000000001",
    tenantId: "acme",
    name: "order_status",
    description: "Looks up an order",
    parameters: {
      type: "object",
      properties: { order_id: { type: "string", pattern: "^[0-9]+$" } },
      required: ["order_id"],
      additionalProperties: false,
    },
    target: { kind: "https", url },
    timeoutMs: 2_000,
    enabled: true,
    secret: TEST_TOOL_SECRET,
    ...overrides,
  };
}

const signal = () => new AbortController().signal;
const faulty = (path: string, overrides: Partial<RegisteredTool> = {}) =>
  tool(`${env.FAULTY_TOOL_URL}${path}`, overrides);

async function receivedByFaulty(): Promise<unknown[]> {
  return (await (await fetch(`${env.FAULTY_TOOL_URL}/__requests`)).json()) as unknown[];
}

describe("invokeTool", () => {
  it("looks an order up in the example tool, signed, and gives the model its JSON", async () => {
    const out = await invokeTool(TEST_ENV, tool(env.ORDER_STATUS_URL), '{"order_id":"1234"}', signal(), {
      conversationId: "c-1",
    });
    expect(out).toMatchObject({ ok: true, name: "order_status" });
    expect(JSON.parse(out.content)).toEqual({
      order_id: "1234",
      found: true,
      status: "shipped",
      carrier: "UPS",
      tracking: "1Z999AA10123456784",
      eta: "2026-12-08",
      items: ["Blue running shoes (size 42)"],
    });
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
    const missing = await invokeTool(TEST_ENV, tool(env.ORDER_STATUS_URL), '{"order_id":"9999"}', signal());
    expect(JSON.parse(missing.content)).toEqual({ order_id: "9999", found: false });
  });

  it("is refused by the tool when signed with another secret (http_error 401)", async () => {
    const out = await invokeTool(
      TEST_ENV,
      tool(env.ORDER_STATUS_URL, { secret: "tsec_not-the-tools-secret" }),
      '{"order_id":"1234"}',
      signal(),
    );
    expect(out).toMatchObject({ ok: false, failure: "http_error" });
    expect(out.content).toContain("HTTP 401");
  });

  it("sends the body the signature covers: tool, arguments, tenant, conversation, request id, a call id of its own, the user", async () => {
    const before = (await receivedByFaulty()).length;
    const call = () =>
      invokeTool(TEST_ENV, faulty("/ok"), '{"order_id":"42"}', signal(), {
        conversationId: "conv-9",
        requestId: "req-7",
        user: "user:ann",
      });
    const [out, again] = [await call(), await call()];
    expect(out.ok).toBe(true);
    const sent = {
      tool: "order_status",
      arguments: { order_id: "42" },
      tenant: "acme",
      conversation: "conv-9",
      request_id: "req-7",
      call_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      user: "user:ann",
    };
    expect(JSON.parse(out.content)).toEqual({ echo: sent });
    const received = (await receivedByFaulty()).slice(before) as { call_id: string }[];
    expect(received).toEqual([sent, sent]);
    // Two calls of one request: the same request id, each its own call id (the key to refuse repeats by).
    expect(received[0]?.call_id).not.toBe(received[1]?.call_id);
    expect(JSON.parse(again.content).echo.call_id).toBe(received[1]?.call_id);
  });

  const argumentCases: [string, string][] = [
    ["not JSON", "{order_id: 1234"],
    ["not an object", "[1,2]"],
    ["missing a required property", "{}"],
    ["the wrong type", '{"order_id": 1234}'],
    ["failing a pattern", '{"order_id": "12ab"}'],
    ["an extra property", '{"order_id": "1", "admin": true}'],
  ];
  for (const [what, args] of argumentCases) {
    it(`refuses arguments ${what} without calling the tool`, async () => {
      const before = (await receivedByFaulty()).length;
      const out = await invokeTool(TEST_ENV, faulty("/ok"), args, signal());
      expect(out).toMatchObject({ ok: false, failure: "invalid_arguments", name: "order_status" });
      expect(out.content).toContain("Call order_status again with corrected arguments");
      expect((await receivedByFaulty()).length).toBe(before);
    });
  }

  it("treats empty arguments as {} (some models send them for argument-less calls)", async () => {
    const out = await invokeTool(TEST_ENV, faulty("/ok", { parameters: { type: "object" } }), "", signal());
    expect(out.ok).toBe(true);
  });

  it("maps a 500 to http_error without the tool's body", async () => {
    const out = await invokeTool(TEST_ENV, faulty("/status/500"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "http_error" });
    expect(out.content).toContain("HTTP 500");
    expect(out.content).not.toContain("stack trace");
    expect(out.content).not.toContain(TEST_TOOL_SECRET);
  });

  it("does not follow a redirect (3xx is http_error)", async () => {
    const out = await invokeTool(TEST_ENV, faulty("/status/302"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "http_error" });
  });

  it("gives up after the tool's timeout on a tool that never answers", async () => {
    const started = Date.now();
    const out = await invokeTool(TEST_ENV, faulty("/hang", { timeoutMs: 300 }), '{"order_id":"1"}', signal());
    const took = Date.now() - started;
    expect(out).toMatchObject({ ok: false, failure: "timeout" });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
  });

  it("times out on a body that trickles past the timeout", async () => {
    const out = await invokeTool(
      TEST_ENV,
      faulty("/slow-huge", { timeoutMs: 200 }),
      '{"order_id":"1"}',
      signal(),
    );
    // 16 KiB chunks every 20 ms pass the cap before the timeout: whichever comes first, never ok.
    expect(out.ok).toBe(false);
    expect(["timeout", "too_large"]).toContain(out.ok ? "" : out.failure);
  });

  it("refuses an answer that is not JSON", async () => {
    const out = await invokeTool(TEST_ENV, faulty("/invalid-json"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "invalid_json" });
    expect(out.content).not.toContain("<html>");
  });

  it(`stops reading a body over ${MAX_TOOL_RESPONSE_BYTES} bytes`, async () => {
    const out = await invokeTool(TEST_ENV, faulty("/huge"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "too_large" });
    expect(out.content.length).toBeLessThan(400);
  });

  it("is cancelled when the visitor leaves mid-call", async () => {
    const ctl = new AbortController();
    const pending = invokeTool(
      TEST_ENV,
      faulty("/hang", { timeoutMs: 5_000 }),
      '{"order_id":"1"}',
      ctl.signal,
    );
    setTimeout(() => ctl.abort(), 50);
    const out = await pending;
    expect(out).toMatchObject({ ok: false, failure: "cancelled" });
    expect(out.latencyMs).toBeLessThan(2_000);
    const already = new AbortController();
    already.abort();
    expect((await invokeTool(TEST_ENV, faulty("/ok"), "{}", already.signal)).ok).toBe(false);
  });

  it("cannot reach a closed port (unreachable)", async () => {
    const out = await invokeTool(TEST_ENV, tool("http://127.0.0.1:1/"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "unreachable" });
  });

  it("refuses, in production, a private or plain-http target stored before the rule", async () => {
    const prod: ToolEnv = { ENVIRONMENT: "production" };
    const before = (await receivedByFaulty()).length;
    const out = await invokeTool(prod, faulty("/ok"), '{"order_id":"1"}', signal());
    expect(out).toMatchObject({ ok: false, failure: "unreachable" });
    expect((await receivedByFaulty()).length).toBe(before);
  });

  it("fails a dispatch tool when the platform has no dispatch namespace binding", async () => {
    const out = await invokeTool(
      TEST_ENV,
      tool("", { target: { kind: "dispatch", script: "acme__orders" } }),
      '{"order_id":"1"}',
      signal(),
    );
    expect(out).toMatchObject({ ok: false, failure: "unreachable" });
  });
});
