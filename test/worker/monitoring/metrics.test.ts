/**
 * The monitoring read side: `GET /admin/metrics` parsed by a real Prometheus text-format parser
 * (parse-prometheus-text-format, a port of the Prometheus Python client's parser), tenant and
 * platform monitoring JSON, and refusals counted end to end from a 429 to the counters.
 * No test here evaluates every tenant (see alerts.test.ts); states are read, not raced for.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import type { RefusalEvent, TurnEvent } from "../../../src/analytics/events";
import { completions } from "../chat/helpers";
import { eventually } from "../eventually";
import { admin, call, createKey, envelope, query, send, sql } from "../helpers";
import { alertTenant, conversations, evaluate, ingest, MINUTE, turns } from "./helpers";

type Family = {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "SUMMARY" | "HISTOGRAM" | "UNTYPED";
  metrics: {
    labels?: Record<string, string>;
    value?: string;
    quantiles?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
};

async function exposition(): Promise<string> {
  const res = await admin("GET", "/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return res.text();
}

const familiesOf = (text: string) =>
  new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));

async function scrape(): Promise<Map<string, Family>> {
  return familiesOf(await exposition());
}

/**
 * A tenant's response-time (or `name`) histogram (cumulative counts by `le`, count, sum), read by the same
 * parser. Its port flattens a histogram family's series into one, so the tenant's series is parsed
 * alone, without its tenant label. Checks the buckets are cumulative and `+Inf` is the count.
 */
function histogram(text: string, tenant: string, name = "chatedge_response_time_seconds") {
  const label = `tenant="${tenant}"`;
  const own = text
    .split("\n")
    .filter((l) => l.startsWith(`${name}_`) && (l.includes(`{${label},`) || l.includes(`{${label}}`)))
    .map((l) => l.replace(`{${label},`, "{").replace(`{${label}}`, ""));
  if (own.length === 0) return undefined;
  const f = familiesOf([`# TYPE ${name} histogram`, ...own, ""].join("\n")).get(name);
  expect(f?.type).toBe("HISTOGRAM");
  const s = f?.metrics[0];
  const le = Object.fromEntries(Object.entries(s?.buckets ?? {}).map(([k, v]) => [k, Number(v)]));
  const counts = Object.entries(le)
    .map(([b, v]): [number, number] => [b === "+Inf" ? Number.POSITIVE_INFINITY : Number(b), v])
    .sort(([a], [b]) => a - b)
    .map(([, v]) => v);
  expect(counts, "cumulative").toEqual([...counts].sort((a, b) => a - b));
  expect(le["+Inf"], "+Inf is the count").toBe(Number(s?.count));
  return { le, count: Number(s?.count), sum: Number(s?.sum) };
}

