import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_ADMIN_TOKEN, TEST_REDIS_TOKEN } from "./test/local-services.ts";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          // test/web: the widget's and the console's pure parts (typechecked with web/tsconfig.json).
          include: ["test/local/**/*.test.ts", "test/web/**/*.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 150_000,
        },
      },
      {
        // Headless Chromium (playwright-core) against `npm run dev`: the widget and the console.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.jsonc" },
            miniflare: {
              bindings: {
                ENVIRONMENT: "test",
                DATABASE_URL: inject("databaseUrl"),
                NEON_WS_PROXY: `127.0.0.1:${inject("relayPort")}/v2`,
                ADMIN_TOKEN: TEST_ADMIN_TOKEN,
                UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${inject("bridgePort")}`,
                UPSTASH_REDIS_REST_TOKEN: TEST_REDIS_TOKEN,
                HANG_PORT: String(inject("hangPort")),
                RELAY_STATS_URL: `http://127.0.0.1:${inject("relayPort")}/stats`,
                FAKE_LLM_URL: `http://127.0.0.1:${inject("fakeLlmPort")}`,
                // The worker's real providers, pointed at the fake server that speaks their protocols.
                OPENAI_API_KEY: "sk-worker-test",
                OPENAI_BASE_URL: `http://127.0.0.1:${inject("fakeLlmPort")}/v1`,
                ANTHROPIC_API_KEY: "sk-ant-worker-test",
                ANTHROPIC_BASE_URL: `http://127.0.0.1:${inject("fakeLlmPort")}`,
                PROVIDER_TIMEOUT_MS: "2000",
                EMAIL_FROM: "chatedge@test.example",
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["./test/global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
