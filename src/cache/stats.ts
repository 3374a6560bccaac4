/**
 * Where configuration lookups were answered from, across every named cache of this isolate
 * (src/cache/tiered.ts counts, `GET /admin/metrics` shows). A module of its own, with no imports,
 * so the metrics code does not load the cache.
 */
export const cacheStats = { isolate: 0, redis: 0, postgres: 0, stale: 0 };
