import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./stack";

let stack: Stack;
let down: Server;
let downUrl: string;

beforeAll(async () => {
  stack = await startStack();
  // A deployment that never gets ready: every path answers 503.
  down = createServer((_req, res) => {
    res.writeHead(503, { "content-type": "application/json" }).end('{"status":"not ready"}');
  });
  await new Promise<void>((r) => down.listen(0, "127.0.0.1", r));
  downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
}, 150_000);

afterAll(async () => {
  await new Promise((r) => down?.close(r));
  await stack?.stop();
}, 60_000);

/** Runs `npm run release -- --env staging --dry-run` (what package.json runs) against the local stack. */
function release(env: Record<string, string>, args = ["--env", "staging", "--dry-run"]) {
  const child = spawn(process.execPath, ["local/release.ts", ...args], {
    env: {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      RELEASE_URL: stack.base,
      SMOKE_KEY: stack.secretKey,
      RELEASE_READY_TIMEOUT_MS: "2000",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += String(d);
  });
  child.stderr.on("data", (d) => {
    out += String(d);
  });
  return new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, out })),
  );
}

/** The lines the script prints about its own steps (wrangler's output left out). */
const steps = (out: string) => out.split("\n").filter((l) => l.startsWith("release "));

describe("npm run release against `npm run dev`, deploying with wrangler deploy --dry-run", () => {
  it("migrates, deploys, checks /readyz and one chat, and exits 0", async () => {
    const { code, out } = await release({});
    expect(code, out).toBe(0);
    expect(steps(out).slice(0, 8)).toEqual([
      "release staging: migrate ...",
      "release staging: migrate ok",
      "release staging: deploy (dry run) ...",
      "release staging: deploy (dry run) ok",
      "release staging: readyz ...",
      "release staging: readyz ok",
      "release staging: smoke chat ...",
      "release staging: smoke chat ok",
    ]);
    expect(steps(out)[8]).toMatch(/^release staging: released; smoke reply: ".+"$/);
    // The dry run bundled the staging environment: its queues and vars, not the top level's.
    expect(out).toContain("chatedge-analytics-staging");
    expect(out).toContain("--dry-run: exiting now.");
  }, 120_000);

  it("fails at readyz, naming the step, when the deployment is not ready", async () => {
    const { code, out } = await release({ RELEASE_URL: downUrl });
    expect(code, out).toBe(1);
    expect(steps(out)).not.toContain("release staging: smoke chat ...");
    expect(out).toContain(`release staging FAILED: step "readyz" failed: GET ${downUrl}/readyz: 503`);
  }, 120_000);

  it("fails at the smoke chat, naming the step, when the chat is refused", async () => {
    const { code, out } = await release({ SMOKE_KEY: "sk_live_not_a_key_of_any_tenant" });
    expect(code, out).toBe(1);
    expect(steps(out)).toContain("release staging: readyz ok");
    expect(out).toContain(
      `release staging FAILED: step "smoke chat" failed: POST ${stack.base}/v1/chat/completions: 401`,
    );
  }, 120_000);

  it("fails at deploy when the deploy command fails, before any check", async () => {
    const { code, out } = await release({ WRANGLER: "false" });
    expect(code, out).toBe(1);
    expect(out).toContain(
      'release staging FAILED: step "deploy (dry run)" failed: false deploy --env staging',
    );
    expect(steps(out)).not.toContain("release staging: readyz ...");
  });

  it("fails at migrate when the database is unreachable, before deploying", async () => {
    const { code, out } = await release({ DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" });
    expect(code, out).toBe(1);
    expect(out).toContain('release staging FAILED: step "migrate" failed:');
    expect(steps(out)).not.toContain("release staging: deploy (dry run) ...");
  });

  it("refuses an unknown environment and a missing variable with usage", async () => {
    const unknown = await release({}, ["--env", "prod"]);
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain("release: --env must be one of staging, production (got prod)");
    const missing = await release({ SMOKE_KEY: "" }, ["--env", "production"]);
    expect(missing.code).toBe(2);
    expect(missing.out).toContain("release: set SMOKE_KEY for the production environment");
  });
});
