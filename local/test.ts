/**
 * `npm test`: makes sure PostgreSQL and Redis are up (scripts/services.sh starts or installs them),
 * then runs every test project (Node-side bridges, and the worker inside workerd) with vitest, and
 * ends with one plain summary line. Extra arguments go to vitest.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

const services = spawnSync("bash", ["scripts/services.sh"], { cwd: root, stdio: "inherit" });
if (services.status !== 0) {
  console.error(
    "tests need PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; scripts/services.sh could not start them",
  );
  process.exit(1);
}

type Report = { numPassedTests: number; numFailedTests: number; numPendingTests: number };

/** Runs vitest with `args`; its JSON report goes to `.cache/vitest-report<suffix>.json`. */
function vitest(
  args: string[],
  suffix: string,
  output: "inherit" | "buffer",
  env: Record<string, string> = {},
) {
  const report = `${root}.cache/vitest-report${suffix}.json`;
  rmSync(report, { force: true });
  const child = spawn(
    "vitest",
    ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...args],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: output === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
    },
  );
  let text = "";
  child.stdout?.on("data", (d) => (text += d));
  child.stderr?.on("data", (d) => (text += d));
  return new Promise<{ status: number; report?: Report; text: string }>((resolve) =>
    child.on("close", (code) =>
      resolve({
        status: code ?? 1,
        report: existsSync(report) ? (JSON.parse(readFileSync(report, "utf8")) as Report) : undefined,
        text,
      }),
    ),
  );
}

const extra = process.argv.slice(2);
// The whole suite, four vitest runs side by side:
// - the worker project in two halves (`--shard`), each in a workerd of its own, with its own
//   database (test/global-setup.ts makes one per run) and its own Redis database: its files run one
//   at a time and mostly wait (on Postgres, Redis, timers), so one half used about 40% of a core and
//   the whole project took as long as the rest of the suite together;
// - the Node and e2e projects, and the browser project (one file at a time). These mostly wait on
//   the `npm run dev` stacks they start (test/e2e/stack.ts lets one start at a time).
// The first run's output is printed as it goes, the others' when they end. Any argument: one plain
// run.
const redis = new URL(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
redis.pathname = "/3"; // 1 and 2 are the e2e and browser stacks' (vitest.config.ts)
const runs =
  extra.length > 0
    ? [vitest(extra, "", "inherit")]
    : [
        vitest(["--project", "worker", "--shard=1/2"], "", "inherit"),
        vitest(["--project", "worker", "--shard=2/2"], "-worker2", "buffer", {
          TEST_REDIS_URL: redis.toString(),
        }),
        vitest(["--project", "node", "--project", "e2e"], "-node", "buffer"),
        vitest(["--project", "browser"], "-browser", "buffer"),
      ];
const results = await Promise.all(runs);
for (const r of results.slice(1)) process.stdout.write(r.text);
const sum = (k: keyof Report) => results.reduce((n, r) => n + (r.report?.[k] ?? 0), 0);
if (results.some((r) => r.report)) {
  console.log(
    `\ntests: ${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed, ${sum("numPendingTests")} skipped`,
  );
}
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
