/**
 * Admission benchmark: admissions per second on one tenant and the latency admit+settle adds,
 * each beside a bare SQLite-DO counter increment behind the same worker, in the same runtime and
 * the same run. Drives workerd through the Miniflare API (not wrangler dev, whose proxy and trace
 * store add noise), interleaving targets round by round because timing here is jittery.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import type { Bench, BenchRow } from "./types.ts";

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SEQUENTIAL = 150; // requests per target per round, one at a time: latency
const LOADED = 800; // requests per target per round, CONCURRENCY at a time: throughput
const CONCURRENCY = 16;
const WARMUP = 400;
const USERS = 5_000;

type Target = "noop" | "counter" | "admit" | "admit-only" | "admit-settle-rpc";
const TARGETS: Target[] = ["noop", "counter", "admit", "admit-only", "admit-settle-rpc"];

async function bundle(): Promise<string> {
  const out = await build({
    entryPoints: [join(here, "worker/admission.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2024",
    write: false,
    external: ["cloudflare:*", "node:*"],
    conditions: ["workerd", "worker", "import"],
    mainFields: ["module", "main"],
    logLevel: "error",
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error("esbuild produced nothing");
  return file.text;
}

/** The workerd process Miniflare started for us (a direct child of this process). */
function workerdPid(): number {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)]).toString();
  const line = out.split("\n").find((l) => l.trim().endsWith("workerd"));
  if (!line) throw new Error("no workerd child process found");
  return Number(line.trim().split(/\s+/)[0]);
}

/**
 * Milliseconds of CPU the workerd process has used, summed over its threads (nanosecond
 * schedstat counters). workerd runs the worker, the DOs and waitUntil work on one JS thread, so
 * CPU per request bounds its throughput, and unlike wall time it barely moves when other
 * processes compete for the machine's two cores.
 */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
  }
  return ns / 1e6;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let seq = 0;
async function hit(base: string, target: Target): Promise<number> {
  seq += 1;
  const t = performance.now();
  const res = await fetch(`${base}/${target}?u=u${seq % USERS}`);
  await res.arrayBuffer();
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`${target}: HTTP ${res.status}`);
  return ms;
}

async function sequential(base: string, target: Target, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await hit(base, target));
  return out;
}

async function loaded(
  base: string,
  target: Target,
  n: number,
  c: number,
): Promise<{ lat: number[]; ms: number }> {
  const lat: number[] = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next += 1;
        lat.push(await hit(base, target));
      }
    }),
  );
  return { lat, ms: performance.now() - t };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] ?? Number.NaN;
};
const median = (xs: number[]) => pct(xs, 0.5);
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

