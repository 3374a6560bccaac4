import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { freePort } from "../../local/ports.ts";
import { processAlive, TEST_POSTGRES_URL, TEST_REDIS_URL } from "../local-services.ts";

export interface Stack {
  base: string;
  adminToken: string;
  secretKey: string;
  publishableKey: string;
  databaseUrl: string;
  /** The launcher (local/dev.ts) and the `wrangler dev` it started. */
  launcher: ChildProcess;
  wranglerPid: number;
  /** Everything the stack printed so far (wrangler's log included), for failure reports. */
  output(): string;
  stop(): Promise<void>;
}

const START_LOCK = join(tmpdir(), "chatedge-e2e-start.lock");

/**
 * Waits until no other stack (in any process: `npm test` runs the e2e and browser files side by side)
 * is between its launch and `wrangler dev`'s "Ready on", and takes that turn. Two wranglers starting
 * at once race for the same inspector port (9229, then the next free one) and rebuild public/ at
 * the same time. A lock whose holder is gone is taken over. Resolves with the release.
 */
async function startTurn(): Promise<() => void> {
  for (;;) {
    try {
      mkdirSync(START_LOCK);
      writeFileSync(join(START_LOCK, "pid"), String(process.pid));
      let held = true;
      return () => {
        if (held) rmSync(START_LOCK, { recursive: true, force: true });
        held = false;
      };
    } catch {
      let holder = 0;
      try {
        holder = Number(readFileSync(join(START_LOCK, "pid"), "utf8"));
      } catch {}
      if (holder > 0 && !processAlive(holder)) rmSync(START_LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Runs the README's `npm run dev` (local/dev.ts) for real — relay, bridge, migrations, seed,
 * `wrangler dev` — on a free port with its own database and state, and waits for its ready line.
 * `env` adds to its environment; `.dev.vars` is the stack's own (none, unless `devVars` is given).
 */
export async function startStack(env: Record<string, string> = {}, devVars?: string): Promise<Stack> {
  // The port is one the OS had free a moment before; another process may take it first. Miniflare
  // then fails with ERR_ADDRESS_IN_USE, which wrangler prints either by its code or by its message.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchStack(await freePort(), env, devVars);
    } catch (err) {
      if (attempt === 3 || !/ERR_ADDRESS_IN_USE|Address already in use/.test(String(err))) throw err;
    }
  }
}

async function launchStack(port: number, env: Record<string, string>, devVars?: string): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), "chatedge-e2e-"));
  if (devVars !== undefined) writeFileSync(join(dir, "dev.vars"), devVars);
  const databaseUrl = `${TEST_POSTGRES_URL}/chatedge_e2e_${process.pid}`;
  // The e2e and browser projects' stacks run side by side (local/test.ts), and a stack keeps cached
  // copies (the demo tenant's config, ...) in Redis: each project's in a Redis database of its own
  // (STACK_REDIS_DB, vitest.config.ts), so one's demo tenant never answers in the other's.
  const redis = new URL(process.env.REDIS_URL ?? TEST_REDIS_URL);
  if (process.env.STACK_REDIS_DB) redis.pathname = `/${process.env.STACK_REDIS_DB}`;
  const release = await startTurn();
  const child: ChildProcess = spawn(process.execPath, ["local/dev.ts"], {
    env: {
      ...process.env,
      PORT: String(port),
      // The demo tool (examples/order-status) on a free port too: stacks run side by side.
      TOOL_PORT: "0",
      EMBEDDER_PORT: "0",
      DATABASE_URL: databaseUrl,
      DEV_DATA_DIR: join(dir, "data"),
      DEV_PERSIST_DIR: join(dir, "state"),
      DEV_JSON: "1",
      REDIS_URL: redis.href,
      DEV_VARS_FILE: join(dir, "dev.vars"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const log: string[] = [];
  child.stderr?.on("data", (d) => {
    log.push(String(d));
    if (String(d).includes("Ready on http")) release();
  });
  const ready = await new Promise<Omit<Stack, "stop" | "databaseUrl" | "output" | "launcher">>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`dev stack not ready in 120 s:\n${log.join("").slice(-3000)}`)),
        120_000,
      );
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        log.push(`${line}\n`);
        // wrangler has bound its ports and built public/: the next stack may start.
        if (line.includes("Ready on http")) release();
        if (line.startsWith('{"ready":true')) {
          clearTimeout(timer);
          resolve(JSON.parse(line));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`dev stack exited with ${code}:\n${log.join("").slice(-3000)}`));
      });
    },
  )
    .catch((err) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    })
    .finally(release);
  return {
    ...ready,
    databaseUrl,
    launcher: child,
    output: () => log.join(""),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        process.kill(-(child.pid as number), "SIGINT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
      const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
      admin.on("error", () => {});
      await admin.connect();
      await admin.query(`drop database if exists "chatedge_e2e_${process.pid}" with (force)`);
      await admin.end();
    },
  };
}
