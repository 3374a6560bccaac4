import { z } from "zod";
import type { GlobalGate } from "./admission/global-gate";
import type { TenantGate } from "./admission/tenant-gate";
import { GLOBAL_LIMIT_PER_MINUTE } from "./admission/types";
import type { AnalyticsEvent } from "./analytics/events";

/** Bindings that are not plain strings: Durable Object namespaces, queues, AI. */
export interface Bindings {
  /** Analytics events (src/analytics/events.ts), written to Postgres by the queue consumer. */
  ANALYTICS_QUEUE?: Queue<AnalyticsEvent>;
  /** One admission gate per tenant (src/admission). */
  TENANT_GATE?: DurableObjectNamespace<TenantGate>;
  /** Leases the global rate limit to tenant gates. */
  GLOBAL_GATE?: DurableObjectNamespace<GlobalGate>;
  /** Workers AI; only works with a Cloudflare account (deployed, or `wrangler dev --remote`). */
  AI?: Ai;
  /** Escalation transcripts and alert notifications, delivered by email or webhook off the request path. */
  NOTIFY_QUEUE?: Queue<unknown>;
  /** Cloudflare's send_email binding; wrangler dev simulates it (logs the email). */
  SEND_EMAIL?: SendEmail;
  CONVERSATION?: DurableObjectNamespace<import("./chat/conversation-do").Conversation>;
}

const intVar = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;
/** OPENAI_COMPAT_PROVIDERS: {"groq": {"baseUrl": "https://api.groq.com/openai/v1", "apiKeyVar": "GROQ_API_KEY"}}. */
const CompatProviders = z.preprocess(
  (v) => {
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v);
    } catch {
      return v; // fails the record check below with a message naming the variable
    }
  },
  z.record(
    z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "provider names are [a-z0-9-]"),
    z.object({ baseUrl: z.url(), apiKeyVar: z.string().regex(ENV_NAME).optional() }),
    { error: "OPENAI_COMPAT_PROVIDERS must be a JSON object of name -> {baseUrl, apiKeyVar?}" },
  ),
);

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
  /** Sender address of notification emails (a domain with Cloudflare Email Routing in production). */
  EMAIL_FROM: z.string().min(3).max(320).optional(),
  /** Where notifications are POSTed when email is not configured; signed with NOTIFY_WEBHOOK_SECRET. */
  NOTIFY_WEBHOOK_URL: z.url().optional(),
  NOTIFY_WEBHOOK_SECRET: z.string().min(16).optional(),
  ENVIRONMENT: z.enum(["production", "development", "test"]).default("production"),
  MAX_BODY_BYTES: intVar(64 * 1024, 1024, 10 * 1024 * 1024),
  ISOLATE_CACHE_TTL_MS: intVar(5_000, 0, 600_000),
  REDIS_CACHE_TTL_SECONDS: intVar(300, 1, 86_400),
  /** How long Redis keeps a config copy to serve when Postgres is down (stale if error). */
  REDIS_STALE_TTL_SECONDS: intVar(86_400, 1, 30 * 86_400),
  REDIS_TIMEOUT_MS: intVar(150, 10, 10_000),
  /** Messages per minute across all tenants (src/admission). */
  GLOBAL_LIMIT_PER_MINUTE: intVar(GLOBAL_LIMIT_PER_MINUTE, 1, 1_000_000_000),
  OPENAI_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.url().default("https://api.openai.com/v1"),
  ANTHROPIC_BASE_URL: z.url().default("https://api.anthropic.com"),
  OPENAI_COMPAT_PROVIDERS: CompatProviders.default({}),
  /** Longest silence from a provider: until its first byte, then between chunks. */
  PROVIDER_TIMEOUT_MS: intVar(30_000, 100, 600_000),
  PROVIDER_MAX_RETRIES: intVar(2, 0, 10),
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
