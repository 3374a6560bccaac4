/**
 * The tiered read-through cache behind every configuration lookup on the request path: isolate
 * memory, then Redis, then the loader (Postgres). A feature declares a named cache once (its name,
 * its size, its loader) and reads and invalidates through it; the tiers, request coalescing,
 * stale-while-revalidate and stale-if-error live here and nowhere else.
 */
import type { Env } from "../env";
import { AppError, errorSummary } from "../errors.ts";
import type { Services } from "../services";
import { IsolateCache } from "./isolate.ts";
import { seal, unseal } from "./seal.ts";
import { cacheStats } from "./stats.ts";

/** A named read-through cache: isolate memory, then Redis, then its loader. */
export interface NamedCache<T> {
  /** The value under `id`; undefined when the loader knows of none (remembered in the isolate only). */
  get(svc: Services, id: string): Promise<T | undefined>;
  /** What this isolate or Redis holds for `id`, never asking the loader (for callers kept off Postgres). */
  cached(svc: Services, id: string): Promise<T | undefined>;
  /** The value this isolate holds fresh for `id`, with no I/O; undefined for anything else. */
  fresh(svc: Services, id: string): T | undefined;
  /** Drops `id` from this isolate and from Redis; called after the Postgres write commits. */
  invalidate(svc: Services, id: string): Promise<void>;
}

/** How long concurrent lookups of a cold key wait for the one that went to Redis or Postgres. */
const COALESCE_MS = 3_000;
/** How long past its TTL an isolate entry is still served while one request refreshes it. */
const STALE_MS = 60_000;

/** A cached lookup: the value, or null for a remembered miss. */
type Found<T> = { value: T | null };

/** One isolate's memory of one named cache: the entries and the lookups under way. */
interface Memory<T> {
  ttlMs: number;
  entries: IsolateCache<Found<T>>;
  /** Keys being looked up cold, with when the lookup started. */
  loading: Map<string, number>;
  /** Keys whose expired entry one request is refreshing. */
  refreshing: Set<string>;
}

/**
 * What Redis keeps: the value and until when it is fresh. The key itself lives longer (the stale
 * TTL): a stale copy is never served while Postgres answers, only when it cannot.
 */
interface Stamped<T> {
  v: T;
  freshUntil: number;
}

const isStamped = <T>(x: unknown): x is Stamped<T> =>
  typeof x === "object" && x !== null && "v" in x && typeof (x as Stamped<T>).freshUntil === "number";

/** A sealed cache's copy in Redis: the value sealed (./seal.ts), its freshness in the clear. */
interface Sealed {
  s: string;
  freshUntil: number;
}

const isSealed = (x: unknown): x is Sealed =>
  typeof x === "object" &&
  x !== null &&
  typeof (x as Sealed).s === "string" &&
  typeof (x as Sealed).freshUntil === "number";

/**
 * Declares the cache `name`: its entries live in Redis under `ce:v2:<name>:<id>` as stamped copies
 * (a key of their own, so that an isolate still running the code from before stamping, during a
 * gradual deployment, never reads the new format, nor the reverse); invalidation also deletes the
 * older `ce:<name>:<id>`. A `sealed` cache (values holding secrets) keeps them under
 * `ce:v4:<name>:<id>`, sealed (./seal.ts): Redis never holds the value in the clear, and a copy
 * that does not open is a miss. Misses are remembered only in the isolate: a new row becomes visible
 * everywhere else on its first lookup. When the loader fails, the last copy Redis holds is served
 * even past its freshness (up to REDIS_STALE_TTL_SECONDS): a Postgres outage does not stop what
 * was ever cached.
 */
