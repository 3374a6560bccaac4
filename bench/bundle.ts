import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { buildWorkerBundle } from "./lib.ts";
import type { Bench } from "./types.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Workers' limits on the compressed bundle: 3 MB on the free plan, 10 MB on paid plans. */
const FREE_PLAN_LIMIT_KIB = 3 * 1024;

export const bundleBench: Bench = {
  name: "bundle",
  async run(log) {
    const outdir = join(root, ".cache/bundle-size");
    buildWorkerBundle(outdir);
    let raw = 0;
    let gz = 0;
    for (const f of readdirSync(outdir)) {
      if (!/\.(m?js|wasm)$/.test(f)) continue;
      const path = join(outdir, f);
      raw += statSync(path).size;
      gz += gzipSync(readFileSync(path), { level: 9 }).length;
    }
    log(`bundle: ${(raw / 1024).toFixed(0)} KiB raw, ${(gz / 1024).toFixed(0)} KiB gzipped`);
    return {
      rows: [
        {
          name: "worker bundle",
          metric: "KiB raw",
          value: Math.round(raw / 1024),
          baseline: null,
          ratio: null,
        },
        {
          name: "worker bundle",
          metric: "KiB gzipped (vs free-plan limit)",
          value: Math.round(gz / 1024),
          baseline: FREE_PLAN_LIMIT_KIB,
          ratio: Math.round((FREE_PLAN_LIMIT_KIB / (gz / 1024)) * 100) / 100,
        },
      ],
    };
  },
};
