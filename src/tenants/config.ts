import { eq } from "drizzle-orm";
import { IsolateCache } from "../cache/isolate";
import { apiKeys, type TenantRow, tenants } from "../db/schema";
import { AppError } from "../errors";
import type { Services } from "../services";

/** What the request path needs of a tenant: the row without its timestamps. */
export type TenantConfig = Omit<TenantRow, "createdAt" | "updatedAt">;

/** What auth needs of a key; the hash is compared, never the key. */
export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  kind: "secret" | "publishable";
  hash: string;
  revoked: boolean;
}

/** A cached lookup: the value, or null for a remembered miss. */
export type Found<T> = { value: T | null };

// Isolate-wide caches: they outlive requests on purpose (that is their point). Bounded by entry
// count, and their TTL (ISOLATE_CACHE_TTL_MS, seconds) bounds how stale another isolate can be.
const isolate = {
  tenants: new IsolateCache<Found<TenantConfig>>(2_000, 5_000),
  keys: new IsolateCache<Found<ApiKeyRecord>>(10_000, 5_000),
};
let isolateTtl = 5_000;

/** Where lookups were answered from, for tests and metrics. */
export const configStats = { isolate: 0, redis: 0, postgres: 0, stale: 0 };

const tenantKey = (id: string) => `ce:tenant:${id}`;
const apiKeyKey = (prefix: string) => `ce:key:${prefix}`;

function isolateCaches(ttlMs: number) {
  if (ttlMs !== isolateTtl) {
    isolateTtl = ttlMs;
    isolate.tenants = new IsolateCache(2_000, ttlMs);
    isolate.keys = new IsolateCache(10_000, ttlMs);
  }
  return isolate;
}

/**
 * Reads through isolate memory, then Redis, then Postgres. Misses are remembered only in the
 * isolate: a new key or tenant becomes visible everywhere else on its first lookup. When Postgres
 * cannot answer, the last copy Redis holds is served even past its freshness (up to
 * REDIS_STALE_TTL_SECONDS): a Postgres outage does not stop tenants whose config was ever cached.
 */
export async function readThrough<T>(
  svc: Services,
  mem: IsolateCache<Found<T>>,
  key: string,
  load: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const entry = mem.peek(key);
  if (entry?.fresh) {
    configStats.isolate++;
    return entry.value.value ?? undefined;
  }
  // Stale while revalidate: one request per key refreshes, the others keep the expired entry.
  if (entry && entry.age < STALE_MS) {
    if (refreshing.has(key)) return entry.value.value ?? undefined;
    refreshing.add(key);
    try {
      return await lookup(svc, mem, key, load);
    } catch {
      return entry.value.value ?? undefined;
    } finally {
      refreshing.delete(key);
    }
  }
  // Nothing cached here yet: one request per key looks it up, the others wait for it to fill the
  // isolate cache, polling on their own timers (another request's promise must not be awaited).
  const since = loading.get(key);
  if (since !== undefined) {
    while (loading.get(key) === since && Date.now() - since < COALESCE_MS) {
      await scheduler.wait(5);
      const h = mem.peek(key);
      if (h) return h.value.value ?? undefined;
    }
  }
  const mine = Date.now();
  loading.set(key, mine);
  try {
    return await lookup(svc, mem, key, load);
  } finally {
    if (loading.get(key) === mine) loading.delete(key);
  }
}

const COALESCE_MS = 3_000;
const loading = new Map<string, number>();
const STALE_MS = 60_000;
const refreshing = new Set<string>();

/**
 * What Redis keeps: the value and until when it is fresh. The key itself lives longer (the stale
 * TTL): a stale copy is never served while Postgres answers, only when it cannot.
 */
interface Stamped<T> {
  v: T;
  freshUntil: number;
}

/**
 * Where Redis keeps a stamped copy: a key of its own, so that an isolate still running the code
 * before stamping (during a gradual deployment) never reads the new format as a config, and the
 * reverse. Invalidation deletes both (`redisKeys`).
 */
const stampedKey = (key: string) => key.replace(/^ce:/, "ce:v2:");

/** Every Redis key a cached lookup may live under, for invalidation. */
export const redisKeys = (key: string) => [key, stampedKey(key)];

