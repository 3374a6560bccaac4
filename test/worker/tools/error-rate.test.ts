/**
 * Tool failures in the monitoring error rate (issue #16): the reference's "failed LLM calls + tool
 * failures", of LLM calls and tool calls. Turns whose model calls all succeed cross the alert
 * threshold through tool failures alone; a visitor leaving mid-tool is not a failure.
 */
import { describe, expect, it } from "vitest";
import { admin } from "../helpers";
import { alertTenant, evaluate, ingest, turns } from "../monitoring/helpers";

const fired = async (t: string, now: number) => (await evaluate(t, now)).fired.map((a) => a.rule);
const call = (ok: boolean, failure: string | null = ok ? null : "http_error") => ({
  name: "order_status",
  ok,
  failure,
  latencyMs: ok ? 40 : 100,
});

describe("the error rate counts tool failures", () => {
  it("fires on tool failures alone, with every model call answered", async () => {
    const now = Date.now();
    const t = await alertTenant();
    // 20 answered turns (no LLM failure), 2 tool calls each; 4 tool calls fail: 4 / (20 + 40) = 6.7%.
    const failing = turns(t, 4, now, { toolsUsed: ["order_status"], tools: [call(false), call(true)] });
    const fine = turns(t, 16, now, { toolsUsed: ["order_status"], tools: [call(true), call(true)] });
    await ingest([...failing, ...fine]);
    expect(await fired(t, now)).toContain("error_rate");
  });

  it("stays quiet below the threshold, and does not count a visitor leaving mid-tool", async () => {
    const now = Date.now();
    const t = await alertTenant();
    // 2 failures / 60 calls = 3.3%; 20 cancelled calls on top are not failures.
    const failing = turns(t, 2, now, { tools: [call(false), call(true)] });
    const fine = turns(t, 18, now, { tools: [call(true), call(true)] });
    const left = turns(t, 20, now, { outcome: "disconnected", tools: [call(false, "cancelled")] });
    await ingest([...failing, ...fine, ...left]);
    expect(await fired(t, now)).not.toContain("error_rate");
  });
});

describe("per-tool figures", () => {
  it("shows each tool's calls, failures and latency in the dashboard and in Prometheus", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest([
      ...turns(t, 3, now, { toolsUsed: ["order_status"], tools: [call(true), call(false, "timeout")] }),
      ...turns(t, 1, now, { outcome: "disconnected", tools: [call(false, "cancelled")] }),
    ]);
    const dash = (await (await admin("GET", `/tenants/${t}/analytics/dashboard?days=1`)).json()) as {
      tools: {
        tool: string;
        calls: number;
        failures: number;
        failure_rate_pct: number;
        avg_latency_ms: number;
      }[];
    };
    // 7 calls: 3 ok (40 ms), 3 timeouts and 1 cancelled (100 ms each); the cancelled one is no failure.
    expect(dash.tools).toEqual([
      {
        tool: "order_status",
        calls: 7,
        failures: 3,
        failure_rate_pct: (3 * 100) / 7,
        avg_latency_ms: 520 / 7,
      },
    ]);
    const text = await (await admin("GET", "/metrics")).text();
    const line = (name: string) =>
      text.split("\n").find((l) => l.startsWith(name) && l.includes(`tenant="${t}"`));
    expect(line(`chatedge_tool_calls_total{tenant="${t}",tool="order_status",result="ok"}`)).toMatch(/ 4$/);
    expect(line(`chatedge_tool_calls_total{tenant="${t}",tool="order_status",result="failure"}`)).toMatch(
      / 3$/,
    );
    expect(line(`chatedge_tool_call_seconds_total{tenant="${t}",tool="order_status"}`)).toMatch(/ 0\.52$/);
  });
});
