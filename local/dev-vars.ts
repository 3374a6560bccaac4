/**
 * What `npm run dev` hands the worker besides what it started itself: the settings of src/env.ts's
 * EnvSchema (provider keys and URLs, timeouts, notification settings, limits) from the environment,
 * else from `.dev.vars` (wrangler reads no `.dev.vars` once given `--env-file`, so the launcher does).
 * The environment wins over `.dev.vars`; the values the launcher sets win over both.
 */
import { parseEnv } from "node:util";

/** Set by the launcher from what it started (or from its own environment variables, see dev.ts). */
export const LAUNCHER_VARS = [
  "ENVIRONMENT",
  "DATABASE_URL",
  "NEON_WS_PROXY",
  "ADMIN_TOKEN",
  "PG_POOL_MAX",
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "TURNSTILE_SITEVERIFY_URL",
  "TURNSTILE_SCRIPT_URL",
] as const;

/** Declared in wrangler.jsonc's `vars` next to the queue bindings they name: never overridden here. */
export const WRANGLER_VARS = [
  "ANALYTICS_QUEUE_NAME",
  "ANALYTICS_DLQ_NAME",
  "NOTIFY_QUEUE_NAME",
  "KNOWLEDGE_QUEUE_NAME",
] as const;

/** Every other EnvSchema key, passed through; test/local/dev-vars.test.ts keeps the three lists whole. */
export const FORWARDED_VARS = [
  "OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "OPENAI_BASE_URL",
  "ANTHROPIC_BASE_URL",
  "OPENAI_COMPAT_PROVIDERS",
  "PROVIDER_TIMEOUT_MS",
  "PROVIDER_MAX_RETRIES",
  "EMAIL_FROM",
  "NOTIFY_WEBHOOK_URL",
  "NOTIFY_WEBHOOK_SECRET",
  "ESCALATION_NOTICES_PER_HOUR",
  "PUBLIC_BASE_URL",
  "MAX_BODY_BYTES",
  "ISOLATE_CACHE_TTL_MS",
  "REDIS_CACHE_TTL_SECONDS",
  "REDIS_STALE_TTL_SECONDS",
  "REDIS_TIMEOUT_MS",
  "GLOBAL_LIMIT_PER_MINUTE",
  "RETENTION_DAYS_DEFAULT",
  "RETENTION_DAYS_MAX",
  "TURNSTILE_TIMEOUT_MS",
] as const;

type Source = Readonly<Record<string, string | undefined>>;

/** `.dev.vars` in dotenv syntax, as wrangler reads it; an absent file is empty. */
export function parseDevVars(text: string | undefined): Record<string, string | undefined> {
  return text === undefined ? {} : parseEnv(text);
}

/** The key variables OPENAI_COMPAT_PROVIDERS names (`apiKeyVar`); none when it does not parse. */
export function compatKeyVars(json: string | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  if (!json) return out;
  try {
    const parsed = JSON.parse(json) as unknown;
    if (typeof parsed !== "object" || parsed === null) return out;
    for (const [name, p] of Object.entries(parsed as Record<string, { apiKeyVar?: unknown }>)) {
      const keyVar = typeof p?.apiKeyVar === "string" ? p.apiKeyVar : undefined;
      out.set(name, keyVar && /^[A-Z][A-Z0-9_]*$/.test(keyVar) ? keyVar : undefined);
    }
  } catch {
    // the worker refuses to start with a message naming OPENAI_COMPAT_PROVIDERS
  }
  return out;
}

/**
 * The forwarded settings (environment over `.dev.vars`, empty values left out) and notes on what was
 * left out: a launcher-set variable in `.dev.vars` is ignored, and said so.
 */
export function forwardedVars(
  env: Source,
  devVars: Source,
): { vars: Record<string, string>; notes: string[] } {
  // Set in the environment, even empty, it wins: `OPENAI_API_KEY= npm run dev` turns off a .dev.vars key.
  const pick = (name: string) => (env[name] ?? devVars[name]) || undefined;
  const vars: Record<string, string> = {};
  for (const name of FORWARDED_VARS) {
    const v = pick(name);
    if (v) vars[name] = v;
  }
  for (const keyVar of compatKeyVars(vars.OPENAI_COMPAT_PROVIDERS).values()) {
    const v = keyVar && pick(keyVar);
    if (keyVar && v) vars[keyVar] = v;
  }
  const notes = LAUNCHER_VARS.filter((name) => devVars[name] !== undefined).map(
    (name) => `.dev.vars sets ${name}: ignored, npm run dev sets it itself`,
  );
  return { vars, notes };
}

/** One line saying which models the worker can call with these settings, and what the others need. */
export function modelSummary(vars: Source): string {
  const parts = ["mock, mock-slow"];
  parts.push(vars.OPENAI_API_KEY ? "gpt-*, o* (OPENAI_API_KEY set)" : "gpt-*, o* need OPENAI_API_KEY");
  parts.push(
    vars.ANTHROPIC_API_KEY ? "claude-* (ANTHROPIC_API_KEY set)" : "claude-* needs ANTHROPIC_API_KEY",
  );
  for (const [name, keyVar] of compatKeyVars(vars.OPENAI_COMPAT_PROVIDERS)) {
    if (!keyVar) parts.push(`${name}/* (no key needed)`);
    else parts.push(vars[keyVar] ? `${name}/* (${keyVar} set)` : `${name}/* needs ${keyVar}`);
  }
  return `models: ${parts.join("; ")}`;
}

/**
 * The `--env-file` wrangler reads, in dotenv syntax as wrangler parses it: a quoted value is taken
 * literally except that inside double quotes `\n` becomes a newline, and no quote can be escaped.
 * So each value goes in the first quotes it does not contain (a JSON value such as
 * OPENAI_COMPAT_PROVIDERS in single ones); a value no quoting keeps intact is refused by name.
 */
export function envFileText(vars: Readonly<Record<string, string>>): string {
  return Object.entries(vars)
    .map(([name, value]) => {
      const quote = ["'", "`", '"'].find((q) => !value.includes(q) && (q !== '"' || !value.includes("\\")));
      if (!quote)
        throw new Error(`${name}: its value holds every kind of quote; wrangler's env file cannot carry it`);
      return `${name}=${quote}${value}${quote}`;
    })
    .join("\n");
}
