import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { TestProject } from "vitest/node";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { TEST_DATABASE_URL, TEST_REDIS_TOKEN, TEST_REDIS_URL } from "./local-services.ts";

declare module "vitest" {
  export interface ProvidedContext {
    relayPort: number;
    bridgePort: number;
    hangPort: number;
  }
}

/** Starts local/services.ts and reads the ports it prints. */
async function startServices(
  args: string[],
): Promise<{ child: ChildProcess; ports: Record<string, number> }> {
  const child = spawn(process.execPath, ["local/services.ts", ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`local/services.ts exited with ${code}`)));
  });
  return { child, ports: JSON.parse(first) };
}

/**
 * Starts what the worker tests talk to: a freshly migrated Postgres database, the WebSocket relay
 * standing in for Neon's proxy, the Upstash REST bridge in front of the real Redis, and a server
 * that never answers (a hung dependency).
 */
export default async function setup(project: TestProject) {
  await recreateDatabase(TEST_DATABASE_URL);
  await migrateDatabase(TEST_DATABASE_URL);
  const pg = new URL(TEST_DATABASE_URL);
  const { child, ports } = await startServices([
    "--pg",
    `${pg.hostname}:${pg.port || 5432}`,
    "--redis",
    TEST_REDIS_URL,
    "--token",
    TEST_REDIS_TOKEN,
    "--hang",
  ]);
  project.provide("relayPort", ports.relayPort as number);
  project.provide("bridgePort", ports.bridgePort as number);
  project.provide("hangPort", ports.hangPort as number);
  return async () => {
    child.kill("SIGTERM");
  };
}