/** The value of a family's sample for a tenant (and more labels), as a number. */
function sample(f: Family | undefined, labels: Record<string, string>): number | undefined {
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

function refusal(tenantId: string, reason: RefusalEvent["reason"], count: number): RefusalEvent {
  return { type: "refusal", id: crypto.randomUUID(), tenantId, at: Date.now() - MINUTE, reason, count };
}

describe("GET /admin/metrics", () => {
  it("is Prometheus text a real parser reads: names, types, tenant labels, values", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest([
      ...turns(t, 18, now, { latencyMs: 1_000, inputTokens: 100, outputTokens: 40, costUsd: 0.001 }),
      ...turns(t, 2, now, { latencyMs: 1_000, outcome: "error", error: "provider 500", costUsd: 0 }),
      ...conversations(t, 4, now, (i) => ({
        resolved: i < 3,
        escalated: i === 3,
        csat: 4,
        totalCostUsd: 0.02,
      })),
      refusal(t, "user", 3),
      refusal(t, "tenant", 2),
      refusal(t, "daily_cost", 1),
      refusal(t, "visitor_tokens", 5),
    ]);
    await evaluate(t, now); // error rate 10% > 5%: firing
    const text = await exposition();
    const m = familiesOf(text);

    for (const f of m.values()) {
      expect(f.name).toMatch(/^chatedge_[a-z0-9_]+$/);
      expect(f.help.length).toBeGreaterThan(0);
      if (f.type === "COUNTER") expect(f.name).toMatch(/_total$/);
      for (const s of f.metrics) {
        for (const v of [s.value, s.count, s.sum, ...Object.values(s.buckets ?? {})]) {
          if (v !== undefined) expect(Number.isFinite(Number(v)), `${f.name} ${v}`).toBe(true);
        }
      }
    }
    const tenant = { tenant: t };
    expect(m.get("chatedge_requests_total")?.type).toBe("COUNTER");
    expect(sample(m.get("chatedge_requests_total"), tenant)).toBe(20 + 11);
    expect(sample(m.get("chatedge_turns_total"), { ...tenant, outcome: "ok" })).toBe(18);
    expect(sample(m.get("chatedge_turns_total"), { ...tenant, outcome: "error" })).toBe(2);
    expect(sample(m.get("chatedge_tokens_total"), { ...tenant, direction: "input" })).toBe(2_000);
    expect(sample(m.get("chatedge_tokens_total"), { ...tenant, direction: "output" })).toBe(18 * 40 + 2 * 50);
    expect(sample(m.get("chatedge_cost_usd_total"), tenant)).toBeCloseTo(0.018, 10);
    expect(sample(m.get("chatedge_conversations_total"), tenant)).toBe(4);
    expect(sample(m.get("chatedge_conversations_resolved_total"), tenant)).toBe(3);
    expect(sample(m.get("chatedge_conversations_escalated_total"), tenant)).toBe(1);
    expect(sample(m.get("chatedge_csat_ratings_total"), tenant)).toBe(4);
    expect(sample(m.get("chatedge_csat_score_total"), tenant)).toBe(16);
    expect(sample(m.get("chatedge_rate_limit_refusals_total"), { ...tenant, level: "user" })).toBe(3);
    expect(sample(m.get("chatedge_rate_limit_refusals_total"), { ...tenant, level: "tenant" })).toBe(2);
    expect(sample(m.get("chatedge_rate_limit_refusals_total"), { ...tenant, level: "global" })).toBe(0);
    expect(sample(m.get("chatedge_budget_refusals_total"), { ...tenant, budget: "daily_cost" })).toBe(1);
    expect(sample(m.get("chatedge_budget_refusals_total"), { ...tenant, budget: "visitor_tokens" })).toBe(5);

    expect(m.get("chatedge_response_time_seconds")?.type).toBe("HISTOGRAM");
    expect(histogram(text, t)).toMatchObject({ count: 20, le: { "1": 20, "0.5": 0 } });
    expect(histogram(text, t)?.sum).toBeCloseTo(20, 6);
    expect(sample(m.get("chatedge_response_time_p50_seconds"), tenant)).toBeCloseTo(1, 1);
    expect(sample(m.get("chatedge_response_time_p99_seconds"), tenant)).toBeCloseTo(1, 1);
    expect(m.get("chatedge_error_ratio")?.type).toBe("GAUGE");
    expect(sample(m.get("chatedge_error_ratio"), tenant)).toBeCloseTo(0.1, 10);
    expect(sample(m.get("chatedge_resolution_ratio"), tenant)).toBeCloseTo(0.75, 10);
    expect(sample(m.get("chatedge_escalation_ratio"), tenant)).toBeCloseTo(0.25, 10);
    expect(sample(m.get("chatedge_csat_score"), tenant)).toBe(4);
    expect(sample(m.get("chatedge_cost_per_conversation_usd"), tenant)).toBeCloseTo(0.02, 10);
    expect(sample(m.get("chatedge_daily_active_users"), tenant)).toBe(18); // the error turns reuse two users
    expect(sample(m.get("chatedge_alert_threshold"), { ...tenant, rule: "p50_response_time" })).toBe(5);
    expect(sample(m.get("chatedge_alert_threshold"), { ...tenant, rule: "error_rate" })).toBe(0.05);
    expect(sample(m.get("chatedge_alert_firing"), { ...tenant, rule: "error_rate" })).toBe(1);
    expect(sample(m.get("chatedge_alert_firing"), { ...tenant, rule: "p50_response_time" })).toBe(0);
    // No value in its window: no sample rather than NaN.
    expect(sample(m.get("chatedge_daily_active_users_change_ratio"), tenant)).toBeUndefined();

    expect(sample(m.get("chatedge_platform_error_ratio"), {})).toBeGreaterThanOrEqual(0);
    expect(sample(m.get("chatedge_tenants"), { state: "active" })).toBeGreaterThan(0);
    expect(m.get("chatedge_queue_messages_written_total")?.type).toBe("COUNTER");
    // Written so far by every test: at least this one's 28 messages.
    expect(
      sample(m.get("chatedge_queue_messages_written_total"), { queue: "chatedge-analytics" }),
    ).toBeGreaterThanOrEqual(28);
    expect(
      sample(m.get("chatedge_queue_wait_seconds_total"), { queue: "chatedge-analytics" }),
    ).toBeGreaterThanOrEqual(0);
    const lag = m.get("chatedge_queue_lag_seconds");
    expect(sample(lag, { queue: "chatedge-analytics", stat: "max" })).toBeGreaterThanOrEqual(0);
    expect(
      sample(m.get("chatedge_queue_last_write_timestamp_seconds"), { queue: "chatedge-analytics" }),
    ).toBeGreaterThan(now / 1000 - 120);
  });

  it("counts disconnects and hand-overs by outcome, as requests, and never as errors", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest([
      ...turns(t, 4, now, { latencyMs: 1_000 }),
      ...turns(t, 1, now, { latencyMs: 1_000, outcome: "error", error: "provider 500" }),
      ...turns(t, 3, now, { latencyMs: 9_000, outcome: "disconnected", error: "client disconnected" }),
      ...turns(t, 2, now, { latencyMs: 0, outcome: "human", calledModel: null }),
      refusal(t, "user", 1),
    ]);
    const text = await exposition();
    const m = familiesOf(text);
    const tenant = { tenant: t };
    expect(sample(m.get("chatedge_requests_total"), tenant)).toBe(4 + 1 + 3 + 2 + 1);
    const byOutcome = ["ok", "error", "disconnected", "blocked", "human"].map((outcome) =>
      sample(m.get("chatedge_turns_total"), { ...tenant, outcome }),
    );
    expect(byOutcome).toEqual([4, 1, 3, 0, 2]);
    // The error ratio and the response time are over the five answered turns only.
    expect(sample(m.get("chatedge_error_ratio"), tenant)).toBeCloseTo(0.2, 10);
    expect(histogram(text, t)?.count).toBe(5);
    expect(histogram(text, t)?.sum).toBeCloseTo(5, 6);
    const mon = (await (await admin("GET", `/tenants/${t}/monitoring`)).json()) as {
      metrics: Record<string, { value: number | null; events: number }>;
      volume: Record<string, unknown>;
    };
    expect(mon.metrics.error_rate_pct).toMatchObject({ value: 20, events: 5 });
    expect(mon.volume).toMatchObject({
      requests: 11,
      turns: 10,
      answered: 5,
      errors: 1,
      disconnected: 3,
      blocked: 0,
      human: 2,
    });
  });

  it("exports response time as a cumulative histogram of answered turns since the beginning", async () => {
    const now = Date.now();
    const t = await alertTenant();
    const ms = (latencyMs: number, n: number, o: Partial<TurnEvent> = {}) =>
      turns(t, n, now, { latencyMs, ...o });
    await ingest([
      ...ms(40, 3),
      ...ms(700, 5),
      ...ms(1_900, 4),
      ...ms(2_000, 1), // at the 2 s bound: counts in it
      ...ms(2_016, 1), // the stored bucket after the 2 s bound's (1,984..2,015 ms): counts from 3 s
      ...ms(4_000, 2, { outcome: "error", error: "provider 500" }),
      ...ms(14_000, 1),
      ...ms(200_000, 1), // above the last bound: only in +Inf
      ...ms(9_000, 3, { outcome: "disconnected", error: "client disconnected" }), // no response time
      ...ms(0, 2, { outcome: "human", calledModel: null }),
    ]);
    const h = histogram(await exposition(), t);
    expect(h?.le).toEqual({
      "0.05": 3,
      "0.1": 3,
      "0.25": 3,
      "0.5": 3,
      "1": 8,
      "2": 13,
      "3": 14,
      "5": 16,
      "8": 16,
      "10": 16,
      "15": 17,
      "20": 17,
      "30": 17,
      "60": 17,
      "120": 17,
      "+Inf": 18,
    });
    expect(h?.count).toBe(18); // the answered turns: ok and error
    const summed = 3 * 40 + 5 * 700 + 4 * 1_900 + 2_000 + 2_016 + 2 * 4_000 + 14_000 + 200_000;
    expect(h?.sum).toBeCloseTo(summed / 1000, 6);
    // A second batch only adds: the buckets are counters.
    await ingest(ms(700, 2));
    const after = histogram(await exposition(), t);
    expect([after?.le["0.5"], after?.le["1"], after?.le["+Inf"], after?.count]).toEqual([3, 10, 20, 20]);
  });

  it("exports first-token time of answered streamed turns as a histogram, and the dashboard's P50/P95", async () => {
    const now = Date.now();
    const t = await alertTenant();
    const ft = (firstTokenMs: number | null, n: number, o: Partial<TurnEvent> = {}) =>
      turns(t, n, now, { latencyMs: 250_000, firstTokenMs, ...o });
    const events = [
      ...ft(40, 3),
      ...ft(300, 4),
      ...ft(1_000, 2), // at the 1 s bound: counts in it
      ...ft(2_016, 1, { outcome: "error", error: "stream cut" }), // past the 2 s bound's bucket: from 3 s
      ...ft(200_000, 1), // above the last bound: only in +Inf
      ...ft(null, 5), // answered as JSON: no first token, not counted
      ...ft(100, 2, { outcome: "disconnected", error: "client disconnected" }), // not answered
      ...ft(null, 1, { outcome: "human", calledModel: null }),
    ];
    await ingest(events);
    // A redelivery of every event adds nothing.
    await ingest(events);
    const text = await exposition();
    expect(familiesOf(text).get("chatedge_first_token_seconds")?.type).toBe("HISTOGRAM");
    const h = histogram(text, t, "chatedge_first_token_seconds");
    expect(h?.le).toEqual({
      "0.05": 3,
      "0.1": 3,
      "0.25": 3,
      "0.5": 7,
      "1": 9,
      "2": 9,
      "3": 10,
      "5": 10,
      "8": 10,
      "10": 10,
      "15": 10,
      "20": 10,
      "30": 10,
      "60": 10,
      "120": 10,
      "+Inf": 11,
    });
    expect(h?.count).toBe(11);
    expect(h?.sum).toBeCloseTo((3 * 40 + 4 * 300 + 2 * 1_000 + 2_016 + 200_000) / 1000, 6);
    // The response-time histogram still counts every answered turn, streamed or not.
    expect(histogram(text, t)?.count).toBe(16);

    const res = await admin("GET", `/tenants/${t}/analytics/dashboard?days=2`);
    expect(res.status).toBe(200);
    const { totals } = (await res.json()) as { totals: Record<string, unknown> };
    // Nearest rank over 40×3, 300×4, 1000×2, 2016, 200000: rank 6 is 300 ms (bucket 296..303,
    // midpoint 299.5), rank ceil(95·11/100) = 11 is 200000 ms (bucket 196608..200703, midpoint 198655.5).
    expect(totals).toMatchObject({
      streamed_answers: 11,
      p50_first_token_ms: 299.5,
      p95_first_token_ms: 198_655.5,
    });
  });

  it("needs the admin token", async () => {
    const res = await call("/admin/metrics");
    expect(res.status).toBe(401);
    expect((await envelope(res)).code).toBe("UNAUTHORIZED");
    const t = await alertTenant();
    const sk = (await createKey(t)).key;
    expect((await send("GET", "/admin/metrics", sk)).status).toBe(401);
  });
});

