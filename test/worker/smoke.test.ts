import { describe, expect, it } from "vitest";
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
  it("lists tenants", async () => {
    const res = await admin("GET", "/tenants");
    expect(res.status).toBe(200);
  });
});
