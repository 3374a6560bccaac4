/**
 * The verification helper tools import (examples/order-status/src/verify.ts), checked against the
 * platform's own signing (src/tools/invoke.ts signToolRequest), and the example tool's handler.
 */
import { describe, expect, it } from "vitest";
import orderStatus from "../../../examples/order-status/src/index";
import {
  REPLAY_WINDOW_SECONDS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyRequest,
  verifySignature,
} from "../../../examples/order-status/src/verify";
import { hmacSha256Hex } from "../../../src/auth/keys";
import { signToolRequest } from "../../../src/tools/invoke";

const SECRET = "tsec_verify-test-secret";
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const BODY = JSON.stringify({ tool: "order_status", arguments: { order_id: "1234" }, tenant: "acme" });

async function signed(body = BODY, nowMs = NOW, secret = SECRET) {
  const h = await signToolRequest(secret, body, nowMs);
  return { ts: h[TIMESTAMP_HEADER] ?? null, sig: h[SIGNATURE_HEADER] ?? null };
}

describe("verifySignature", () => {
  it("accepts what the platform signs, over the exact bytes timestamp + '.' + body", async () => {
    const { ts, sig } = await signed();
    expect(ts).toBe(String(NOW / 1000));
    expect(sig).toBe(`sha256=${await hmacSha256Hex(SECRET, `${ts}.${BODY}`)}`);
    expect(await verifySignature(SECRET, ts, sig, BODY, NOW)).toEqual({
      ok: true,
      body: BODY,
      timestamp: NOW / 1000,
    });
  });

  it("accepts clock skew up to the replay window either way, and not a second more", async () => {
    const { ts, sig } = await signed();
    const w = REPLAY_WINDOW_SECONDS * 1000;
    expect((await verifySignature(SECRET, ts, sig, BODY, NOW + w)).ok).toBe(true);
    expect((await verifySignature(SECRET, ts, sig, BODY, NOW - w)).ok).toBe(true);
    expect(await verifySignature(SECRET, ts, sig, BODY, NOW + w + 1000)).toEqual({
      ok: false,
      reason: "stale",
    });
    // A timestamp from the future (a pre-signed request kept for later) is refused the same way.
    expect(await verifySignature(SECRET, ts, sig, BODY, NOW - w - 1000)).toEqual({
      ok: false,
      reason: "stale",
    });
  });

  it("refuses a replay with a fresh timestamp but the old signature", async () => {
    const { sig } = await signed();
    const later = String(NOW / 1000 + 600);
    expect(await verifySignature(SECRET, later, sig, BODY, NOW + 600_000)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("refuses an altered body, another secret, and malformed headers", async () => {
    const { ts, sig } = await signed();
    const altered = BODY.replace("1234", "1235");
    expect((await verifySignature(SECRET, ts, sig, altered, NOW)).ok).toBe(false);
    expect((await verifySignature("tsec_other", ts, sig, BODY, NOW)).ok).toBe(false);
    expect(await verifySignature(SECRET, null, sig, BODY, NOW)).toEqual({
      ok: false,
      reason: "missing_headers",
    });
    expect(await verifySignature(SECRET, ts, null, BODY, NOW)).toEqual({
      ok: false,
      reason: "missing_headers",
    });
    expect(await verifySignature(SECRET, "12.5", sig, BODY, NOW)).toEqual({
      ok: false,
      reason: "bad_timestamp",
    });
    expect(await verifySignature(SECRET, ts, sig?.slice(7) ?? "", BODY, NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    expect(await verifySignature(SECRET, ts, "sha256=zz", BODY, NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
    expect(await verifySignature(SECRET, ts, `${sig}00`, BODY, NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("verifyRequest reads the headers and the body of a Request", async () => {
    const { ts, sig } = await signed();
    const req = new Request("https://tool.example/", {
      method: "POST",
      headers: { [TIMESTAMP_HEADER]: ts ?? "", [SIGNATURE_HEADER]: sig ?? "" },
      body: BODY,
    });
    expect((await verifyRequest(req, SECRET, NOW)).ok).toBe(true);
  });
});

describe("the example order-status tool (its fetch handler, in workerd)", () => {
  const env = { TOOL_SECRET: SECRET };
  async function call(args: unknown, opts: { secret?: string; method?: string } = {}) {
    const body = JSON.stringify({ tool: "order_status", arguments: args, tenant: "acme" });
    const headers = await signToolRequest(opts.secret ?? SECRET, body);
    const req = new Request("https://order-status.example/", {
      method: opts.method ?? "POST",
      headers,
      body: opts.method === "GET" ? undefined : body,
    });
    return orderStatus.fetch(req, env);
  }

  it("answers a known order, an order number with #, and an unknown one", async () => {
    const res = await call({ order_id: "1234" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      order_id: "1234",
      found: true,
      status: "shipped",
      carrier: "UPS",
    });
    expect(await (await call({ order_id: "#1236" })).json()).toMatchObject({
      found: true,
      status: "delivered",
    });
    expect(await (await call({ order_id: "77" })).json()).toEqual({ order_id: "77", found: false });
  });

  it("refuses requests not signed with its secret, and anything but POST", async () => {
    const res = await call({ order_id: "1234" }, { secret: "tsec_wrong" });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "not a chatedge request (bad_signature)" });
    expect((await call({}, { method: "GET" })).status).toBe(405);
  });
});
