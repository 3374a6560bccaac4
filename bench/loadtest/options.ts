/** What a load test run is given, and the settings it runs with once defaults are filled in. */

/** The platform's default global limit (src/admission/types.ts); passed explicitly so the check knows it. */
export const DEFAULT_GLOBAL_LIMIT = 10_000;

export interface LoadtestOptions {
  /** Number of tenants; their limits vary by index (see `profileOf`). */
  tenants: number;
  /** Concurrent visitors, spread round-robin over the tenants; each holds one conversation at a time. */
  visitors: number;
  /** How long visitors start new messages; conversations open at the deadline are ended after it. */
  durationSec: number;
  /** Messages per conversation (a refusal counts as one; a conversation-cost refusal ends it early). */
  turnsPerConversation: number;
  /** Longest pause before each message, uniformly random from 0 (desynchronizes the visitors). */
  thinkMs?: number;
  /** Visitors arrive spread evenly over this long (default 5 s, at most a quarter of the run). */
  rampUpSec?: number;
  /** GLOBAL_LIMIT_PER_MINUTE given to the worker, and checked. */
  globalLimitPerMinute?: number;
  /** Server root, without a database (default BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432). */
  postgresUrl?: string;
  redisUrl?: string;
  /** How long to wait for settlements and the analytics queue after the load (default 120 s). */
  drainTimeoutSec?: number;
  /** Any single request slower than this counts as a network error (default 60 s). */
  requestTimeoutMs?: number;
  /** Keep the database chatedge_loadtest_<pid> afterwards, for inspection. */
  keepDatabase?: boolean;
  log?: (msg: string) => void;
}

/** The options of a run with every default filled in (the report repeats them). */
export type Settings = Required<Omit<LoadtestOptions, "log" | "postgresUrl" | "redisUrl">>;

export function settingsOf(input: LoadtestOptions): Settings {
  return {
    tenants: input.tenants,
    visitors: input.visitors,
    durationSec: input.durationSec,
    turnsPerConversation: input.turnsPerConversation,
    thinkMs: input.thinkMs ?? 250,
    rampUpSec: input.rampUpSec ?? 5,
    globalLimitPerMinute: input.globalLimitPerMinute ?? DEFAULT_GLOBAL_LIMIT,
    drainTimeoutSec: input.drainTimeoutSec ?? 120,
    requestTimeoutMs: input.requestTimeoutMs ?? 60_000,
    keepDatabase: input.keepDatabase ?? false,
  };
}
