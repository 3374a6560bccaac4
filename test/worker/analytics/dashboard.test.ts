import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { workload } from "../../../local/analytics-workload";
import type { AnalyticsEvent } from "../../../src/analytics/events";
import type { Dashboard } from "../../../src/api-types";
import { eventually } from "../eventually";
import { admin, createKey, createTenant, query, send, sql } from "../helpers";
import { type ExpectedFigures, expectedDashboard } from "./expected";
import { turnEvent } from "./helpers";

const queue = () => env.ANALYTICS_QUEUE;

/** Sends bodies through the real queue binding, 100 per sendBatch (the queue's limit). */
async function produce(bodies: unknown[]) {
  for (let i = 0; i < bodies.length; i += 100) {
    await queue().sendBatch(bodies.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const })));
  }
}

const FLOATS = new Set([
  "total_cost_usd",
  "avg_response_time_ms",
  "cost_per_conversation_usd",
  "avg_first_human_reply_ms",
]);

/** Every figure equal; sums of floating-point costs and latencies to 1e-9 relative. */
function expectFigures(actual: Record<string, unknown>, want: ExpectedFigures, where: string) {
  const { exact_p50, exact_p99, ...figures } = want;
  for (const [k, v] of Object.entries(figures)) {
    const got = actual[k];
    if (FLOATS.has(k) && typeof v === "number") {
      expect(typeof got, `${where} ${k}`).toBe("number");
      expect(Math.abs((got as number) - v), `${where} ${k}: ${got} vs ${v}`).toBeLessThanOrEqual(
        1e-9 * Math.max(1, Math.abs(v)),
      );
    } else {
      expect(got, `${where} ${k}`).toEqual(v);
    }
  }
  // The documented bound of the histogram percentiles against the exact values.
  for (const [k, exact] of [
    ["p50_response_time_ms", exact_p50],
    ["p99_response_time_ms", exact_p99],
  ] as const) {
    if (exact === null) continue;
    expect(Math.abs((actual[k] as number) - exact), `${where} ${k}`).toBeLessThanOrEqual(exact / 64 + 0.5);
  }
}

describe("dashboard over a synthetic workload through the real queue", () => {
  let tenantId = "";
  let key = "";
  let events: AnalyticsEvent[] = [];
  const now = Date.now();

  beforeAll(async () => {
    tenantId = (await createTenant()).tenant_id;
    key = (await createKey(tenantId)).key;
    events = [
      ...workload({
        tenantId,
        conversations: 300,
        turns: 1_500,
        users: 120,
        days: 10,
        now,
        seed: 7,
        openShare: 0.05,
      }),
    ].flat();
    // Arrival order is not production order: feedback often lands before its conversation.
    const shuffled = [...events];
    let s = 12345;
    for (let i = shuffled.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j] as AnalyticsEvent, shuffled[i] as AnalyticsEvent];
    }
    // Redeliveries of 10% of the events, and two messages that must end in dead letters.
    const again = shuffled.filter((_, i) => i % 10 === 3);
    const poison = turnEvent(tenantId, { userId: "nul\u0000user" });
    const broken = { ...turnEvent(tenantId), outcome: "maybe" };
    await produce([...shuffled.slice(0, 900), poison, ...again, broken, ...shuffled.slice(900)]);

    const turnsWanted = events.filter((e) => e.type === "turn").length;
    const convWanted = events.filter((e) => e.type === "conversation").length;
    const fbWanted = events.filter((e) => e.type === "feedback").length;
    await eventually(
      async () => {
        const [r] = await query<{ turns: number; convs: number; fb: number; dl: number }>(sql`
          select (select coalesce(sum(turns), 0)::int from tenant_daily where tenant_id = ${tenantId}) as turns,
            (select count(*)::int from conversations where tenant_id = ${tenantId}) as convs,
            (select count(*)::int from feedback where tenant_id = ${tenantId}) as fb,
            (select count(*)::int from dead_letters where tenant_id = ${tenantId}) as dl`);
        expect(r).toEqual({ turns: turnsWanted, convs: convWanted, fb: fbWanted, dl: 2 });
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }, 120_000);

  it("has the workload it claims: hundreds of conversations with known outcomes", () => {
    const conv = events.filter((e) => e.type === "conversation");
    expect(conv.length).toBeGreaterThan(250);
    expect(events.filter((e) => e.type === "turn")).toHaveLength(1_500);
    expect(conv.some((c) => c.type === "conversation" && c.escalated)).toBe(true);
    // Human handoff: operators answered some, resolved some, and some summaries predate handoff.
    const summaries = conv.flatMap((c) => (c.type === "conversation" ? [c] : []));
    expect(summaries.filter((c) => typeof c.firstHumanReplyMs === "number").length).toBeGreaterThan(10);
    expect(summaries.some((c) => c.resolvedBy === "human")).toBe(true);
    expect(summaries.some((c) => c.humanHandled === undefined)).toBe(true);
    expect(events.some((e) => e.type === "feedback")).toBe(true);
    expect(events.some((e) => e.type === "safety")).toBe(true);
  });

  for (const days of [1, 7, 30]) {
    it(`matches every figure computed from the events, days=${days}, in total and per day`, async () => {
      const res = await send("GET", `/v1/analytics/dashboard?days=${days}`, key);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Dashboard;
      const want = expectedDashboard(events, days, Date.now());
      expect(body).toMatchObject({ tenant_id: tenantId, days, from: want.from, to: want.to });
      expectFigures(body.totals, want.totals, "totals");
      expect(body.series.map((d) => d.day)).toEqual(want.series.map((d) => d.day));
      want.series.forEach((w, i) => {
        expectFigures(body.series[i] ?? {}, w, w.day);
      });
      if (days === 30)
        expect(body.totals.total_conversations).toBe(events.filter((e) => e.type === "conversation").length);
    });
  }

  it("answers the same through the admin route", async () => {
    const [a, t] = await Promise.all([
      admin("GET", `/tenants/${tenantId}/analytics/dashboard?days=7`),
      send("GET", "/v1/analytics/dashboard?days=7", key),
    ]);
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual(await t.json());
  });

  it("kept the two bad messages as dead letters and everything else exactly once", async () => {
    const rows = await query<{ reason: string }>(
      sql`select reason from dead_letters where tenant_id = ${tenantId} order by reason`,
    );
    expect(rows.map((r) => r.reason)).toEqual(["invalid", "rejected"]);
    const [n] = await query<{ turns: number }>(
      sql`select count(*)::int as turns from turns where tenant_id = ${tenantId}`,
    );
    expect(n?.turns).toBe(1_500);
  });
});
