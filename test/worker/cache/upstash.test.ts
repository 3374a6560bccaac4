/**
 * The platform's Upstash REST client (src/cache/upstash.ts) against the local bridge, which speaks
 * Upstash's protocol to the real Redis (local/upstash-bridge.ts): each command the platform sends,
 * pipelines, and Redis's own errors thrown (the Cache turns a throw into a miss).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { UpstashRest } from "../../../src/cache/upstash";
import { uniqueId } from "../helpers";

const client = (token = env.UPSTASH_REDIS_REST_TOKEN as string, timeoutMs = 2_000) =>
  new UpstashRest({ url: env.UPSTASH_REDIS_REST_URL as string, token, timeoutMs });

describe("Upstash REST client", () => {
  it("sends the platform's commands and reads their answers", async () => {
    const r = client();
    const [a, b] = [uniqueId("ce:test:a"), uniqueId("ce:test:b")];
    expect(await r.ping()).toBe("PONG");
    expect(await r.get(a)).toBeNull();
    expect(await r.set(a, '{"x":"é ✓"}', { ex: 60 })).toBe("OK");
    expect(await r.get(a)).toBe('{"x":"é ✓"}');
    // NX: a second writer does not replace the first.
    expect(await r.set(a, "other", { ex: 60, nx: true })).toBeNull();
    expect(await r.mget(a, b)).toEqual(['{"x":"é ✓"}', null]);
    expect(await r.ttl(a)).toBeGreaterThan(50);
    const [count, set] = await r.pipeline().incr(b).expire(b, 120).exec<[number, number]>();
    expect([count, set]).toEqual([1, 1]);
    expect(await r.ttl(b)).toBeGreaterThan(100);
    let cursor = "0";
    const seen: string[] = [];
    do {
      const [next, keys] = await r.scan(cursor, { match: `${a}*`, count: 1_000 });
      seen.push(...keys);
      cursor = next;
    } while (cursor !== "0");
    expect(seen).toEqual([a]);
    expect(await r.del(a, b)).toBe(2);
    expect(await r.pipeline().exec()).toEqual([]);
  });

  it("throws Redis's errors, a pipeline's included, and a refused token", async () => {
    const r = client();
    const key = uniqueId("ce:test:s");
    await r.set(key, "not a number", { ex: 60 });
    await expect(r.pipeline().incr(key).expire(key, 60).exec()).rejects.toThrow(/upstash: .*integer/i);
    await expect(client("wrong-token").get(key)).rejects.toThrow(/upstash/);
    await r.del(key);
  });
});
