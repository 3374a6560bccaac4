import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type { Env } from "../env";
import { errorSummary } from "../errors";
import * as schema from "./schema";

export type Db = NeonDatabase<typeof schema>;

/** A per-request database handle: the pool opens on first use and is closed by `close()`. */
export interface DbHandle {
  readonly db: Db;
  /** True once a query has opened the pool. */
  readonly used: boolean;
  close(): Promise<void>;
}

// The relay the driver was last pointed at: the settings are module-wide, set once, not per request.
let configuredProxy: string | undefined;

/** Points the Neon driver at a local WebSocket relay in development; production uses Neon's proxy. */
function configureDriver(env: Env): void {
  if (!env.NEON_WS_PROXY || env.NEON_WS_PROXY === configuredProxy) return;
  const proxy = env.NEON_WS_PROXY;
  configuredProxy = proxy;
  neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
}

/**
 * Opens drizzle over the Neon serverless driver (WebSocket mode, so transactions work).
 * Workers cannot share sockets between requests, so every request gets its own pool, opened
 * only when a handler first touches `db` (cached config answers most requests without it).
 */
export function openDb(env: Env): DbHandle {
  configureDriver(env);
  let pool: Pool | undefined;
  let db: Db | undefined;
  let closing = false;
  return {
    get db() {
      if (!db) {
        pool = new Pool({
          connectionString: env.DATABASE_URL,
          max: env.PG_POOL_MAX,
          connectionTimeoutMillis: 5_000,
        });
        // An idle connection that drops (the proxy restarted, Postgres went away) must not crash
        // the isolate; once we are closing the pool ourselves such errors are expected and quiet.
        pool.on("error", (err: Error) => {
          if (!closing)
            console.warn(
              JSON.stringify({ msg: "postgres idle connection error", ...errorSummary(causeOf(err)) }),
            );
        });
        db = drizzle({ client: pool, schema });
      }
      return db;
    },
    get used() {
      return pool !== undefined;
    },
    async close() {
      closing = true;
      if (pool) await pool.end().catch(() => {});
    },
  };
}

/** The driver reports socket failures as ErrorEvents, whose error hides in `.error`. */
function causeOf(err: unknown): unknown {
  if (err instanceof Error) return err;
  return (err as { error?: unknown }).error ?? err;
}
