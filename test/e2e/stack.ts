import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { freePort } from "../../local/ports.ts";
import { TEST_POSTGRES_URL } from "../local-services.ts";

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

/**
 * Runs the README's `npm run dev` (local/dev.ts) for real — relay, bridge, migrations, seed,
 * `wrangler dev` — on a free port with its own database and state, and waits for its ready line.
 * `env` adds to its environment; `.dev.vars` is the stack's own (none, unless `devVars` is given).
 */
export async function startStack(env: Record<string, string> = {}, devVars?: string): Promise<Stack> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "chatedge-e2e-"));
  if (devVars !== undefined) writeFileSync(join(dir, "dev.vars"), devVars);
  const databaseUrl = `${TEST_POSTGRES_URL}/chatedge_e2e_${process.pid}`;
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
      DEV_VARS_FILE: join(dir, "dev.vars"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const log: string[] = [];
  child.stderr?.on("data", (d) => log.push(String(d)));
  const ready = await new Promise<Omit<Stack, "stop" | "databaseUrl" | "output" | "launcher">>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`dev stack not ready in 120 s:\n${log.join("").slice(-3000)}`)),
        120_000,
      );
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        log.push(`${line}\n`);
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
  );
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
