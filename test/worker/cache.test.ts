import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cacheStats } from "../../src/cache/stats";
import { loadEnv, type RawEnv } from "../../src/env";
import worker from "../../src/index";
import { newServices } from "../../src/services";
import { admin, BASE, createKey, createTenant, relaySessions, send } from "./helpers";

/**
 * A copy of the environment, optionally altered (a different Redis, say). To the worker it is
 * another isolate: the caches it keeps per env object (isolate memory, Redis client) start empty.
 */
const anotherIsolate = (overrides: Partial<RawEnv> = {}): RawEnv => ({ ...env, ...overrides });

/** Calls the worker as the isolate whose environment is `isolateEnv`. */
async function callOn(isolateEnv: RawEnv, path: string, key: string) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${key}` } }),
    isolateEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

/** Calls the worker once from a new isolate with an altered environment. */
/** Cloudflare's documented test secret that passes any token. */
const TURNSTILE_SECRET = "1x0000000000000000000000000000000AA";

const callWith = (overrides: Partial<RawEnv>, path: string, key: string) =>
  callOn(anotherIsolate(overrides), path, key);

describe("config resolution: isolate -> Redis -> Postgres", () => {
  it("answers a second read without reaching Postgres", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const isolate = anotherIsolate();
    const s0 = await relaySessions();
    expect((await callOn(isolate, "/v1/config", key)).status).toBe(200);
    const s1 = await relaySessions();
    expect(s1).toBeGreaterThan(s0);
    const before = { ...cacheStats };
    expect((await callOn(isolate, "/v1/config", key)).status).toBe(200);
    expect(await relaySessions()).toBe(s1);
    expect(cacheStats.postgres).toBe(before.postgres);
    expect(cacheStats.isolate).toBe(before.isolate + 2);
  });

  it("answers from Redis in an isolate that has not seen the key, still without Postgres", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    expect((await send("GET", "/v1/config", key)).status).toBe(200);
    const s = await relaySessions();
    const before = { ...cacheStats };
    expect((await callWith({}, "/v1/config", key)).status).toBe(200);
    expect(await relaySessions()).toBe(s);
    expect(cacheStats.redis).toBe(before.redis + 2);
  });

  it("reads only its own cache format: an older deployment's entry is neither read nor trusted", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const loaded = loadEnv(env);
    if (!loaded.ok) throw new Error(loaded.problems.join("; "));
    // What the code before stamped copies wrote: the bare config, here saying "deactivated".
    await newServices(loaded.env).cache.setJson(`ce:tenant:${t.tenant_id}`, { ...t, active: false }, 60);
    expect((await callWith({}, "/v1/config", key)).status).toBe(200);
    // And an admin change drops both formats.
    await admin("PATCH", `/tenants/${t.tenant_id}`, { name: "Renamed" });
    expect(await newServices(loaded.env).cache.getJson(`ce:tenant:${t.tenant_id}`)).toBeUndefined();
    expect(await newServices(loaded.env).cache.getJson(`ce:v2:tenant:${t.tenant_id}`)).toBeUndefined();
  });

  it("keeps a tenant's secrets out of Redis in the clear: its config there is sealed", async () => {
    const t = await createTenant({
      turnstile_site_key: "1x00000000000000000000AA",
      turnstile_secret_key: TURNSTILE_SECRET,
    });
    const { key } = await createKey(t.tenant_id);
    const made = await send("POST", "/v1/identity-secret", key);
    const { identity_secret } = (await made.json()) as { identity_secret: string };
    // The rotation dropped the cached config; this read puts it back in Redis.
    expect((await callWith({}, "/v1/config", key)).status).toBe(200);
    const loaded = loadEnv(env);
    if (!loaded.ok) throw new Error(loaded.problems.join("; "));
    const redis = newServices(loaded.env).cache;
    const sealed = await redis.getJson<{ s: string }>(`ce:v4:tenant:${t.tenant_id}`);
    expect(typeof sealed?.s).toBe("string");
    const text = JSON.stringify(sealed);
    expect(text).not.toContain(identity_secret);
    expect(text).not.toContain(TURNSTILE_SECRET);
    expect(text).not.toContain(t.tenant_id);
    expect(await redis.getJson(`ce:v2:tenant:${t.tenant_id}`)).toBeUndefined();
  });

  it("merges concurrent lookups of a cold key into one trip to Postgres", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const isolate = anotherIsolate();
    const s0 = await relaySessions();
    const answers = await Promise.all(Array.from({ length: 60 }, () => callOn(isolate, "/v1/config", key)));
    expect(answers.map((r) => r.status)).toEqual(Array(60).fill(200));
    // One session for the key, one for the tenant; unmerged, each of the 60 would open its own.
    expect((await relaySessions()) - s0).toBeLessThanOrEqual(4);
  });

  it("sees an admin update at once", async () => {
    const t = await createTenant({ custom_greeting: "old greeting" });
    const { key } = await createKey(t.tenant_id);
    expect(((await (await send("GET", "/v1/config", key)).json()) as { greeting: string }).greeting).toBe(
      "old greeting",
    );
    await admin("PATCH", `/tenants/${t.tenant_id}`, { custom_greeting: "new greeting" });
    expect(((await (await send("GET", "/v1/config", key)).json()) as { greeting: string }).greeting).toBe(
      "new greeting",
    );
    // And so does an isolate that never cached the old one, reading through Redis.
    expect(((await (await callWith({}, "/v1/config", key)).json()) as { greeting: string }).greeting).toBe(
      "new greeting",
    );
  });

  it("serves from Postgres when Redis is gone", async () => {
    const t = await createTenant({ custom_greeting: "no redis needed" });
    const { key } = await createKey(t.tenant_id);
    const started = Date.now();
    const res = await callWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" }, "/v1/config", key);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { greeting: string }).greeting).toBe("no redis needed");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("gives up on a hanging Redis within the timeout and serves from Postgres", async () => {
    const t = await createTenant({ custom_greeting: "slow redis" });
    const { key } = await createKey(t.tenant_id);
    const hang = `http://127.0.0.1:${env.HANG_PORT}`;
    const started = Date.now();
    const res = await callWith({ UPSTASH_REDIS_REST_URL: hang, REDIS_TIMEOUT_MS: "200" }, "/v1/config", key);
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { greeting: string }).greeting).toBe("slow redis");
    // One Redis timeout (200 ms), then the outage cool-down skips Redis for the rest of the request.
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(3_000);
  });

  it("reports Redis as down in readiness but stays ready on Postgres", async () => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}/readyz`),
      { ...env, UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      ok: true,
      postgres: { ok: true },
      redis: { ok: false, configured: true },
    });
  });

  it("reports Postgres down as not ready", async () => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}/readyz`),
      {
        ...env,
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing",
      },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ok: false, postgres: { ok: false } });
  });
});
