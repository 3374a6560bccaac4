/**
 * Admission benchmark: admissions per second on one tenant and the latency admit+settle adds,
 * each beside a bare SQLite-DO counter increment behind the same worker, in the same runtime and
 * the same run. Drives workerd through the Miniflare API (not wrangler dev, whose proxy and trace
 * store add noise), interleaving targets round by round because timing here is jittery, and reads
 * workerd's CPU per request, which moves far less than wall time on a shared machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { bundleBenchWorker, closedLoop, cpuMs, pct, round, shuffled, workerdPids } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const SEQUENTIAL = 150; // requests per target per round, one at a time: latency
const LOADED = 800; // requests per target per round, CONCURRENCY at a time: throughput
const CONCURRENCY = 16;
const WARMUP = 400;
const USERS = 5_000;

/** noop: the worker alone. counter: the baseline. admit: the chat path's admission. */
export type Target = "noop" | "counter" | "admit" | "admit-only" | "admit-settle-rpc";
const TARGETS: Target[] = ["noop", "counter", "admit", "admit-only", "admit-settle-rpc"];

let seq = 0;
/** One request to `target` from one of USERS users, in turn; answers its latency. */
export async function hit(base: string, target: Target): Promise<number> {
  seq += 1;
  const t = performance.now();
  const res = await fetch(`${base}/${target}?u=u${seq % USERS}`);
  await res.arrayBuffer();
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`${target}: HTTP ${res.status}`);
  return ms;
}

const median = (xs: number[]) => pct(xs, 0.5);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Samples {
  /** Latencies at concurrency 1. */
  seq: number[];
  /** Latencies at CONCURRENCY, with the wall time and count behind them. */
  load: number[];
  loadMs: number;
  loadN: number;
  /** workerd CPU over the loaded phase. */
  cpuMs: number;
  cpuN: number;
}

/** The admission bench's worker (bench/worker/admission.ts, bundled) under Miniflare, its objects kept in `persist`. */
export function admissionWorkerOptions(script: string, persist: string) {
  const sqlite = (className: string) => ({ className, useSQLite: true });
  return {
    modules: [{ type: "ESModule" as const, path: "worker.mjs", contents: script }],
    compatibilityDate: "2026-10-15",
    compatibilityFlags: ["nodejs_compat"],
    durableObjects: {
      TENANT_GATE: sqlite("TenantGate"),
      GLOBAL_GATE: sqlite("GlobalGate"),
      COUNTER: sqlite("Counter"),
    },
    durableObjectsPersist: persist,
  };
}

/**
 * Starts the admission bench's worker (`script`: bench/worker/admission.ts, bundled) in workerd,
 * its objects in a new temporary directory; `close` stops it and removes the directory.
 */
export async function startAdmissionWorker(
  script: string,
  opts: { inspectorPort?: number } = {},
): Promise<{ base: string; close(): Promise<void> }> {
  const persist = mkdtempSync(join(tmpdir(), "chatedge-bench-"));
  const mf = new Miniflare({
    ...convertV4MiniflareOptions(admissionWorkerOptions(script, persist)),
    ...opts,
  });
  const close = async () => {
    await mf.dispose();
    rmSync(persist, { recursive: true, force: true });
  };
  try {
    return { base: (await mf.ready).toString().replace(/\/$/, ""), close };
  } catch (err) {
    await close();
    throw err;
  }
}

