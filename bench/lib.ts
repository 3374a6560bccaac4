/** Helpers shared by the benchmarks: percentiles, workerd CPU accounting, closed-loop load. */
import { execFileSync, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type SQL, sql } from "drizzle-orm";
import { build } from "esbuild";
import { startFakeLlm } from "../local/fake-llm.ts";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { startUpstashBridge } from "../local/upstash-bridge.ts";
import type { SqlExecutor } from "../src/analytics/sql.ts";

/** The p-quantile (0..1) of a sample, nearest rank on the sorted values. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] ?? Number.NaN;
}

export const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/** Process ids of the workerd processes that are direct children of this process. */
export function workerdPids(): number[] {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)]).toString();
  return out
    .split("\n")
    .filter((l) => l.trim().endsWith("workerd"))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

/**
 * Milliseconds of CPU a process has used, summed over its threads (nanosecond schedstat counters).
 * Unlike wall time, it barely moves when other processes compete for the machine's two cores.
 */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
  }
  return ns / 1e6;
}

/**
 * Runs `n` calls of `one`, `c` at a time; answers each call's latency and the wall time. `lane`
 * (0 to c-1) tells the concurrent clients apart: each lane makes its calls one after another.
 */
export async function closedLoop(
  n: number,
  c: number,
  one: (i: number, lane: number) => Promise<number>,
): Promise<{ lat: number[]; ms: number }> {
  const lat: number[] = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: c }, async (_, lane) => {
      while (next < n) {
        const i = next++;
        lat.push(await one(i, lane));
      }
    }),
  );
  return { lat, ms: performance.now() - t };
}

/** A copy of `xs` in random order (targets are interleaved in random order each round). */
export function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

/**
 * What the chat benchmarks stand on: a fresh migrated database `name`, the fake LLM and an Upstash
 * REST bridge to the local Redis. `close()` stops the servers.
 */
export async function chatFixtures(name: string) {
  const postgres = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
  const databaseUrl = `${postgres}/${name}`;
  await recreateDatabase(databaseUrl);
  await migrateDatabase(databaseUrl);
  const fake = await startFakeLlm();
  const bridgeToken = randomUUID();
  const bridge = await startUpstashBridge({
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token: bridgeToken,
  });
  return {
    databaseUrl,
    fake,
    redis: { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridgeToken },
    close: () => Promise.all([fake.close(), bridge.close()]),
  };
}

/**
 * Bundles the worker into `outdir` as `wrangler deploy` would upload it (a dry run); `metafile`
 * also writes esbuild's account of every input and import to `outdir/bundle-meta.json`.
 */
export function buildWorkerBundle(outdir: string, opts: { metafile?: boolean } = {}): void {
  const args = ["deploy", "--dry-run", "--outdir", outdir, ...(opts.metafile ? ["--metafile"] : [])];
  const built = spawnSync("wrangler", args, {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (built.status !== 0) throw new Error(`wrangler bundle failed: ${built.stderr || built.stdout}`);
}

/**
 * Inserts `rows` into `table` in one statement: they travel as one JSON parameter, read back with
 * `jsonb_to_recordset` as the given column types (`{tenant_id: "text", ordinal: "int"}`). `computed`
 * adds columns computed in SQL per row (they may refer to the row as `r`). Table and column names
 * are the caller's constants, never input.
 */
export async function bulkInsert(
  db: SqlExecutor,
  table: string,
  columns: Record<string, string>,
  rows: readonly Record<string, unknown>[],
  computed: Record<string, SQL> = {},
): Promise<void> {
  if (rows.length === 0) return;
  const names = [...Object.keys(columns), ...Object.keys(computed)];
  const values = [...Object.keys(columns).map((c) => sql.raw(`r.${c}`)), ...Object.values(computed)];
  const types = Object.entries(columns).map(([c, t]) => `${c} ${t}`);
  await db.execute(sql`insert into ${sql.raw(table)} (${sql.raw(names.join(", "))})
    select ${sql.join(values, sql`, `)}
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(${sql.raw(types.join(", "))})`);
}

/**
 * One of bench/worker/*.ts (a baseline worker with its Durable Objects) bundled for workerd as
 * an ES module, the way the benches load it into Miniflare.
 */
export async function bundleBenchWorker(file: string): Promise<string> {
  return (await bundleBenchWorkerMapped(file, false)).js;
}

/** `bundleBenchWorker`, and its source map when asked (the profilers name frames through it). */
export async function bundleBenchWorkerMapped(
  file: string,
  sourcemap = true,
): Promise<{ js: string; map: string }> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL(`./worker/${file}`, import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2024",
    write: false,
    external: ["cloudflare:*", "node:*"],
    conditions: ["workerd", "worker", "import"],
    mainFields: ["module", "main"],
    logLevel: "error",
    ...(sourcemap ? { sourcemap: "external" as const, outdir: "out" } : {}),
  });
  const js = out.outputFiles.find((f) => !f.path.endsWith(".map"));
  if (!js) throw new Error("esbuild produced nothing");
  return { js: js.text, map: out.outputFiles.find((f) => f.path.endsWith(".map"))?.text ?? "{}" };
}

