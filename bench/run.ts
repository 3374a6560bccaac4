/**
 * `npm run bench`: runs every registered benchmark (or those named on the command line), prints
 * one table and writes the rows to bench/results/<timestamp>.json. A benchmark is a module
 * exporting a `Bench`; add it to BENCHES to plug it in.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Bench, BenchRow } from "./types.ts";

// Loaded only when chosen, so one benchmark's imports cannot stop the others from running.
const BENCHES: Record<string, () => Promise<Bench>> = {
  bundle: async () => (await import("./bundle.ts")).bundleBench,
  admission: async () => (await import("./admission.ts")).admissionBench,
  chat: async () => (await import("./chat.ts")).chatBench,
  tools: async () => (await import("./tools.ts")).toolsBench,
  "public-key": async () => (await import("./public-key.ts")).publicKeyBench,
  analytics: async () => (await import("./analytics.ts")).analyticsBench,
  monitoring: async () => (await import("./monitoring.ts")).monitoringBench,
  startup: async () => (await import("./startup.ts")).startupBench,
  knowledge: async () => (await import("./knowledge.ts")).knowledgeBench,
  privacy: async () => (await import("./privacy.ts")).privacyBench,
  handoff: async () => (await import("./handoff.ts")).handoffBench,
};

const fmt = (n: number | null) =>
  n === null ? "-" : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(3);

function table(rows: BenchRow[]): string {
  const head = ["bench", "name", "metric", "value", "baseline", "ratio"];
  const body = rows.map((r) => [
    r.bench ?? "",
    r.name,
    r.metric,
    fmt(r.value),
    fmt(r.baseline),
    fmt(r.ratio),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

async function main() {
  const wanted = process.argv.slice(2);
  const names = Object.keys(BENCHES);
  const unknown = wanted.filter((w) => !names.includes(w));
  if (unknown.length > 0)
    throw new Error(`no benchmark named ${unknown.join(", ")}; have ${names.join(", ")}`);
  const chosen = wanted.length > 0 ? names.filter((n) => wanted.includes(n)) : names;
  const rows: BenchRow[] = [];
  const notes: Record<string, unknown> = {};
  for (const name of chosen) {
    const b = await (BENCHES[name] as () => Promise<Bench>)();
    const started = Date.now();
    console.error(`bench ${b.name}: running`);
    const out = await b.run((msg) => console.error(`  ${b.name}: ${msg}`));
    rows.push(...out.rows.map((r) => ({ bench: b.name, ...r })));
    notes[b.name] = { ...out.notes, seconds: Math.round((Date.now() - started) / 100) / 10 };
  }
  console.log(table(rows));
  console.log(
    "\nratio: the benchmark's performance relative to its baseline (throughput: value/baseline; latency: baseline/value); >= 1 means at least as good.",
  );
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ at: new Date().toISOString(), node: process.version, rows, notes }, null, 2)}\n`,
  );
  console.log(`\nwrote ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
