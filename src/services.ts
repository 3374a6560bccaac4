import { Cache } from "./cache/redis";
import { type DbHandle, openDb } from "./db/client";
import type { Env } from "./env";

/** The per-request clients, built in one place so handlers never construct their own. */
export interface Services {
  readonly env: Env;
  readonly cache: Cache;
  readonly dbh: DbHandle;
}

// One Redis client per environment object (that is, per isolate): it holds no sockets, only settings.
const caches = new WeakMap<Env, Cache>();

export function newServices(env: Env): Services {
  let cache = caches.get(env);
  if (!cache) {
    cache = new Cache(env);
    caches.set(env, cache);
  }
  return { env, cache, dbh: openDb(env) };
}