/**
 * A visitor's long message (about 330 tokens of prose). The fake upstream echoes it, so each turn
 * adds about 670 tokens to a conversation's history: nine turns fill the 6,000-token history
 * budget (src/chat/conversation-access.ts). Used where per-message work may grow with the history.
 */
export const LONG_MESSAGE = [
  "Hello, I ordered a pair of walking boots from your shop two weeks ago, order 48213, and the",
  "tracking page has said 'label created' ever since. I paid for express delivery because I am",
  "leaving for a hiking trip in the mountains next Saturday, and I really need the boots before",
  "then. I have already checked my spam folder for any email from the carrier and found nothing.",
  "Could you tell me whether the parcel has actually left your warehouse, and if it has not, whether",
  "you can send it today with the fastest option you have? If that is not possible, I would like",
  "to know how a refund works: do I get the delivery charge back as well, and how many days does",
  "it take to reach my card? I would also like to ask whether the boots run true to size, since",
  "I chose a 42 but usually wear between a 42 and a 43, and I read in a few reviews that this",
  "model is narrow at the toes. If an exchange is easier than a refund, I am happy to swap them for",
  "a 43 as long as it arrives in time. My address has not changed since the order: 17 Harbour Lane,",
  "flat 4, and the door code is 2604. Please let me know what you find out, and thank you for",
  "your help. One more thing: the confirmation email listed a pair of socks as a free gift, but",
  "the order page does not show them any more. Are they still included, or was that offer over",
  "by the time my payment went through? I do not mind either way, I would just like to know.",
].join(" ");
/** Long turns that fill a conversation's history budget. */
export const FULL_HISTORY_TURNS = 9;

/**
 * What a stateless client sends after `turns` long turns: each LONG_MESSAGE with the fake's echo
 * of it, then LONG_MESSAGE again (nine turns: about 6,400 tokens, the conversation API's history
 * budget and the new message).
 */
export function longHistoryMessages(turns = FULL_HISTORY_TURNS): { role: string; content: string }[] {
  const reply = { role: "assistant", content: `Fake openai reply: ${LONG_MESSAGE}` };
  const asked = { role: "user", content: LONG_MESSAGE };
  return [...Array.from({ length: turns }, () => [asked, reply]).flat(), asked];
}

/**
 * What a user message adds for an answer of `chunks` words streamed as a model streams them: the
 * fake writes each event on its own, `PACE_MS` apart (its `pace` fault), so each reaches the worker
 * in a network read of its own. Without it the fake writes a whole answer at once and the worker
 * reads many events a read, which no model streaming while it generates does.
 */
export const PACE_MS = 1;
export const pacedAnswer = (chunks: number) => `[[words:${chunks}]] [[fault:pace:${PACE_MS}]]`;
