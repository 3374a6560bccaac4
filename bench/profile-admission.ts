/**
 * Where admission's CPU goes: runs the admission bench's worker (bench/worker/admission.ts) in
 * workerd with its inspector open, sends one target's requests at the bench's concurrency, and
 * records a V8 CPU profile of the isolate (its Durable Objects included). Prints self and
 * inclusive time per source function (mapped through the bundle's source map) and writes the
 * .cpuprofile for DevTools.
 *
 *   [CONCURRENCY=16] bash scripts/node.sh node bench/profile-admission.ts [admit|counter|admit-only|admit-settle-rpc] [requests]
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hit, startAdmissionWorker, type Target } from "./admission.ts";
import { bundleBenchWorkerMapped, closedLoop } from "./lib.ts";
import { profileWhile, reportProfile } from "./profile.ts";

const target = (process.argv[2] ?? "admit") as Target;
const REQUESTS = Number(process.argv[3] ?? 8_000);
const WARMUP = Number(process.env.WARMUP ?? 6_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const INSPECTOR_PORT = 9_341;
const root = fileURLToPath(new URL("..", import.meta.url));

// The bench's worker, as bench/admission.ts runs it, with a source map.
const { js, map: mapText } = await bundleBenchWorkerMapped("admission.ts");
const { base, close } = await startAdmissionWorker(js, { inspectorPort: INSPECTOR_PORT });

try {
  await closedLoop(WARMUP, CONCURRENCY, () => hit(base, target));
  const profile = await profileWhile(
    INSPECTOR_PORT,
    (titles) => titles.findIndex((t) => t.includes("worker.mjs") || t.includes("core:user")),
    async () => {
      await closedLoop(REQUESTS, CONCURRENCY, () => hit(base, target));
      await new Promise((r) => setTimeout(r, 100));
    },
  );
  const file = `${root}.cache/profile-admission-${target}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  reportProfile(profile, { label: target, requests: REQUESTS, bundle: "worker.mjs", sourceMap: mapText });
  console.log(`\n${file}`);
} finally {
  await close();
}