export const admissionBench: Bench = {
  name: "admission",
  async run(log) {
    const { base, close } = await startAdmissionWorker(await bundleBenchWorker("admission.ts"));
    try {
      const pid = workerdPids()[0];
      if (pid === undefined) throw new Error("no workerd child process found");
      log(`workerd ${pid} at ${base}; warming up`);
      for (const t of TARGETS) await closedLoop(WARMUP, CONCURRENCY, () => hit(base, t));

      const s = Object.fromEntries(
        TARGETS.map((t) => [t, { seq: [], load: [], loadMs: 0, loadN: 0, cpuMs: 0, cpuN: 0 } as Samples]),
      ) as Record<Target, Samples>;
      const perRound = { cpu: [] as number[], wall: [] as number[], rpcWall: [] as number[] };
      for (let r = 1; r <= ROUNDS; r++) {
        const cpu: Partial<Record<Target, number>> = {};
        const rps: Partial<Record<Target, number>> = {};
        for (const t of shuffled(TARGETS)) {
          for (let i = 0; i < SEQUENTIAL; i++) s[t].seq.push(await hit(base, t));
          // Capacity is what workerd spends per request under load, so only this phase is metered.
          const before = cpuMs(pid);
          const l = await closedLoop(LOADED, CONCURRENCY, () => hit(base, t));
          // Deferred settlements fire up to SETTLE_DELAY_MS later: count them with their phase.
          await pause(60);
          const used = cpuMs(pid) - before;
          s[t].load.push(...l.lat);
          s[t].loadMs += l.ms;
          s[t].loadN += LOADED;
          s[t].cpuMs += used;
          s[t].cpuN += LOADED;
          cpu[t] = used / LOADED;
          rps[t] = (LOADED / l.ms) * 1000;
        }
        perRound.cpu.push((cpu.counter ?? 0) / (cpu.admit ?? 1));
        perRound.wall.push((rps.admit ?? 0) / (rps.counter ?? 1));
        perRound.rpcWall.push((rps["admit-settle-rpc"] ?? 0) / (rps.counter ?? 1));
        log(
          `round ${r}/${ROUNDS}: admit vs counter: CPU capacity ${round(perRound.cpu.at(-1) ?? 0, 2)}, ` +
            `wall-clock throughput ${round(perRound.wall.at(-1) ?? 0, 2)}`,
        );
      }

      // Let the last settlements land, then check the books: every settlement counted, exactly.
      await pause(300);
      const usage = (await (await fetch(`${base}/usage`)).json()) as {
        month: { tokensUsed: number };
        window: { openReservations: number };
      };
      // admit and admit-settle-rpc settle every admission for 300 tokens; admit-only settles none.
      const each = WARMUP + ROUNDS * (SEQUENTIAL + LOADED);
      const books = {
        settled: 2 * each,
        tokensUsed: usage.month.tokensUsed,
        expectedTokens: 2 * each * 300,
        openReservations: usage.window.openReservations,
        expectedOpen: each,
      };
      log(`books: ${JSON.stringify(books)}`);

      const cpuPer = (t: Target) => s[t].cpuMs / s[t].cpuN;
      const capacity = (t: Target) => 1000 / cpuPer(t);
      const rps = (t: Target) => (s[t].loadN / s[t].loadMs) * 1000;
      const p = (t: Target, q: number) => pct(s[t].seq, q);
      const added = (t: Target, q: number) => p(t, q) - p("noop", q);
      const A = "admit+settle";
      const rows: BenchRow[] = [
        ratioRow(A, "admissions/s capacity ratio (workerd CPU), median of rounds", median(perRound.cpu)),
        row(A, "admissions/s capacity (workerd CPU, pooled)", capacity("admit"), capacity("counter"), true),
        row(A, "workerd CPU ms per request, c=16", cpuPer("admit"), cpuPer("counter"), false),
        row(
          A,
          "added CPU ms over pass-through",
          cpuPer("admit") - cpuPer("noop"),
          cpuPer("counter") - cpuPer("noop"),
          false,
        ),
        ratioRow(A, "admissions/s ratio (wall clock, c=16), median of rounds", median(perRound.wall)),
        row(A, "admissions/s, c=16 (pooled)", rps("admit"), rps("counter"), true),
        row(A, "p50 ms, c=1", p("admit", 0.5), p("counter", 0.5), false),
        row(A, "p99 ms, c=1", p("admit", 0.99), p("counter", 0.99), false),
        row(A, "added p50 ms over pass-through, c=1", added("admit", 0.5), added("counter", 0.5), false),
        row(A, "added p99 ms over pass-through, c=1", added("admit", 0.99), added("counter", 0.99), false),
        row(A, "p50 ms, c=16", pct(s.admit.load, 0.5), pct(s.counter.load, 0.5), false),
        row(A, "p99 ms, c=16", pct(s.admit.load, 0.99), pct(s.counter.load, 0.99), false),
        row(
          "admit only (no settle)",
          "admissions/s capacity (workerd CPU, pooled)",
          capacity("admit-only"),
          capacity("counter"),
          true,
        ),
        row(
          "admit only (no settle)",
          "added p50 ms over pass-through, c=1",
          added("admit-only", 0.5),
          added("counter", 0.5),
          false,
        ),
        row(
          "admit + own settle RPC",
          "admissions/s capacity (workerd CPU, pooled)",
          capacity("admit-settle-rpc"),
          capacity("counter"),
          true,
        ),
        row(
          "admit + own settle RPC",
          "admissions/s, c=16 (pooled)",
          rps("admit-settle-rpc"),
          rps("counter"),
          true,
        ),
        row("pass-through worker", "workerd CPU ms per request, c=16", cpuPer("noop"), null, false),
        row("pass-through worker", "req/s, c=16", rps("noop"), null, true),
        row("pass-through worker", "p50 ms, c=1", p("noop", 0.5), null, false),
      ];
      return {
        rows,
        notes: {
          rounds: ROUNDS,
          sequentialPerRound: SEQUENTIAL,
          loadedPerRound: LOADED,
          concurrency: CONCURRENCY,
          cpuCapacityRatioPerRound: perRound.cpu.map((x) => round(x, 3)),
          wallThroughputRatioPerRound: perRound.wall.map((x) => round(x, 3)),
          ownSettleRpcWallRatioPerRound: perRound.rpcWall.map((x) => round(x, 3)),
          books,
          booksBalance:
            books.tokensUsed === books.expectedTokens && books.openReservations === books.expectedOpen,
        },
      };
    } finally {
      await close();
    }
  },
};

/** A measured value beside its baseline; the ratio reads ">= 1 is at least as good". */
function row(
  name: string,
  metric: string,
  value: number,
  baseline: number | null,
  higherIsBetter: boolean,
): BenchRow {
  const ratio = baseline === null ? null : higherIsBetter ? value / baseline : baseline / value;
  return {
    name,
    metric,
    value: round(value),
    baseline: baseline === null ? null : round(baseline),
    ratio: ratio === null ? null : round(ratio),
  };
}

/** A ratio that is itself the measurement (baseline 1). */
function ratioRow(name: string, metric: string, ratio: number): BenchRow {
  return { name, metric, value: round(ratio), baseline: 1, ratio: round(ratio) };
}
