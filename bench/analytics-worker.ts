/**
 * Runs the real worker for a benchmark: bundled by wrangler (`deploy --dry-run`), served by the
 * Miniflare API (not `wrangler dev`, which adds a proxy process and trace recording), reaching
 * Postgres through the local WebSocket relay the way it reaches Neon's proxy in production.
 */

import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { startRelay } from "../local/relay.ts";
import { buildWorkerBundle } from "./lib.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

export interface BenchWorker {
  url: string;
  /** The control worker's own address, when one was asked for (BenchWorkerOptions.control). */
  controlUrl?: string;
  adminToken: string;
  stop(): Promise<void>;
}

/** The parts of wrangler.jsonc the worker needs to run, in Miniflare's terms. */
function readConfig() {
  const c = unstable_readConfig({ config: `${root}wrangler.jsonc` }) as {
    compatibility_date?: string;
    compatibility_flags?: string[];
    vars?: Record<string, string>;
    durable_objects?: { bindings?: { name: string; class_name: string }[] };
    send_email?: { name: string }[];
    queues?: {
      producers?: { binding: string; queue: string }[];
      consumers?: {
        queue: string;
        max_batch_size?: number;
        max_batch_timeout?: number;
        max_retries?: number;
        dead_letter_queue?: string;
      }[];
    };
  };
  const durableObjects: Record<string, { className: string; useSQLite: boolean }> = {};
  for (const b of c.durable_objects?.bindings ?? [])
    durableObjects[b.name] = { className: b.class_name, useSQLite: true };
  const queueProducers: Record<string, { queueName: string }> = {};
  for (const p of c.queues?.producers ?? []) queueProducers[p.binding] = { queueName: p.queue };
  const queueConsumers: Record<string, Record<string, unknown>> = {};
  for (const q of c.queues?.consumers ?? []) {
    queueConsumers[q.queue] = {
      maxBatchSize: q.max_batch_size,
      maxBatchTimeout: q.max_batch_timeout,
      maxRetries: q.max_retries,
      deadLetterQueue: q.dead_letter_queue,
    };
  }
  return {
    compatibilityDate: c.compatibility_date,
    compatibilityFlags: c.compatibility_flags ?? [],
    vars: c.vars ?? {},
    durableObjects,
    queueProducers,
    queueConsumers,
    sendEmail: c.send_email ?? [],
  };
}

export interface BenchWorkerOptions {
  /** Extra vars and secrets (provider keys, Redis, cache settings). */
  bindings?: Record<string, string>;
  /** Also run the queue consumers, as production does (their work shares workerd's thread). */
  consumers?: boolean;
  /** Opens workerd's DevTools inspector on this port (CPU profiles: bench/profile-chat.ts). */
  inspectorPort?: number;
  /**
   * Also runs `script` as a second worker in the same workerd process, on a socket of its own
   * (`controlUrl`), with `UPSTREAM` bound: a control whose CPU lands in the same process's count
   * (bench/ab.ts).
   */
  control?: { script: string; upstream: string };
}

/** Bundles and starts the worker against `databaseUrl`; call `stop()` when done. */
export async function startBenchWorker(
  databaseUrl: string,
  opts: BenchWorkerOptions = {},
): Promise<BenchWorker> {
  const outdir = `${root}.cache/bench-worker`;
  buildWorkerBundle(outdir);
  const config = readConfig();
  const pgUrl = new URL(databaseUrl);
  const relay = await startRelay({ target: { host: pgUrl.hostname, port: Number(pgUrl.port || 5432) } });
  const adminToken = "bench-admin-token-0123456789";
  const shared = {
    // Errors only: request lines would land in the middle of the measurements.
    log: new Log(LogLevel.ERROR),
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
  };
  const worker = {
    modules: true,
    scriptPath: `${outdir}/index.js`,
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    bindings: {
      ...config.vars,
      ENVIRONMENT: "development",
      DATABASE_URL: databaseUrl,
      NEON_WS_PROXY: `127.0.0.1:${relay.port}/v2`,
      ADMIN_TOKEN: adminToken,
      ...opts.bindings,
    },
    durableObjects: config.durableObjects,
    queueProducers: config.queueProducers,
    email: { send_email: config.sendEmail },
    ...(opts.consumers ? { queueConsumers: config.queueConsumers } : {}),
  };
  const mf = new Miniflare(
    convertV4MiniflareOptions(
      opts.control
        ? {
            ...shared,
            workers: [
              { name: "chatedge", ...worker },
              {
                name: "control",
                modules: true,
                script: opts.control.script,
                compatibilityDate: config.compatibilityDate,
                bindings: { UPSTREAM: opts.control.upstream },
                unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
              },
            ],
          }
        : { ...shared, ...worker },
    ),
  );
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const controlUrl = opts.control
    ? (await mf.unsafeGetDirectURL("control")).toString().replace(/\/$/, "")
    : undefined;
  return {
    url,
    controlUrl,
    adminToken,
    async stop() {
      await mf.dispose();
      await relay.close();
    },
  };
}
