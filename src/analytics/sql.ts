import type { SQL } from "drizzle-orm";

/**
 * What the analytics writers need from a database: run a statement, and run statements in a
 * transaction. drizzle over the Neon driver (the worker) and over `pg` (seeding, bench) both fit,
 * so the consumer's SQL is the one code path everywhere.
 */
export interface SqlExecutor {
  execute(query: SQL): PromiseLike<{ rows: Record<string, unknown>[] }>;
}

/** A database that can also open transactions. */
export interface AnalyticsDb extends SqlExecutor {
  transaction<T>(run: (tx: SqlExecutor) => Promise<T>): Promise<T>;
}

/** The SQLSTATE of a driver error, looking through drizzle's wrapper; undefined for network failures. */
export function sqlState(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The innermost error message: drizzle's own message carries the statement's parameters (event data). */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4; depth++) {
    const cause = e !== null && typeof e === "object" ? (e as { cause?: unknown }).cause : undefined;
    if (cause === undefined || cause === null) break;
    e = cause;
  }
  const message = e !== null && typeof e === "object" ? (e as { message?: unknown }).message : undefined;
  const text = typeof message === "string" && message !== "" ? message : String(e);
  return text.replaceAll("\u0000", "").slice(0, 500);
}
