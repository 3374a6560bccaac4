/**
 * `npm run loadtest`: many tenants, many concurrent visitors holding multi-turn conversations
 * through the real worker (bundled by wrangler, run by the Miniflare API with its queue consumers,
 * Postgres through the WebSocket relay, Redis through the Upstash bridge), for a bounded time.
 * It reports throughput, latency percentiles, refusals by level and errors, then checks the books
 * (checks.ts): no limit exceeded; tokens and cost equal in replies, Postgres and the gates; every
 * ended conversation in Postgres exactly once.
 *
 * The parts: options.ts (what a run is given), profiles.ts (the tenants and their limits),
 * visitors.ts (the load), drain.ts (waiting for settlements and the queues), checks.ts, report.ts.
 *
 * Usage: node bench/loadtest/main.ts [--tenants 50] [--visitors 1000] [--duration 60] [--turns 4]
 *   [--think-ms 250] [--ramp-up 5] [--global-limit 10000] [--keep-db] [--json]
 * Exits non-zero when any check fails or any request errored (5xx, network, unexpected 4xx).
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { Agent, type Dispatcher } from "undici";
import { migrateDatabase, recreateDatabase } from "../../local/migrate.ts";
import { startUpstashBridge } from "../../local/upstash-bridge.ts";
import { randomToken } from "../../src/auth/keys.ts";
import { startBenchWorker } from "../analytics-worker.ts";
import { round } from "../lib.ts";
import { checkBooks, checkSettled } from "./checks.ts";
import { waitForAnalytics, waitForSettlements } from "./drain.ts";
import { DEFAULT_GLOBAL_LIMIT, type LoadtestOptions, type Settings, settingsOf } from "./options.ts";
import { profileCounts, seedTenants, type Tenant } from "./profiles.ts";
import { admittedAndRefused, formatReport, type LoadtestReport, loadFigures } from "./report.ts";
import { runLoad } from "./visitors.ts";

/** A running worker with its tenants, and how to reach it. */
interface Stage {
  url: string;
  db: pg.Client;
  tenants: Tenant[];
  opts: Settings;
  dispatcher: Dispatcher;
  log: (msg: string) => void;
}

/** The load, the drain and the checks, against a running worker. */
async function measure(s: Stage): Promise<LoadtestReport> {
  const { opts, log } = s;
  log(
    `load: ${opts.visitors} visitors over ${opts.tenants} tenants for ${opts.durationSec} s, ${opts.turnsPerConversation} messages per conversation`,
  );
  const { stats, seconds } = await runLoad(s.url, s.tenants, opts, s.dispatcher);
  const { admitted } = admittedAndRefused(stats);
  log(`load done in ${round(seconds, 1)} s: ${stats.messagesSent} messages, ${admitted} admitted`);

  const drainStart = Date.now();
  const until = drainStart + opts.drainTimeoutSec * 1000;
  const endedCount = stats.conversations.filter((c) => c.ended).length;
  const counts = await waitForAnalytics(s.db, admitted, endedCount, until, log);
  const { settled, usage } = await waitForSettlements(s.url, s.tenants, s.dispatcher, until);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  log(`drained in ${round(drainSeconds, 1)} s; checking the books`);

  const checks = [
    checkSettled(settled, usage),
    ...(await checkBooks(s.db, s.tenants, stats, usage, opts.globalLimitPerMinute)),
  ];
  const load = loadFigures(stats, seconds);
  return {
    options: opts,
    profiles: profileCounts(s.tenants),
    load,
    drain: { seconds: round(drainSeconds, 1), settled, ...counts },
    checks,
    ok: load.errors.total === 0 && checks.every((c) => c.pass),
  };
}

async function dropDatabase(postgres: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${postgres}/postgres` });
  admin.on("error", () => {});
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.end();
  }
}

/** Runs the whole load test: setup, load, drain, checks; tears everything down it started. */
export async function runLoadtest(input: LoadtestOptions): Promise<LoadtestReport> {
  const log = input.log ?? (() => {});
  const opts = settingsOf(input);
  const postgres =
    input.postgresUrl ?? process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
  const database = `chatedge_loadtest_${process.pid}`;
  const databaseUrl = `${postgres}/${database}`;

  log(`database ${databaseUrl}: recreating and migrating`);
  await recreateDatabase(databaseUrl);
  await migrateDatabase(databaseUrl);
  const tenants = await seedTenants(databaseUrl, opts.tenants, randomToken(6).toLowerCase());
  const bridgeToken = randomUUID();
  const bridge = await startUpstashBridge({
    redisUrl: input.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token: bridgeToken,
  });
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on("error", () => {});
  // Every visitor holds its own connection: the pool must never make a visitor wait for another.
  const dispatcher = new Agent({ connections: opts.visitors + 16, keepAliveTimeout: 30_000 });
  let worker: Awaited<ReturnType<typeof startBenchWorker>> | undefined;
  try {
    log("bundling and starting the worker (Miniflare, queue consumers on)");
    worker = await startBenchWorker(databaseUrl, {
      consumers: true,
      bindings: {
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: bridgeToken,
        GLOBAL_LIMIT_PER_MINUTE: String(opts.globalLimitPerMinute),
      },
    });
    await db.connect();
    return await measure({ url: worker.url, db, tenants, opts, dispatcher, log });
  } finally {
    await dispatcher.close().catch(() => {});
    await worker?.stop().catch(() => {});
    await bridge.close().catch(() => {});
    await db.end().catch(() => {});
    if (!opts.keepDatabase) await dropDatabase(postgres, database);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tenants: { type: "string", default: "50" },
      visitors: { type: "string", default: "1000" },
      duration: { type: "string", default: "60" },
      turns: { type: "string", default: "4" },
      "think-ms": { type: "string", default: "250" },
      "ramp-up": { type: "string", default: "5" },
      "global-limit": { type: "string", default: String(DEFAULT_GLOBAL_LIMIT) },
      "keep-db": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const report = await runLoadtest({
    tenants: Number(values.tenants),
    visitors: Number(values.visitors),
    durationSec: Number(values.duration),
    turnsPerConversation: Number(values.turns),
    thinkMs: Number(values["think-ms"]),
    rampUpSec: Number(values["ramp-up"]),
    globalLimitPerMinute: Number(values["global-limit"]),
    keepDatabase: values["keep-db"],
    log: (m) => console.error(m),
  });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  process.exit(report.ok ? 0 : 1);
}
