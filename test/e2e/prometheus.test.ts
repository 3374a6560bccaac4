/**
 * Prometheus itself (Debian's `prometheus` package: CI installs it, see .ci/run) pointed at
 * `npm run dev` exactly as the README says: `promtool check metrics` lints the exposition, and a
 * real Prometheus server scrapes /admin/metrics with the admin token and answers PromQL over it.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/ports.ts";
import { type Stack, startStack } from "./stack";

const PROMETHEUS = process.env.PROMETHEUS_PATH ?? "/usr/bin/prometheus";
const PROMTOOL = process.env.PROMTOOL_PATH ?? "/usr/bin/promtool";

let stack: Stack;
let prometheus: ChildProcess | undefined;
let promBase = "";
const dir = mkdtempSync(join(tmpdir(), "chatedge-prometheus-"));

beforeAll(async () => {
  for (const bin of [PROMETHEUS, PROMTOOL]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: apt-get install prometheus (.ci/run does)`);
  }
  stack = await startStack();
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once("exit", r));
    prometheus.kill("SIGTERM");
    await exited;
  }
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function scrapeText(): Promise<string> {
  const res = await fetch(`${stack.base}/admin/metrics`, {
    headers: { authorization: `Bearer ${stack.adminToken}` },
  });
  expect(res.status).toBe(200);
  return res.text();
}

/** A PromQL instant query against the Prometheus server. */
async function promQuery(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${promBase}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: never[] } };
  expect(body.status).toBe("success");
  return body.data.result;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 45_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${stack.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Starts Prometheus on a port the OS had free a moment before, and waits until it is ready. If
 * another process took the port first, Prometheus exits saying so, and another port is tried.
 */
async function startPrometheus(config: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let log = "";
    child.stderr?.on("data", (d) => {
      log += String(d);
    });
    const exited = new Promise<"exited">((r) => child.once("exit", () => r("exited")));
    const ready = until("Prometheus to be ready", async () => {
      if (child.exitCode !== null) return "exited" as const;
      const res = await fetch(`http://127.0.0.1:${port}/-/ready`);
      return res.ok ? ("ready" as const) : undefined;
    });
    if ((await Promise.race([ready, exited])) === "ready") {
      prometheus = child;
      promBase = `http://127.0.0.1:${port}`;
      return;
    }
    if (attempt === 3 || !log.includes("address already in use"))
      throw new Error(`prometheus exited (${child.exitCode}):\n${log.slice(-2000)}`);
  }
}

describe("Prometheus pointed at /admin/metrics", () => {
  it("promtool finds nothing to complain about", async () => {
    // Some traffic first, so tenant series exist: two chats of the demo tenant.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${stack.base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.secretKey}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "mock",
          user: "prom-user",
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      expect(res.status).toBe(200);
    }
    const text = await until("the chats' counters and response-time histogram", async () => {
      const t = await scrapeText();
      return /chatedge_requests_total\{tenant="demo"\} [1-9]/.test(t) &&
        /chatedge_response_time_seconds_count\{tenant="demo"\} [1-9]/.test(t)
        ? t
        : undefined;
    });
    const lint = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe("");
    expect(lint.status).toBe(0);
  });

  it("a Prometheus server scrapes it with the admin token and answers PromQL", async () => {
    const target = new URL(stack.base).host;
    const config = join(dir, "prometheus.yml");
    // The README's scrape job, with a short interval for the test.
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        "  - job_name: chatedge",
        "    metrics_path: /admin/metrics",
        "    authorization:",
        `      credentials: ${stack.adminToken}`,
        "    static_configs:",
        `      - targets: ["${target}"]`,
        "",
      ].join("\n"),
    );
    const check = spawnSync(PROMTOOL, ["check", "config", config], { encoding: "utf8" });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    await startPrometheus(config);
    const up = await until("the scrape to succeed", async () => {
      const r = await promQuery('up{job="chatedge"}');
      return r[0]?.value[1] === "1" ? r : undefined;
    });
    expect(up[0]?.metric.instance).toBe(target);
    const requests = await until("the demo tenant's requests", async () => {
      const r = await promQuery('sum by (tenant) (chatedge_requests_total{tenant="demo"})');
      return r.length > 0 ? r : undefined;
    });
    expect(Number(requests[0]?.value[1])).toBeGreaterThanOrEqual(2);
    const thresholds = await promQuery('chatedge_alert_threshold{tenant="demo",rule="p99_response_time"}');
    expect(Number(thresholds[0]?.value[1])).toBe(15);
    // The histogram: its count is the answered turns, and a quantile over it is finite.
    const count = await promQuery('chatedge_response_time_seconds_count{tenant="demo"}');
    const answered = await promQuery('sum(chatedge_turns_total{tenant="demo",outcome=~"ok|error"})');
    expect(Number(count[0]?.value[1])).toBeGreaterThanOrEqual(2);
    expect(count[0]?.value[1]).toBe(answered[0]?.value[1]);
    const p99 = await promQuery(
      'histogram_quantile(0.99, sum by (le) (chatedge_response_time_seconds_bucket{tenant="demo"}))',
    );
    expect(Number(p99[0]?.value[1])).toBeGreaterThan(0);
    expect(Number(p99[0]?.value[1])).toBeLessThanOrEqual(120);
    // The README's expressions are valid PromQL (their values need traffic across two scrapes).
    await promQuery(
      "histogram_quantile(0.99, sum by (le) (rate(chatedge_response_time_seconds_bucket[5m])))",
    );
    await promQuery(
      "sum by (tenant) (rate(chatedge_response_time_seconds_sum[5m])) / sum by (tenant) (rate(chatedge_response_time_seconds_count[5m]))",
    );
    const tenants = await promQuery('chatedge_tenants{state="active"}');
    expect(Number(tenants[0]?.value[1])).toBeGreaterThanOrEqual(1);
  });
});
