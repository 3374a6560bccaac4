/** The worker bundle's size, raw and gzipped, as `wrangler deploy` would upload it. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Bench } from "./types.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Workers' limits on the compressed bundle: 3 MB on the free plan, 10 MB on paid plans. */
const FREE_PLAN_LIMIT_KIB = 3 * 1024;

export const bundleBench: Bench = {
  name: "bundle",
  async run(log) {
    const outdir = join(root, ".cache/bundle-size");
    const built = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    if (built.status !== 0) throw new Error(`wrangler bundle failed: ${built.stderr || built.stdout}`);
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
