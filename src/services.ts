import { Cache } from "./cache/redis";
import { type DbHandle, openDb } from "./db/client";
import type { Env } from "./env";

/** The per-request clients, built in one place so handlers never construct their own. */
export interface Services {
  readonly env: Env;
  readonly cache: Cache;
  readonly dbh: DbHandle;
}

export function newServices(env: Env): Services {
  return { env, cache: new Cache(env), dbh: openDb(env) };
}
