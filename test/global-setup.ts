import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import {
  processAlive,
  TEST_POSTGRES_URL,
  TEST_REDIS_TOKEN,
  TEST_REDIS_URL,
  TEST_TOOL_SECRET,
  type TestServices,
} from "./local-services.ts";

declare module "vitest" {
  export interface ProvidedContext extends TestServices {}
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
 * standing in for Neon's proxy, the Upstash REST bridge in front of the real Redis, a server
 * that never answers (a hung dependency), the fake LLM server (local/fake-llm.ts), the
 * Turnstile stand-in (local/turnstile.ts) and the tools of local/tools.ts (the example tool in
 * workerd and a faulty one).
 */
export default async function setup(project: TestProject) {
  // One database per test run, so concurrent runs on one machine never drop each other's data.
  await dropOrphans();
  const databaseUrl = `${TEST_POSTGRES_URL}/chatedge_test_${process.pid}`;
  await recreateDatabase(databaseUrl);
  await migrateDatabase(databaseUrl);
  project.provide("databaseUrl", databaseUrl);
  const pgUrl = new URL(databaseUrl);
  const { child, ports } = await startServices([
    "--pg",
    `${pgUrl.hostname}:${pgUrl.port || 5432}`,
    "--redis",
    TEST_REDIS_URL,
    "--token",
    TEST_REDIS_TOKEN,
    "--hang",
    "--fake-llm",
    "--turnstile",
    "--tool-secret",
    TEST_TOOL_SECRET,
  ]);
  project.provide("relayPort", ports.relayPort as number);
  project.provide("bridgePort", ports.bridgePort as number);
  project.provide("hangPort", ports.hangPort as number);
  project.provide("fakeLlmPort", ports.fakeLlmPort as number);
  project.provide("turnstilePort", ports.turnstilePort as number);
  project.provide("orderStatusPort", ports.orderStatusPort as number);
  project.provide("faultyToolPort", ports.faultyToolPort as number);
  return async () => {
    child.kill("SIGTERM");
    await admin((c) => c.query(`drop database if exists "chatedge_test_${process.pid}" with (force)`));
  };
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Drops databases of earlier test runs whose process is gone (a crash leaves them behind). */
async function dropOrphans() {
  await admin(async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      "select datname from pg_database where datname like 'chatedge_test_%'",
    );
    for (const { datname } of rows) {
      const pid = Number(datname.slice("chatedge_test_".length));
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid))
        await c.query(`drop database if exists "${datname}" with (force)`);
    }
  });
}
