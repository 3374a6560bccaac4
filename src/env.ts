import { z } from "zod";

/** Bindings that are not plain strings: Durable Object namespaces, queues, AI. */
export interface Bindings {
  ANALYTICS_QUEUE?: Queue<unknown>;
}

const intVar = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** Every var and secret the worker reads; parsed once per isolate, failing closed. */
export const EnvSchema = z.object({
  DATABASE_URL: z
    .string({ error: "DATABASE_URL is required (a Neon or local Postgres connection string)" })
    .regex(/^postgres(ql)?:\/\//, "DATABASE_URL must be a postgres:// URL"),
  ADMIN_TOKEN: z
    .string({ error: "ADMIN_TOKEN is required (wrangler secret put ADMIN_TOKEN)" })
    .min(16, "ADMIN_TOKEN must be at least 16 characters"),
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  /** Local development only: host:port/path of a WebSocket relay standing in for Neon's proxy. */
  NEON_WS_PROXY: z.string().min(1).optional(),
  /** Connections per request; local dev on PGlite (one session at a time) sets 1. */
  PG_POOL_MAX: intVar(4, 1, 20),
  ENVIRONMENT: z.enum(["production", "development", "test"]).default("production"),
  MAX_BODY_BYTES: intVar(64 * 1024, 1024, 10 * 1024 * 1024),
  ISOLATE_CACHE_TTL_MS: intVar(5_000, 0, 600_000),
  REDIS_CACHE_TTL_SECONDS: intVar(300, 1, 86_400),
  REDIS_TIMEOUT_MS: intVar(150, 10, 10_000),
});

export type Vars = z.infer<typeof EnvSchema>;

/** The raw environment as workerd hands it over. */
export type RawEnv = Bindings & Record<string, unknown>;

/** The validated environment: parsed vars plus the untouched bindings. */
export type Env = Vars & Bindings;

export type EnvResult = { ok: true; env: Env } | { ok: false; problems: string[] };

// One entry per env object: workerd hands the same object to every request of an isolate.
const parsed = new WeakMap<object, EnvResult>();

/** Validates the environment once per isolate; the problems name keys, never values. */
export function loadEnv(raw: RawEnv): EnvResult {
  const hit = parsed.get(raw);
  if (hit) return hit;
  const result = EnvSchema.safeParse(raw);
  let out: EnvResult;
  if (result.success) {
    const redisHalf =
      Boolean(result.data.UPSTASH_REDIS_REST_URL) !== Boolean(result.data.UPSTASH_REDIS_REST_TOKEN);
    out = redisHalf
      ? { ok: false, problems: ["UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together"] }
      : { ok: true, env: { ...raw, ...result.data } as Env };
  } else {
    out = {
      ok: false,
      problems: result.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`),
    };
  }
  parsed.set(raw, out);
  return out;
}