const isStamped = <T>(x: unknown): x is Stamped<T> =>
  typeof x === "object" && x !== null && "v" in x && typeof (x as Stamped<T>).freshUntil === "number";

async function lookup<T>(
  svc: Services,
  mem: IsolateCache<Found<T>>,
  key: string,
  load: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const raw = await svc.cache.getJson<unknown>(stampedKey(key));
  const cached = isStamped<T>(raw) ? raw : undefined;
  if (cached && cached.freshUntil > Date.now()) {
    configStats.redis++;
    mem.set(key, { value: cached.v });
    return cached.v;
  }
  configStats.postgres++;
  let loaded: T | undefined;
  try {
    loaded = await load();
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    if (cached) {
      // Postgres cannot answer but Redis remembers what it said last: serve that (stale if error).
      configStats.stale++;
      console.warn(
        JSON.stringify({ msg: "config store unavailable; serving the last known copy", key, error }),
      );
      mem.set(key, { value: cached.v });
      return cached.v;
    }
    // Neither cache had it and Postgres cannot answer: a dependency is down, not a bad request.
    console.error(JSON.stringify({ msg: "config lookup failed", key, error }));
    throw new AppError("UNAVAILABLE", "configuration store unavailable; retry shortly", {
      headers: { "Retry-After": "2" },
    });
  }
  mem.set(key, { value: loaded === undefined ? null : loaded });
  if (loaded !== undefined) {
    const stamped: Stamped<T> = {
      v: loaded,
      freshUntil: Date.now() + svc.env.REDIS_CACHE_TTL_SECONDS * 1000,
    };
    await svc.cache.setJson(
      stampedKey(key),
      stamped,
      Math.max(svc.env.REDIS_STALE_TTL_SECONDS, svc.env.REDIS_CACHE_TTL_SECONDS),
    );
  }
  return loaded;
}

/** The tenant's configuration, active or not; undefined when no such tenant exists. */
export function getTenantConfig(svc: Services, tenantId: string): Promise<TenantConfig | undefined> {
  const mem = isolateCaches(svc.env.ISOLATE_CACHE_TTL_MS).tenants;
  return readThrough(svc, mem, tenantKey(tenantId), async () => {
    const [row] = await svc.dbh.db.select().from(tenants).where(eq(tenants.id, tenantId)).limit(1);
    if (!row) return undefined;
    const { createdAt: _c, updatedAt: _u, ...config } = row;
    return config;
  });
}

/** The key record behind a prefix, found through the unique prefix index. */
export function findApiKey(svc: Services, prefix: string): Promise<ApiKeyRecord | undefined> {
  const mem = isolateCaches(svc.env.ISOLATE_CACHE_TTL_MS).keys;
  return readThrough(svc, mem, apiKeyKey(prefix), async () => {
    const [row] = await svc.dbh.db
      .select({
        id: apiKeys.id,
        tenantId: apiKeys.tenantId,
        kind: apiKeys.kind,
        hash: apiKeys.hash,
        revokedAt: apiKeys.revokedAt,
      })
      .from(apiKeys)
      .where(eq(apiKeys.prefix, prefix))
      .limit(1);
    if (!row) return undefined;
    return {
      id: row.id,
      tenantId: row.tenantId,
      kind: row.kind,
      hash: row.hash,
      revoked: row.revokedAt !== null,
    };
  });
}

/** Drops a tenant's cached config here and in Redis; called after the Postgres write commits. */
export async function invalidateTenant(svc: Services, tenantId: string): Promise<void> {
  isolate.tenants.delete(tenantKey(tenantId));
  await svc.cache.del(...redisKeys(tenantKey(tenantId)));
}

/** Drops a key's cached record here and in Redis. */
export async function invalidateApiKey(svc: Services, prefix: string): Promise<void> {
  isolate.keys.delete(apiKeyKey(prefix));
  await svc.cache.del(...redisKeys(apiKeyKey(prefix)));
}

/** Empties the isolate caches; tests use it to force the Redis and Postgres paths. */
export function clearIsolateCaches(): void {
  isolate.tenants.clear();
  isolate.keys.clear();
}
