import type { Env } from "../env";
import { UpstashRest } from "./upstash";

/** How long Redis is skipped after it failed, so an outage costs one timeout, not one per request. */
const COOLDOWN_MS = 5_000;

/**
 * Redis as a cache and nothing more: every call answers within the configured timeout and a
 * failure reads as a miss, so losing Redis costs latency, never correctness.
 */
export class Cache {
  readonly #redis: UpstashRest | undefined;
  // There is one Cache per env object, that is per isolate (services.ts), so an outage noted here
  // is skipped by every request the isolate serves.
  #skipUntil = 0;

  constructor(env: Env) {
    if (env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN) {
      this.#redis = new UpstashRest({
        url: env.UPSTASH_REDIS_REST_URL,
        token: env.UPSTASH_REDIS_REST_TOKEN,
        timeoutMs: env.REDIS_TIMEOUT_MS,
      });
    }
  }

  /** True when Redis is configured and not in its cool-down after a failure. */
  get available(): boolean {
    return this.#redis !== undefined && Date.now() >= this.#skipUntil;
  }

  /** Runs a Redis call; on any failure notes the outage and answers `fallback`. */
  async run<T>(fallback: T, call: (redis: UpstashRest) => Promise<T>): Promise<T> {
    const redis = this.#redis;
    if (!redis || Date.now() < this.#skipUntil) return fallback;
    try {
      return await call(redis);
    } catch (err) {
      this.#skipUntil = Date.now() + COOLDOWN_MS;
      console.warn(JSON.stringify({ msg: "redis unavailable, falling back", error: String(err) }));
      return fallback;
    }
  }

  /** Reads a JSON value; a miss, a parse error or an outage all answer undefined. */
  async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.run<string | null>(null, (r) => r.get(key));
    if (raw === null || raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return undefined;
    }
  }

  async setJson(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    await this.run(null, (r) => r.set(key, JSON.stringify(value), { ex: ttlSeconds }));
  }

  async del(...keys: string[]): Promise<void> {
    if (keys.length > 0) await this.run(0, (r) => r.del(...keys));
  }

  /** PING with the same timeout; for readiness checks. */
  async ping(): Promise<boolean> {
    if (!this.#redis) return false;
    try {
      return (await this.#redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }
}