describe("monitoring JSON", () => {
  it("shows each metric's value, target, threshold and state for a tenant", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest([
      ...turns(t, 20, now, { latencyMs: 3_000 }), // P50 3 s: past the 2 s target, under the 5 s threshold
      ...conversations(t, 20, now, () => ({ resolved: true, csat: 5, totalCostUsd: 0.05 })),
      refusal(t, "monthly_tokens", 4),
      refusal(t, "visitor_tokens", 2),
    ]);
    const res = await admin("GET", `/tenants/${t}/monitoring`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      metrics: Record<
        string,
        { value: number | null; state: string; target: string; threshold: number; events: number }
      >;
      volume: Record<string, unknown>;
      alerts: unknown[];
    };
    expect(body.metrics.p50_response_time_ms).toMatchObject({
      state: "warning",
      target: "< 2 s",
      threshold: 5_000,
      events: 20,
    });
    expect(body.metrics.p50_response_time_ms?.value).toBeCloseTo(3_000, -2);
    expect(body.metrics.error_rate_pct).toMatchObject({ value: 0, state: "ok" });
    expect(body.metrics.resolution_rate_pct).toMatchObject({ value: 100, state: "ok" });
    expect(body.metrics.cost_per_conversation_usd).toMatchObject({ state: "ok" });
    expect(body.metrics.avg_csat).toMatchObject({ value: 5, state: "ok" });
    expect(body.metrics.dau_change_pct).toMatchObject({ value: null, state: "insufficient_data" });
    expect(body.metrics.safety_spike_ratio).toMatchObject({ value: 0, state: "insufficient_data" });
    expect(body.volume).toMatchObject({
      requests: 26,
      turns: 20,
      conversations: 20,
      budget_refusals: { monthly_tokens: 4, visitor_tokens: 2, daily_cost: 0, conversation_cost: 0 },
      rate_limit_refusals: { user: 0, tenant: 0, global: 0 },
      daily_active_users_today: 20,
    });
    expect(body.alerts).toEqual([]);

    const sk = (await createKey(t)).key;
    const own = (await (await send("GET", "/v1/monitoring", sk)).json()) as typeof body;
    expect(own.metrics.p50_response_time_ms?.state).toBe("warning");
    expect((await admin("GET", "/tenants/no-such-tenant-y/monitoring")).status).toBe(404);
  });

  it("shows the platform: all tenants together, and the queues' lag", async () => {
    const res = await admin("GET", "/monitoring");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      tenants: { active: number };
      metrics: Record<string, { state: string }>;
      queues: { queue: string; last_write: string }[];
    };
    expect(body.tenants.active).toBeGreaterThan(0);
    expect(Object.keys(body.metrics).sort()).toEqual([
      "avg_csat",
      "cost_per_conversation_usd",
      "dau_change_pct",
      "error_rate_pct",
      "escalation_rate_pct",
      "handoff_wait_seconds",
      "p50_response_time_ms",
      "p99_response_time_ms",
      "resolution_rate_pct",
      "safety_spike_ratio",
    ]);
    expect(body.queues.map((q) => q.queue)).toContain("chatedge-analytics");
  });
});

