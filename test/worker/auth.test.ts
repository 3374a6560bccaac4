import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { failedAttempt } from "../../src/auth/throttle";
import { loadEnv } from "../../src/env";
import { AppError } from "../../src/errors";
import { newServices } from "../../src/services";
import { admin, BASE, call, createKey, createTenant, envelope, query, send, sql, uniqueId } from "./helpers";

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
      turnstile: null,
      widget: { title: "Shop", accent_color: null, avatar_url: null, position: "bottom-right", locale: null },
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

  it("serves a publishable key the widget's routes only: every other tenant route is 403 naming the secret key", async () => {
    const origin = "https://shop.example";
    const t = await createTenant({ allowed_origins: [origin], model: "mock" });
    const { key } = await createKey(t.tenant_id, "publishable");
    const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, object> };
    const widget = /^\/v1\/(config|conversations)(\/|$)/;
    const refused = Object.entries(doc.paths).flatMap(([path, ops]) =>
      path.startsWith("/v1/") && !widget.test(path)
        ? Object.keys(ops).map((m) => [m.toUpperCase(), path.replace("{name}", "any")] as const)
        : [],
    );
    expect(refused.length).toBeGreaterThanOrEqual(12);
    for (const [method, path] of refused) {
      const body = method === "GET" || method === "DELETE" ? undefined : {};
      const res = await send(method, path, key, body, { origin });
      expect(res.status, `${method} ${path}`).toBe(403);
      const err = (await res.json()) as { error: { message: string } };
      expect(err.error.message, `${method} ${path}`).toContain("secret key");
    }
    // The widget's own surface still works with it.
    const started = await send("POST", "/v1/conversations", key, {}, { origin });
    expect(started.status).toBe(201);
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
        "access-control-request-headers": "authorization,content-type,x-visitor-token",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-headers")).toContain("Authorization");
    // The widget sends its visitor token from the tenant's site.
    expect(res.headers.get("access-control-allow-headers")).toContain("X-Visitor-Token");
  });
});

describe("key checksums and failed attempts", () => {
  /** A fresh address per test, so counters of other tests and files never mix in. */
  const address = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}:${uniqueId("ip")}`;

  it("refuses a key whose checksum does not match, as malformed", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    expect((await send("GET", "/v1/config", key)).status).toBe(200);
    // Change one character of the secret part: the checksum no longer matches.
    const i = 20;
    const forged = key.slice(0, i) + (key[i] === "a" ? "b" : "a") + key.slice(i + 1);
    const res = await send("GET", "/v1/config", forged);
    expect(res.status).toBe(401);
    expect((await envelope(res)).message).toBe("malformed API key");
  });

  it("still accepts a key made before checksums", async () => {
    const t = await createTenant();
    const legacy = `sk_${"L".repeat(4)}${uniqueId("k")
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(-8)
      .padStart(8, "0")}${"s".repeat(32)}`;
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(legacy));
    const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    await query(
      sql`insert into api_keys (id, tenant_id, kind, name, prefix, hash, last4)
          values (${uniqueId("key")}, ${t.tenant_id}, 'secret', 'legacy', ${legacy.slice(0, 15)}, ${hash}, ${legacy.slice(-4)})`,
    );
    expect((await send("GET", "/v1/config", legacy)).status).toBe(200);
  });

  it("throttles an address after 20 failed attempts a minute: only keys already cached pass, other addresses are untouched", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const { key: unseen } = await createKey(t.tenant_id);
    const ip = address();
    const other = address();
    // The real visitor's key is in use (so cached) before the guessing starts.
    expect((await send("GET", "/v1/config", key, undefined, { "cf-connecting-ip": ip })).status).toBe(200);
    for (let i = 0; i < 20; i++) {
      const res = await send("GET", "/v1/config", `sk_${"x".repeat(44)}`, undefined, {
        "cf-connecting-ip": ip,
      });
      expect(res.status).toBe(401);
    }
    const over = await send("GET", "/v1/config", `sk_${"x".repeat(44)}`, undefined, {
      "cf-connecting-ip": ip,
    });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await envelope(over)).message).toContain("sign-in attempts or failed API keys");
    // Behind the same address, the known key still works; a valid key nobody used yet would need a
    // Postgres lookup, and the address gets none until the minute is over.
    expect((await send("GET", "/v1/config", key, undefined, { "cf-connecting-ip": ip })).status).toBe(200);
    expect((await send("GET", "/v1/config", unseen, undefined, { "cf-connecting-ip": ip })).status).toBe(429);
    expect((await send("GET", "/v1/config", unseen, undefined, { "cf-connecting-ip": other })).status).toBe(
      200,
    );
  });
});

describe("failed attempts over a sliding minute", () => {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const svc = newServices(loaded.env);
  const err = new AppError("UNAUTHORIZED", "invalid API key");
  // A minute's turn two minutes ahead, so no earlier failure of this address shares its minutes.
  const turn = () => Math.floor(Date.now() / 60_000) * 60_000 + 120_000;

  it("refuses the 21st attempt of a burst that runs across the turn of a minute", async () => {
    const at = turn();
    const ip = uniqueId("burst");
    for (let i = 0; i < 20; i++) expect(await failedAttempt(svc, ip, err, at - 1_000 + i)).toBe(err);
    // Counted in Redis too, where every isolate reads the previous minute from.
    const previous = `ce:authfail:${ip}:${(at - 60_000) / 60_000}`;
    expect(await svc.cache.run<unknown>(null, (r) => r.get(previous))).toBe("20");
    const over = await failedAttempt(svc, ip, err, at + 10);
    expect(over.code).toBe("RATE_LIMITED");
    expect(Number(over.headers?.["Retry-After"])).toBe(60);
  });

  it("lets the previous minute's failures fade as they leave the last 60 s", async () => {
    const at = turn();
    const ip = uniqueId("fade");
    for (let i = 0; i < 20; i++) expect(await failedAttempt(svc, ip, err, at - 1_000 + i)).toBe(err);
    // 50 s into the next minute a sixth of the previous one is still inside the last 60 s: about 3
    // of its 20 failures count, so 16 more are allowed and the 17th is refused.
    for (let i = 0; i < 16; i++) expect(await failedAttempt(svc, ip, err, at + 50_000 + i)).toBe(err);
    expect((await failedAttempt(svc, ip, err, at + 50_020)).code).toBe("RATE_LIMITED");
  });
});

describe("publishable keys on the same origin", () => {
  it("takes the URL's origin when a browser says the request is same-origin (it sends no Origin)", async () => {
    const t = await createTenant({ allowed_origins: [BASE] });
    const { key } = await createKey(t.tenant_id, "publishable");
    const same = await send("GET", "/v1/config", key, undefined, { "sec-fetch-site": "same-origin" });
    expect(same.status).toBe(200);
    const crossSite = await send("GET", "/v1/config", key, undefined, { "sec-fetch-site": "cross-site" });
    expect(crossSite.status).toBe(403);
    const other = await createTenant({ allowed_origins: ["https://shop.example"] });
    const { key: otherKey } = await createKey(other.tenant_id, "publishable");
    const notAllowed = await send("GET", "/v1/config", otherKey, undefined, {
      "sec-fetch-site": "same-origin",
    });
    expect(notAllowed.status).toBe(403);
  });
});