export function namedCache<T>(
  name: string,
  maxEntries: number,
  load: (svc: Services, id: string) => Promise<T | undefined>,
  { sealed = false }: { sealed?: boolean } = {},
): NamedCache<T> {
  const legacyKey = (id: string) => `ce:${name}:${id}`;
  const stampedKey = (id: string) => `ce:v2:${name}:${id}`;
  // v3 was the first sealed format (its freshness not bound in): neither version opens the other's.
  const firstSealedKey = (id: string) => `ce:v3:${name}:${id}`;
  const sealedKey = (id: string) => `ce:v4:${name}:${id}`;
  const redisKey = sealed ? sealedKey : stampedKey;

  /** Redis's copy of `id`, opened when sealed; undefined when there is none or it does not open. */
  async function fromRedis(svc: Services, id: string): Promise<Stamped<T> | undefined> {
    const key = redisKey(id);
    const raw = await svc.cache.getJson<unknown>(key);
    if (!sealed) return isStamped<T>(raw) ? raw : undefined;
    if (!isSealed(raw)) return undefined;
    // Its freshness is sealed in with it: a copy stored again with a later one does not open.
    const v = await unseal<T>(svc.env, `${key} ${raw.freshUntil}`, raw.s);
    return v === undefined ? undefined : { v, freshUntil: raw.freshUntil };
  }

  async function toRedis(svc: Services, id: string, v: T): Promise<void> {
    if (!svc.cache.available) return;
    const key = redisKey(id);
    const freshUntil = Date.now() + svc.env.REDIS_CACHE_TTL_SECONDS * 1000;
    const ttl = Math.max(svc.env.REDIS_STALE_TTL_SECONDS, svc.env.REDIS_CACHE_TTL_SECONDS);
    if (!sealed) {
      await svc.cache.setJson(key, { v, freshUntil } satisfies Stamped<T>, ttl);
      return;
    }
    const s = await seal(svc.env, `${key} ${freshUntil}`, v);
    // The copy an earlier deployment kept in the clear goes with the first sealed one.
    await Promise.all([
      svc.cache.setJson(key, { s, freshUntil } satisfies Sealed, ttl),
      svc.cache.del(stampedKey(id), firstSealedKey(id)),
    ]);
  }

  // Isolate-wide on purpose (that is the point of the first tier), one memory per env object:
  // workerd hands every request of an isolate the same env, and a fresh env starts empty. Bounded
  // by maxEntries; ISOLATE_CACHE_TTL_MS bounds how stale it can be against another isolate.
  const memories = new WeakMap<Env, Memory<T>>();
  const memoryOf = (env: Env): Memory<T> => {
    let m = memories.get(env);
    if (!m || m.ttlMs !== env.ISOLATE_CACHE_TTL_MS) {
      const ttlMs = env.ISOLATE_CACHE_TTL_MS;
      m = { ttlMs, entries: new IsolateCache(maxEntries, ttlMs), loading: new Map(), refreshing: new Set() };
      memories.set(env, m);
    }
    return m;
  };

  /** Redis, then the loader; fills the isolate memory with whatever answered. */
  async function lookup(svc: Services, mem: Memory<T>, id: string): Promise<T | undefined> {
    const cached = await fromRedis(svc, id);
    if (cached && cached.freshUntil > Date.now()) {
      cacheStats.redis++;
      mem.entries.set(id, { value: cached.v });
      return cached.v;
    }
    cacheStats.postgres++;
    let loaded: T | undefined;
    try {
      loaded = await load(svc, id);
    } catch (err) {
      const key = legacyKey(id);
      // Class and SQLSTATE only: a failed query's message carries its parameters.
      const error = errorSummary(err);
      if (cached) {
        // Postgres cannot answer but Redis remembers what it said last: serve that (stale if error).
        cacheStats.stale++;
        console.warn(
          JSON.stringify({ msg: "config store unavailable; serving the last known copy", key, error }),
        );
        mem.entries.set(id, { value: cached.v });
        return cached.v;
      }
      // Neither cache had it and Postgres cannot answer: a dependency is down, not a bad request.
      console.error(JSON.stringify({ msg: "config lookup failed", key, error }));
      throw new AppError("UNAVAILABLE", "configuration store unavailable; retry shortly", {
        headers: { "Retry-After": "2" },
      });
    }
    mem.entries.set(id, { value: loaded === undefined ? null : loaded });
    if (loaded !== undefined) await toRedis(svc, id, loaded);
    return loaded;
  }

  return {
    async get(svc, id) {
      const mem = memoryOf(svc.env);
      const entry = mem.entries.peek(id);
      if (entry?.fresh) {
        cacheStats.isolate++;
        return entry.value.value ?? undefined;
      }
      // Stale while revalidate: one request per id refreshes, the others keep the expired entry.
      if (entry && entry.age < STALE_MS) {
        if (mem.refreshing.has(id)) return entry.value.value ?? undefined;
        mem.refreshing.add(id);
        try {
          return await lookup(svc, mem, id);
        } catch {
          return entry.value.value ?? undefined;
        } finally {
          mem.refreshing.delete(id);
        }
      }
      // Nothing cached here yet: one request per id looks it up, the others wait for it to fill
      // the isolate memory, polling on their own timers (another request's promise must not be
      // awaited).
      const since = mem.loading.get(id);
      if (since !== undefined) {
        while (mem.loading.get(id) === since && Date.now() - since < COALESCE_MS) {
          await scheduler.wait(5);
          const hit = mem.entries.peek(id);
          if (hit) return hit.value.value ?? undefined;
        }
      }
      const mine = Date.now();
      mem.loading.set(id, mine);
      try {
        return await lookup(svc, mem, id);
      } finally {
        if (mem.loading.get(id) === mine) mem.loading.delete(id);
      }
    },

    fresh(svc, id) {
      const entry = memoryOf(svc.env).entries.peek(id);
      if (!entry?.fresh || entry.value.value === null) return undefined;
      cacheStats.isolate++;
      return entry.value.value;
    },

    async cached(svc, id) {
      const entry = memoryOf(svc.env).entries.peek(id);
      if (entry && entry.age < STALE_MS) return entry.value.value ?? undefined;
      return (await fromRedis(svc, id))?.v;
    },

    async invalidate(svc, id) {
      memories.get(svc.env)?.entries.delete(id);
      await svc.cache.del(legacyKey(id), stampedKey(id), firstSealedKey(id), sealedKey(id));
    },
  };
}
