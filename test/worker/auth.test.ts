import { describe, expect, it } from "vitest";
import { admin, call, createKey, createTenant, envelope, send } from "./helpers";

describe("tenant key auth", () => {
  it("serves the tenant's public config to its secret key", async () => {
    const t = await createTenant({ name: "Shop", custom_greeting: "Welcome to Shop" });
    const { key } = await createKey(t.tenant_id);
    const res = await send("GET", "/v1/config", key);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      tenant_id: t.tenant_id,
      name: "Shop",
      greeting: "Welcome to Shop",
      model: "gpt-4o-mini",
    });
  });

  it("answers each tenant's key with that tenant's config only", async () => {
    const a = await createTenant({ custom_greeting: "A says hi" });
    const b = await createTenant({ custom_greeting: "B says hi" });
    const [ka, kb] = [await createKey(a.tenant_id), await createKey(b.tenant_id)];
    expect(
      ((await (await send("GET", "/v1/config", ka.key)).json()) as { tenant_id: string }).tenant_id,
    ).toBe(a.tenant_id);
    expect(
      ((await (await send("GET", "/v1/config", kb.key)).json()) as { tenant_id: string }).tenant_id,
    ).toBe(b.tenant_id);
  });

  it("refuses missing, malformed and unknown keys with 401", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const forged = `${key.slice(0, 15)}${"x".repeat(32)}`;
    for (const auth of [
      undefined,
      key,
      `Basic ${key}`,
      "Bearer",
      "Bearer sk_short",
      `Bearer ${forged}`,
      `Bearer sk_${"A".repeat(44)}`,
      `Bearer ${key}x`,
    ]) {
      const headers: Record<string, string> = {};
      if (auth) headers.authorization = auth;
      const res = await call("/v1/config", { headers });
      expect(res.status, String(auth)).toBe(401);
      const err = await envelope(res);
      expect(err.code).toBe("UNAUTHORIZED");
      expect(JSON.stringify(err)).not.toContain(key);
    }
  });

  it("refuses a revoked key at once", async () => {
    const t = await createTenant();
    const k = await createKey(t.tenant_id);
    expect((await send("GET", "/v1/config", k.key)).status).toBe(200);
    await admin("DELETE", `/tenants/${t.tenant_id}/keys/${k.id}`);
    const res = await send("GET", "/v1/config", k.key);
    expect(res.status).toBe(401);
    expect((await envelope(res)).message).toBe("API key revoked");
  });

  it("refuses keys of a deactivated tenant with 403 and serves them again after reactivation", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    expect((await send("GET", "/v1/config", key)).status).toBe(200);
    await admin("DELETE", `/tenants/${t.tenant_id}`);
    const res = await send("GET", "/v1/config", key);
    expect(res.status).toBe(403);
    expect((await envelope(res)).message).toBe("tenant is deactivated");
    await admin("PATCH", `/tenants/${t.tenant_id}`, { active: true });
    expect((await send("GET", "/v1/config", key)).status).toBe(200);
  });

  it("accepts a publishable key only from the tenant's allowed origins", async () => {
    const t = await createTenant({ allowed_origins: ["https://shop.example"] });
    const { key } = await createKey(t.tenant_id, "publishable");
    const ok = await send("GET", "/v1/config", key, undefined, { origin: "https://shop.example" });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://shop.example");

    const foreign = await send("GET", "/v1/config", key, undefined, { origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    expect((await envelope(foreign)).message).toContain("https://evil.example");

    const none = await send("GET", "/v1/config", key);
    expect(none.status).toBe(403);
  });

  it("gives a secret key no CORS grant for an origin the tenant did not allow", async () => {
    const t = await createTenant({ allowed_origins: ["https://shop.example"] });
    const { key } = await createKey(t.tenant_id, "secret");
    const res = await send("GET", "/v1/config", key, undefined, { origin: "https://other.example" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers CORS preflights for the public API", async () => {
    const res = await call("/v1/config", {
      method: "OPTIONS",
      headers: {
        origin: "https://shop.example",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization,content-type,x-visitor-id",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-headers")).toContain("Authorization");
    // The widget sends its visitor id from the tenant's site.
    expect(res.headers.get("access-control-allow-headers")).toContain("X-Visitor-Id");
  });
});
