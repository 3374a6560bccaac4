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
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