export const admissionBench: Bench = {
  name: "admission",
  async run(log) {
    const script = await bundle();
    const persist = mkdtempSync(join(tmpdir(), "chatedge-bench-"));
    const sqlite = (className: string) => ({ className, useSQLite: true });
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        modules: [{ type: "ESModule", path: "worker.mjs", contents: script }],
        compatibilityDate: "2026-10-15",
        compatibilityFlags: ["nodejs_compat"],
        durableObjects: {
          TENANT_GATE: sqlite("TenantGate"),
          GLOBAL_GATE: sqlite("GlobalGate"),
          COUNTER: sqlite("Counter"),
        },
        durableObjectsPersist: persist,
      }),
    );
    try {
      const base = (await mf.ready).toString().replace(/\/$/, "");
      const pid = workerdPid();
      log(`workerd up at ${base}; warming up`);
      for (const t of TARGETS) await loaded(base, t, WARMUP, CONCURRENCY);
      const seqLat = Object.fromEntries(TARGETS.map((t) => [t, [] as number[]])) as Record<Target, number[]>;
      const load = Object.fromEntries(
        TARGETS.map((t) => [t, { lat: [] as number[], ms: 0, n: 0 }]),
      ) as Record<Target, { lat: number[]; ms: number; n: number }>;
      const cpu = Object.fromEntries(TARGETS.map((t) => [t, { ms: 0, n: 0 }])) as Record<
        Target,
        { ms: number; n: number }
      >;
      const roundRatios: number[] = [];
      const rpcRoundRatios: number[] = [];
      for (let r = 1; r <= ROUNDS; r++) {
        const perRound: Partial<Record<Target, number>> = {};
        for (const t of shuffled(TARGETS)) {
          const before = cpuMs(pid);
          seqLat[t].push(...(await sequential(base, t, SEQUENTIAL)));
          const l = await loaded(base, t, LOADED, CONCURRENCY);
          // Deferred settlements fire up to SETTLE_DELAY_MS later: count them with their phase.
          await pause(60);
          cpu[t].ms += cpuMs(pid) - before;
          cpu[t].n += SEQUENTIAL + LOADED;
          load[t].lat.push(...l.lat);
          load[t].ms += l.ms;
          load[t].n += LOADED;
          perRound[t] = (LOADED / l.ms) * 1000;
        }
        roundRatios.push((perRound.admit ?? 0) / (perRound.counter ?? 1));
        rpcRoundRatios.push((perRound["admit-settle-rpc"] ?? 0) / (perRound.counter ?? 1));
        log(`round ${r}/${ROUNDS}: admit/counter wall-clock throughput ${round(roundRatios.at(-1) ?? 0, 2)}`);
      }
      // Let the last settlements land, then check the books: every admission settled, exactly.
      await new Promise((r) => setTimeout(r, 300));
      const usage = (await (await fetch(`${base}/usage`)).json()) as {
        month: { tokensUsed: number; tokensReserved: number };
        window: { openReservations: number };
      };
      // Every admission of the settling targets was settled for 300 tokens; admit-only leaves its
      // reservations open (the alarm refunds them later).
      const settling = (WARMUP + ROUNDS * (SEQUENTIAL + LOADED)) * 2;
      const books = {
        settled: settling,
        tokensUsed: usage.month.tokensUsed,
        expectedTokens: settling * 300,
        openReservations: usage.window.openReservations,
        expectedOpen: WARMUP + ROUNDS * (SEQUENTIAL + LOADED),
      };
      log(`books: ${JSON.stringify(books)}`);

      const rps = (t: Target) => (load[t].n / load[t].ms) * 1000;
      const cpuPer = (t: Target) => cpu[t].ms / cpu[t].n;
      const capacity = (t: Target) => 1000 / cpuPer(t);
      const p = (t: Target, q: number) => pct(seqLat[t], q);
      const added = (t: Target, q: number) => p(t, q) - p("noop", q);
      const rows: BenchRow[] = [
        row(
          "admit+settle",
          "admissions/s capacity (workerd CPU)",
          capacity("admit"),
          capacity("counter"),
          true,
        ),
        row("admit+settle", "workerd CPU ms per request", cpuPer("admit"), cpuPer("counter"), false),
        row(
          "admit+settle",
          "added CPU ms over pass-through",
          cpuPer("admit") - cpuPer("noop"),
          cpuPer("counter") - cpuPer("noop"),
          false,
        ),
        {
          name: "admit+settle",
          metric: "admissions/s ratio, median of interleaved rounds",
          value: round(median(roundRatios)),
          baseline: 1,
          ratio: round(median(roundRatios)),
        },
        row("admit+settle", "admissions/s, c=16 (pooled)", rps("admit"), rps("counter"), true),
        row("admit+settle", "p50 ms, c=1", p("admit", 0.5), p("counter", 0.5), false),
        row("admit+settle", "p99 ms, c=1", p("admit", 0.99), p("counter", 0.99), false),
        row(
          "admit+settle",
          "added p50 ms over pass-through, c=1",
          added("admit", 0.5),
          added("counter", 0.5),
          false,
        ),
        row(
          "admit+settle",
          "added p99 ms over pass-through, c=1",
          added("admit", 0.99),
          added("counter", 0.99),
          false,
        ),
        row("admit+settle", "p50 ms, c=16", pct(load.admit.lat, 0.5), pct(load.counter.lat, 0.5), false),
        row("admit+settle", "p99 ms, c=16", pct(load.admit.lat, 0.99), pct(load.counter.lat, 0.99), false),
        row(
          "admit only (no settle)",
          "admissions/s capacity (workerd CPU)",
          capacity("admit-only"),
          capacity("counter"),
          true,
        ),
        row("admit only (no settle)", "admissions/s, c=16 (pooled)", rps("admit-only"), rps("counter"), true),
        row(
          "admit only (no settle)",
          "added p50 ms over pass-through, c=1",
          added("admit-only", 0.5),
          added("counter", 0.5),
          false,
        ),
        row(
          "admit + own settle RPC",
          "admissions/s, c=16 (pooled)",
          rps("admit-settle-rpc"),
          rps("counter"),
          true,
        ),
        row("pass-through worker", "workerd CPU ms per request", cpuPer("noop"), null, false),
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
          throughputRatioPerRound: roundRatios.map((x) => round(x, 3)),
          throughputRatioMedianOfRounds: round(median(roundRatios), 3),
          ownSettleRpcRatioPerRound: rpcRoundRatios.map((x) => round(x, 3)),
          books,
          booksBalance:
            books.tokensUsed === books.expectedTokens && books.openReservations === books.expectedOpen,
        },
      };
    } finally {
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    }
  },
};

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
