// Where the test suite finds this machine's real services; TEST_POSTGRES_URL and TEST_REDIS_URL override.
/** The Postgres server the tests use; each test run makes its own database there (see global-setup.ts). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_REDIS_TOKEN = "test-redis-token";
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789";
/** The secret the local test tools (local/tools.ts) check signatures with. */
export const TEST_TOOL_SECRET = "tsec_test-tool-secret-0123456789";

/** What global-setup.ts starts for the worker tests and hands over through vitest's `inject`. */
export interface TestServices {
  databaseUrl: string;
  relayPort: number;
  bridgePort: number;
  hangPort: number;
  fakeLlmPort: number;
  turnstilePort: number;
  orderStatusPort: number;
  faultyToolPort: number;
}

/**
 * The vars, secrets and test servers' addresses vitest.config.ts gives the worker under test (its
 * bindings come from wrangler.jsonc); test/worker/env.d.ts types the tests' `env` from this.
 */
export function workerTestBindings(inject: <K extends keyof TestServices>(key: K) => TestServices[K]) {
  const fakeLlm = `http://127.0.0.1:${inject("fakeLlmPort")}`;
  const relay = `127.0.0.1:${inject("relayPort")}`;
  return {
    ENVIRONMENT: "test",
    DATABASE_URL: inject("databaseUrl"),
    NEON_WS_PROXY: `${relay}/v2`,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${inject("bridgePort")}`,
    UPSTASH_REDIS_REST_TOKEN: TEST_REDIS_TOKEN,
    // Production's 150 ms is for Upstash near the edge. Here a call goes through the local bridge on
    // a 2-core machine running two halves of the worker tests and the browser tests at once, and one
    // call over the limit makes the isolate skip Redis for 5 s (src/cache/redis.ts): a cache write
    // lost that way failed a test that checks a cached question vector (once in seven CI runs).
    // Tests of a hung Redis set their own limit (test/worker/cache.test.ts).
    REDIS_TIMEOUT_MS: "2000",
    HANG_PORT: String(inject("hangPort")),
    RELAY_STATS_URL: `http://${relay}/stats`,
    FAKE_LLM_URL: fakeLlm,
    // The worker's real providers, pointed at the fake server that speaks their protocols.
    OPENAI_API_KEY: "sk-worker-test",
    OPENAI_BASE_URL: `${fakeLlm}/v1`,
    ANTHROPIC_API_KEY: "sk-ant-worker-test",
    ANTHROPIC_BASE_URL: fakeLlm,
    PROVIDER_TIMEOUT_MS: "2000",
    EMAIL_FROM: "chatedge@test.example",
    // Turnstile's siteverify, spoken by local/turnstile.ts; TURNSTILE_URL reaches its /__requests.
    TURNSTILE_URL: `http://127.0.0.1:${inject("turnstilePort")}`,
    TURNSTILE_SITEVERIFY_URL: `http://127.0.0.1:${inject("turnstilePort")}/turnstile/v0/siteverify`,
    // Tools (local/tools.ts), both checking TEST_TOOL_SECRET: the example order-status worker and a faulty one.
    ORDER_STATUS_URL: `http://127.0.0.1:${inject("orderStatusPort")}`,
    FAULTY_TOOL_URL: `http://127.0.0.1:${inject("faultyToolPort")}`,
  };
}

/** Whether process `pid` still runs (signal 0 checks without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