describe("refusals, end to end", () => {
  it("a 429 from admission is counted by level through the queue into the counters", async () => {
    const t = await alertTenant({ model: "mock", user_rate_limit_per_minute: 2 });
    const sk = (await createKey(t)).key;
    const ask = () =>
      completions(sk, { model: "mock", user: "alice", messages: [{ role: "user", content: "hi" }] });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await ask()).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    // The worker's own producer and queue consumer: wait for the counts to land.
    const row = await eventually(
      async () => {
        const [row] = await query<{ refused_user: number; turns: number }>(
          sql`select refused_user::int, turns::int from tenant_totals where tenant_id = ${t}`,
        );
        expect(row?.refused_user).toBeGreaterThanOrEqual(3);
        expect(row?.turns).toBeGreaterThanOrEqual(2);
        return row;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(row).toEqual({ refused_user: 3, turns: 2 });
    const [hour] = await query<{ refused_user: number }>(
      sql`select sum(refused_user)::int as refused_user from tenant_hourly where tenant_id = ${t}`,
    );
    expect(hour?.refused_user).toBe(3);
  });

  it("a browser message refused by its address's window is a request too, at level address", async () => {
    const origin = "https://shop.example";
    const t = await alertTenant({ model: "mock", allowed_origins: [origin], address_messages_per_minute: 2 });
    const pk = (await createKey(t, "publishable")).key;
    const ip = `198.51.100.9-${crypto.randomUUID()}`;
    const started = await send("POST", "/v1/conversations", pk, {}, { origin, "cf-connecting-ip": ip });
    expect(started.status).toBe(201);
    const { id, visitor_token } = (await started.json()) as { id: string; visitor_token: string };
    const headers = { origin, "cf-connecting-ip": ip, "x-visitor-token": visitor_token };
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(
        (await send("POST", `/v1/conversations/${id}/messages`, pk, { content: "hi" }, headers)).status,
      );
    }
    expect(statuses).toEqual([200, 200, 429]);
    const row = await eventually(
      async () => {
        const [row] = await query<{ refused_address: number; turns: number }>(
          sql`select refused_address::int, turns::int from tenant_totals where tenant_id = ${t}`,
        );
        expect(row?.refused_address).toBe(1);
        expect(row?.turns).toBe(2);
        return row;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(row).toEqual({ refused_address: 1, turns: 2 });
    const m = await scrape();
    expect(sample(m.get("chatedge_requests_total"), { tenant: t })).toBe(3);
    expect(sample(m.get("chatedge_rate_limit_refusals_total"), { tenant: t, level: "address" })).toBe(1);
  });
});
