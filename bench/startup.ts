import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { buildWorkerBundle, pct, round } from "./lib.ts";
import type { Bench } from "./types.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const SAMPLES = 21;

// Runs inside each worker thread (CommonJS, so it can install the hook before the dynamic import).
const IMPORTER = `
const { registerHooks } = require("node:module");
const { parentPort, workerData } = require("node:worker_threads");
const STUB = "export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }\\n" +
  "export class WorkerEntrypoint {}\\nexport class RpcTarget {}\\nexport const env = {};";
registerHooks({
  resolve: (spec, ctx, next) =>
    spec === "cloudflare:workers" ? { url: "stub:cloudflare-workers", shortCircuit: true } : next(spec, ctx),
  load: (url, ctx, next) =>
    url === "stub:cloudflare-workers" ? { format: "module", source: STUB, shortCircuit: true } : next(url, ctx),
});
const cpu = () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1000; };
(async () => {
  const t0 = performance.now();
  const c0 = cpu();
  const mod = await import(workerData.url);
  const ms = performance.now() - t0;
  const cpuMs = cpu() - c0;
  // The first request: whatever the module left for later (the HTTP app) is built now: the chat
  // app for a chat path, the whole API for any other (src/chat-paths.ts). No bindings, so the app
  // answers its configuration error: routing and the app are all it needs.
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
  console.error = () => {}; // the app logs the missing bindings
  // Node builds its fetch classes (undici) on their first use, about 20 ms here; workerd has them
  // built in. So the request is made, and a response once, before the clock starts.
  const req = new Request("http://startup.test" + workerData.path);
  new Response("");
  const t1 = performance.now();
  const res = await mod.default.fetch(req, {}, ctx);
  await res.arrayBuffer();
  const firstMs = performance.now() - t1;
  parentPort.postMessage({ ms, cpuMs, firstMs, status: res.status, exports: Object.keys(mod) });
})().catch((err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
`;

interface Sample {
  /** Wall time of the import. */
  ms: number;
  /** CPU time of the importing thread: what the import costs, however busy the machine is. */
  cpuMs: number;
  /** Wall time of the first fetch after it. */
  firstMs: number;
  status: number;
  exports: string[];
}

/** Imports `file` in a new worker thread, then sends it one request, to `path`. */
function importOnce(file: string, path = "/healthz"): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const w = new Worker(IMPORTER, { eval: true, workerData: { url: pathToFileURL(file).href, path } });
    w.once("message", (m: Sample & { error?: string }) => {
      void w.terminate();
      if (m.error !== undefined) reject(new Error(`importing ${file}: ${m.error}`));
      else resolve(m);
    });
    w.once("error", reject);
  });
}

export const startupBench: Bench = {
  name: "startup",
  async run(log) {
    const outdir = join(root, ".cache/startup");
    buildWorkerBundle(outdir);
    const bundle = join(outdir, "index.js");
    const emptyDir = join(root, ".cache/startup-empty");
    mkdirSync(emptyDir, { recursive: true });
    const empty = join(emptyDir, "index.js");
    writeFileSync(empty, 'export default { fetch() { return new Response("ok"); } };\n');
    // Says the bundles are ES modules, as workerd is told; else Node parses each twice to find out.
    for (const dir of [outdir, emptyDir]) writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');

    // The worker must export its handlers and Durable Objects, or it measured a broken load.
    const first = await importOnce(bundle);
    for (const name of ["default", "TenantGate", "GlobalGate", "Conversation"]) {
      if (!first.exports.includes(name)) throw new Error(`bundle does not export ${name}`);
    }
    // Without bindings the app must answer its own 500 MISCONFIGURED: the request went through it.
    if (first.status !== 500) throw new Error(`first request answered ${first.status}, not 500`);
    const worker: Sample[] = [];
    const whole: Sample[] = [];
    const base: Sample[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      worker.push(await importOnce(bundle));
      // A path that is not the chat's: its first request builds the whole API.
      whole.push(await importOnce(bundle, "/v1/usage"));
      base.push(await importOnce(empty));
    }
    const p50 = (xs: Sample[], k: "ms" | "cpuMs" | "firstMs") =>
      round(
        pct(
          xs.map((x) => x[k]),
          0.5,
        ),
        1,
      );
    if (whole.some((x) => x.status !== 500))
      throw new Error("a first request to another path did not reach the app");
    log(
      `import ${p50(worker, "ms")} ms (CPU ${p50(worker, "cpuMs")} ms), empty ${p50(base, "ms")} ms; first request ${p50(worker, "firstMs")} ms, to another path ${p50(whole, "firstMs")} ms (median of ${SAMPLES})`,
    );
    const row = (metric: string, k: "ms" | "cpuMs" | "firstMs", xs = worker) => ({
      name: "worker bundle, fresh isolate",
      metric,
      value: p50(xs, k),
      baseline: p50(base, k),
      ratio: round(p50(base, k) / p50(xs, k), 3),
    });
    return {
      rows: [
        row("import ms p50 (vs empty worker)", "ms"),
        row("import CPU ms p50 (vs empty worker)", "cpuMs"),
        row("first request ms p50, a chat path (vs empty worker)", "firstMs"),
        row("first request ms p50, another path: the whole API (vs empty worker)", "firstMs", whole),
      ],
      notes: {
        samples: SAMPLES,
        bundleKiB: Math.round(statSync(bundle).size / 1024),
        importMs: worker.map((t) => round(t.ms, 1)),
        importCpuMs: worker.map((t) => round(t.cpuMs, 1)),
        firstRequestMs: worker.map((t) => round(t.firstMs, 1)),
        firstRequestOtherPathMs: whole.map((t) => round(t.firstMs, 1)),
        emptyImportMs: base.map((t) => round(t.ms, 1)),
      },
    };
  },
};
