import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { workerTestBindings } from "./test/local-services.ts";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          // test/web: the widget's and the console's pure parts (typechecked with web/tsconfig.json).
          include: ["test/local/**/*.test.ts", "test/web/**/*.test.ts"],
          environment: "node",
          // One process for these files (none mocks or sets globals), not a new one per file.
          isolate: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          // The `npm run dev` stacks' Redis database (test/e2e/stack.ts): the browser project's runs beside.
          env: { STACK_REDIS_DB: "1" },
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
          env: { STACK_REDIS_DB: "2" },
          // One file at a time: each starts its own `npm run dev` stack and Chromium, and two at once
          // beside the workerd project left the 2-core machine too busy for their 30 s waits.
          fileParallelism: false,
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.jsonc" },
            // wrangler.jsonc's bindings, plus the vars and secrets the tests set (test/local-services.ts).
            miniflare: { bindings: workerTestBindings(inject) },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["./test/global-setup.ts"],
          // One workerd for every file, not a new one per file: starting it cost ~5 s a file
          // (~490 s of 1,217 s on a loaded 2-core run). Files share no state they rely on: each
          // makes its own tenants (uniqueId) in the one database they already shared.
          isolate: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
