/**
 * `npm test`: makes sure PostgreSQL and Redis are up (scripts/services.sh starts or installs them),
 * then runs every test project (Node-side bridges, and the worker inside workerd) with vitest, and
 * ends with one plain summary line. Extra arguments go to vitest.
 */
import { spawnSync } from "node:child_process";
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

const report = `${root}.cache/vitest-report.json`;
rmSync(report, { force: true });
const run = spawnSync(
  "vitest",
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { cwd: root, stdio: "inherit" },
);

if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
  };
  console.log(
    `\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`,
  );
}
process.exit(run.status ?? 1);
