/**
 * The named read-through cache on its own, against the real Redis, with a loader standing in for
 * Postgres. Each `isolate()` is a new environment object, which to the cache is another isolate:
 * its own memory, the same Redis.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cacheStats } from "../../../src/cache/stats";
import { namedCache } from "../../../src/cache/tiered";
import { loadEnv, type RawEnv } from "../../../src/env";
import { AppError } from "../../../src/errors";
import { newServices, type Services } from "../../../src/services";
import { uniqueId } from "../helpers";

function isolate(overrides: Partial<RawEnv> = {}): Services {
  const loaded = loadEnv({ ...env, ...overrides });
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return newServices(loaded.env);
}

/** A named cache whose loader answers from `rows` (or throws while `down`), counting its calls. */
function fixture(rows: Map<string, string>, opts: { name?: string; sealed?: boolean } = {}) {
  const state = { loads: 0, down: false };
  const cache = namedCache<{ text: string }>(
    opts.name ?? "unit",
    100,
    async (_svc, id) => {
      state.loads++;
      await scheduler.wait(20); // long enough for concurrent lookups to overlap
      if (state.down) throw new Error("connection refused");
      const text = rows.get(id);
      return text === undefined ? undefined : { text };
    },
    { sealed: opts.sealed },
  );
  return { cache, state };
}

