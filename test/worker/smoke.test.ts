import { describe, expect, it } from "vitest";
import { READY_TTL_MS } from "../../src/health";
import { admin, call } from "./helpers";

describe("smoke", () => {
  it("answers healthz", async () => {
    const res = await call("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
  it("is ready", async () => {
    const res = await call("/readyz");
    const body = await res.json();
    expect(body).toMatchObject({ ok: true, postgres: { ok: true }, redis: { ok: true, configured: true } });
  });
  it("checks readiness once in 5 s, however often it is called (it needs no credentials)", async () => {
    const checks = new Set<string>();
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const res = await call("/readyz");
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      checks.add(((await res.json()) as { checked_at: string }).checked_at);
    }
    // One check, or two when an earlier test's answer ran out during the loop.
    expect(checks.size).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / READY_TTL_MS) + 1);
    expect(checks.size).toBeLessThan(20);
  });
  it("lists tenants", async () => {
    const res = await admin("GET", "/tenants");
    expect(res.status).toBe(200);
  });
});
