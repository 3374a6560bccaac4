/**
 * One platform, one answer: `GET /admin/monitoring` and the `chatedge_platform_*` gauges of
 * `GET /admin/metrics` count the same tenants, a deactivated tenant's traffic included
 * (docs/monitoring.md, "Which tenants the platform counts").
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { admin } from "../helpers";
import { alertTenant, ingest, turns } from "./helpers";

type Family = { name: string; metrics: { labels?: Record<string, string>; value?: string }[] };
type MetricView = { value: number | null; unit: string };
type PlatformJson = {
  tenants: { active: number; inactive: number };
  metrics: Record<string, MetricView>;
  volume: { daily_active_users_today: number };
};

// The JSON's metric keys beside the platform gauge of the same figure, in Prometheus base units.
const GAUGE_OF: Record<string, string> = {
  p50_response_time_ms: "chatedge_platform_response_time_p50_seconds",
  p99_response_time_ms: "chatedge_platform_response_time_p99_seconds",
  resolution_rate_pct: "chatedge_platform_resolution_ratio",
  escalation_rate_pct: "chatedge_platform_escalation_ratio",
  error_rate_pct: "chatedge_platform_error_ratio",
  dau_change_pct: "chatedge_platform_daily_active_users_change_ratio",
  cost_per_conversation_usd: "chatedge_platform_cost_per_conversation_usd",
  avg_csat: "chatedge_platform_csat_score",
  safety_spike_ratio: "chatedge_platform_safety_spike_ratio",
  // Seconds already: the longest current wait for a human on the platform.
  handoff_wait_seconds: "chatedge_platform_handoff_wait_seconds",
};

/** The platform figures as the monitoring JSON gives them, in the scrape's units (null: no sample). */
async function fromJson(): Promise<Record<string, number | null>> {
  const res = await admin("GET", "/monitoring");
  expect(res.status).toBe(200);
  const body = (await res.json()) as PlatformJson;
  const out: Record<string, number | null> = {
    chatedge_platform_daily_active_users: body.volume.daily_active_users_today,
  };
  for (const [key, gauge] of Object.entries(GAUGE_OF)) {
    const m = body.metrics[key];
    expect(m, key).toBeDefined();
    const v = m?.value ?? null;
    out[gauge] = v === null ? null : m?.unit === "ms" ? v / 1000 : m?.unit === "pct" ? v / 100 : v;
  }
  return out;
}

/** The same figures as the Prometheus scrape gives them. */
async function fromScrape(): Promise<Record<string, number | null>> {
  const res = await admin("GET", "/metrics");
  expect(res.status).toBe(200);
  const families = new Map((parsePrometheusTextFormat(await res.text()) as Family[]).map((f) => [f.name, f]));
  const out: Record<string, number | null> = {};
  for (const name of ["chatedge_platform_daily_active_users", ...Object.values(GAUGE_OF)]) {
    const v = families.get(name)?.metrics[0]?.value;
    out[name] = v === undefined ? null : Number(v);
  }
  return out;
}

describe("platform figures", () => {
  it("are the same in the monitoring JSON and the scrape, a deactivated tenant's traffic included", async () => {
    const now = Date.now();
    const active = await alertTenant();
    const gone = await alertTenant();
    await ingest([
      ...turns(active, 20, now, { latencyMs: 1_000 }),
      ...turns(gone, 15, now, { latencyMs: 9_000 }),
      ...turns(gone, 5, now, { latencyMs: 9_000, outcome: "error", error: "provider 500", costUsd: 0 }),
    ]);
    expect((await admin("DELETE", `/tenants/${gone}`)).status).toBe(200);

    // Other test files may write between two reads: compare a scrape taken between two equal JSONs.
    let json: Record<string, number | null> = {};
    let scraped: Record<string, number | null> = {};
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = await fromJson();
      scraped = await fromScrape();
      json = await fromJson();
      if (JSON.stringify(before) === JSON.stringify(json)) break;
    }
    expect(scraped).toEqual(json);
    // Both tenants' 35 distinct users (20 + 15; the error turns reuse u-0..u-4) count today, the
    // deactivated one's too; other test files may add theirs.
    expect(json.chatedge_platform_daily_active_users).toBeGreaterThanOrEqual(35);
    expect(json.chatedge_platform_error_ratio).toBeGreaterThan(0);

    const body = (await (await admin("GET", "/monitoring")).json()) as PlatformJson;
    expect(body.tenants.inactive).toBeGreaterThanOrEqual(1);
  });
});