describe("named cache: isolate -> Redis -> loader", () => {
  it("reads through once, then answers from the isolate, and another isolate from Redis", async () => {
    const id = uniqueId("row");
    const { cache, state } = fixture(new Map([[id, "one"]]));
    const a = isolate();
    expect(await cache.get(a, id)).toEqual({ text: "one" });
    expect(state.loads).toBe(1);
    const before = { ...cacheStats };
    expect(await cache.get(a, id)).toEqual({ text: "one" });
    expect(cacheStats.isolate).toBe(before.isolate + 1);
    expect(await cache.get(isolate(), id)).toEqual({ text: "one" });
    expect(cacheStats.redis).toBe(before.redis + 1);
    expect(state.loads).toBe(1);
    const stamped = await a.cache.getJson<{ v: unknown; freshUntil: number }>(`ce:v2:unit:${id}`);
    expect(stamped?.v).toEqual({ text: "one" });
    expect(stamped?.freshUntil).toBeGreaterThan(Date.now());
  });

  it("remembers a miss in the isolate only", async () => {
    const id = uniqueId("absent");
    const { cache, state } = fixture(new Map());
    const a = isolate();
    expect(await cache.get(a, id)).toBeUndefined();
    expect(await cache.get(a, id)).toBeUndefined();
    expect(state.loads).toBe(1);
    expect(await a.cache.getJson(`ce:v2:unit:${id}`)).toBeUndefined();
    expect(await cache.get(isolate(), id)).toBeUndefined();
    expect(state.loads).toBe(2);
  });

  it("merges concurrent lookups of a cold id into one load", async () => {
    const id = uniqueId("row");
    const { cache, state } = fixture(new Map([[id, "one"]]));
    const a = isolate();
    const answers = await Promise.all(Array.from({ length: 20 }, () => cache.get(a, id)));
    expect(answers).toEqual(Array(20).fill({ text: "one" }));
    expect(state.loads).toBe(1);
  });

  it("keeps nothing in the isolate with ISOLATE_CACHE_TTL_MS=0", async () => {
    const id = uniqueId("row");
    const { cache, state } = fixture(new Map([[id, "one"]]));
    const a = isolate({ ISOLATE_CACHE_TTL_MS: "0" });
    await cache.get(a, id);
    const before = { ...cacheStats };
    await cache.get(a, id);
    expect(cacheStats.redis).toBe(before.redis + 1);
    expect(cacheStats.isolate).toBe(before.isolate);
    expect(state.loads).toBe(1);
  });

  it("invalidates in the isolate and in Redis, both formats", async () => {
    const id = uniqueId("row");
    const rows = new Map([[id, "old"]]);
    const { cache, state } = fixture(rows);
    const a = isolate();
    expect(await cache.get(a, id)).toEqual({ text: "old" });
    await a.cache.setJson(`ce:unit:${id}`, { text: "older deployment" }, 60);
    rows.set(id, "new");
    await cache.invalidate(a, id);
    expect(await a.cache.getJson(`ce:unit:${id}`)).toBeUndefined();
    expect(await a.cache.getJson(`ce:v2:unit:${id}`)).toBeUndefined();
    expect(await cache.get(a, id)).toEqual({ text: "new" });
    expect(state.loads).toBe(2);
  });

  it("serves a stale Redis copy only while the loader fails, and 503s with nothing to serve", async () => {
    const id = uniqueId("row");
    const { cache, state } = fixture(new Map([[id, "current"]]));
    const a = isolate();
    await a.cache.setJson(`ce:v2:unit:${id}`, { v: { text: "last known" }, freshUntil: Date.now() - 1 }, 60);

    state.down = true;
    const before = { ...cacheStats };
    expect(await cache.get(isolate(), id)).toEqual({ text: "last known" });
    expect(cacheStats.stale).toBe(before.stale + 1);

    state.down = false;
    expect(await cache.get(isolate(), id)).toEqual({ text: "current" });
    expect(cacheStats.stale).toBe(before.stale + 1);

    state.down = true;
    const err = await cache.get(isolate(), uniqueId("never-cached")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: "UNAVAILABLE", status: 503 });
  });

  it("a sealed cache keeps no value in the clear: another isolate opens it; a copy tampered, moved or sealed under another admin token is a miss", async () => {
    const [id, other] = [uniqueId("row"), uniqueId("row")];
    const secret = `whsec_${uniqueId("s")}`;
    const { cache, state } = fixture(
      new Map([
        [id, secret],
        [other, "the other row"],
      ]),
      { name: "unit-sealed", sealed: true },
    );
    const a = isolate();
    expect(await cache.get(a, id)).toEqual({ text: secret });
    const key = `ce:v4:unit-sealed:${id}`;
    const raw = await a.cache.getJson<{ s: string; freshUntil: number }>(key);
    expect(typeof raw?.s).toBe("string");
    expect(raw?.freshUntil).toBeGreaterThan(Date.now());
    expect(JSON.stringify(raw)).not.toContain(secret);
    expect(await a.cache.getJson(`ce:v2:unit-sealed:${id}`)).toBeUndefined();

    // Another isolate opens it from Redis, with no load.
    const before = { ...cacheStats };
    expect(await cache.get(isolate(), id)).toEqual({ text: secret });
    expect(cacheStats.redis).toBe(before.redis + 1);
    expect(state.loads).toBe(1);

    // Sealed under another admin token: a miss, loaded again.
    expect(await cache.get(isolate({ ADMIN_TOKEN: "another-admin-token-0123456789" }), id)).toEqual({
      text: secret,
    });
    expect(state.loads).toBe(2);

    // One character of the ciphertext changed: a miss.
    const s = raw?.s ?? "";
    const flipped = `${s.slice(0, 20)}${s[20] === "A" ? "B" : "A"}${s.slice(21)}`;
    await a.cache.setJson(key, { s: flipped, freshUntil: Date.now() + 60_000 }, 60);
    expect(await cache.get(isolate(), id)).toEqual({ text: secret });
    expect(state.loads).toBe(3);

    // The same copy stored again as fresh for longer does not open.
    const later = await a.cache.getJson<{ s: string; freshUntil: number }>(key);
    await a.cache.setJson(key, { s: later?.s, freshUntil: (later?.freshUntil ?? 0) + 3_600_000 }, 60);
    expect(await cache.get(isolate(), id)).toEqual({ text: secret });
    expect(state.loads).toBe(4);

    // This row's copy put under another row's key does not open there.
    const fresh = await a.cache.getJson<{ s: string; freshUntil: number }>(key);
    await a.cache.setJson(`ce:v4:unit-sealed:${other}`, fresh, 60);
    expect(await cache.get(isolate(), other)).toEqual({ text: "the other row" });
    expect(state.loads).toBe(5);

    // A value in the clear where a sealed one belongs is not read either.
    await a.cache.setJson(key, { v: { text: "planted" }, freshUntil: Date.now() + 60_000 }, 60);
    expect(await cache.get(isolate(), id)).toEqual({ text: secret });
    expect(state.loads).toBe(6);

    // A copy an earlier deployment kept in the clear goes with the first sealed write.
    await a.cache.setJson(
      `ce:v2:unit-sealed:${id}`,
      { v: { text: secret }, freshUntil: Date.now() + 60_000 },
      60,
    );
    await a.cache.del(key);
    expect(await cache.get(isolate(), id)).toEqual({ text: secret });
    expect(await a.cache.getJson(`ce:v2:unit-sealed:${id}`)).toBeUndefined();

    // Invalidation drops every format.
    await cache.invalidate(a, id);
    expect(await a.cache.getJson(key)).toBeUndefined();
  });

  it("seals a value too long to spread as arguments", async () => {
    const id = uniqueId("row");
    const long = "x".repeat(300_000);
    const { cache } = fixture(new Map([[id, long]]), { name: "unit-sealed", sealed: true });
    expect(await cache.get(isolate(), id)).toEqual({ text: long });
    expect(await cache.get(isolate(), id)).toEqual({ text: long });
  });
});
