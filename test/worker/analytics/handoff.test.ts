/**
 * Analytics of human handoff (#17, docs/handoff.md): the summary's handoff fields stored in
 * `conversations`, counted once into the rollups, and reported by the dashboard and by Prometheus,
 * each figure recomputed here from the events sent. Events go through the worker's real queue
 * handler; bad handoff fields end as dead letters and change nothing.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import type { ConversationEvent } from "../../../src/analytics/events";
import type { Dashboard } from "../../../src/api-types";
import { admin, createTenant, query, sql } from "../helpers";
import { batchOf, conversationEvent, dailyRows, dayTime, deliver } from "./helpers";

type Family = {
  name: string;
  type: string;
  metrics: { labels?: Record<string, string>; value?: string }[];
};

const MIN = 60_000;

/** Four ended conversations covering every combination the summary can carry. */
function summaries(tenantId: string): ConversationEvent[] {
  const base = (o: Partial<ConversationEvent>) =>
    conversationEvent(tenantId, { startedAt: dayTime(0), endedAt: dayTime(0, 30 * MIN), ...o });
  return [
    // Escalated, answered by an operator after 42 s, resolved by them.
    base({
      conversationId: "c-human",
      escalated: true,
      humanHandled: true,
      firstHumanReplyMs: 42_000,
      resolvedBy: "human",
    }),
    // From before handoff: no fields, resolved (so by the bot).
    base({ conversationId: "c-old", resolved: true }),
    // Taken over, answered after about an hour, ended unresolved.
    base({
      conversationId: "c-slow",
      resolved: false,
      humanHandled: true,
      firstHumanReplyMs: 3_700_000,
      resolvedBy: null,
    }),
    // Taken over, no operator message, the bot resolved it after the hand-back; and a summary
    // claiming a human resolver for a conversation that was not resolved: it has no resolver.
    base({ conversationId: "c-back", humanHandled: true, firstHumanReplyMs: null, resolvedBy: "bot" }),
    base({ conversationId: "c-odd", resolved: false, humanHandled: false, resolvedBy: "human" }),
  ];
}

async function stored(tenantId: string) {
  return query<{
    conversation_id: string;
    human_handled: boolean;
    first_human_reply_ms: number | null;
    resolved_by: string | null;
  }>(
    sql`select conversation_id, human_handled, first_human_reply_ms, resolved_by from conversations
        where tenant_id = ${tenantId} order by conversation_id`,
  );
}

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await admin("GET", "/metrics");
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, families: new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f])) };
}

function sample(f: Family | undefined, labels: Record<string, string>): number | undefined {
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

/** One tenant's lines of a histogram family: `le` -> cumulative count, plus _sum and _count. */
function histogramLines(text: string, name: string, tenant: string) {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = line.match(
      new RegExp(`^${name}_(bucket|sum|count)\\{tenant="${tenant}"(?:,le="([^"]+)")?\\} (\\S+)$`),
    );
    if (!m) continue;
    out[m[1] === "bucket" ? `le=${m[2]}` : String(m[1])] = Number(m[3]);
  }
  return out;
}

describe("human handoff analytics", () => {
  it("stores the handoff fields, counts them once, and reports them in the dashboard and Prometheus", async () => {
    const tenantId = (await createTenant()).tenant_id;
    const events = summaries(tenantId);
    const first = await deliver(batchOf(events));
    expect(first.explicitAcks).toHaveLength(events.length);
    // A redelivery of the whole batch writes nothing and counts nothing again.
    await deliver(batchOf(events));

    expect(await stored(tenantId)).toEqual([
      { conversation_id: "c-back", human_handled: true, first_human_reply_ms: null, resolved_by: "bot" },
      { conversation_id: "c-human", human_handled: true, first_human_reply_ms: 42_000, resolved_by: "human" },
      { conversation_id: "c-odd", human_handled: false, first_human_reply_ms: null, resolved_by: null },
      { conversation_id: "c-old", human_handled: false, first_human_reply_ms: null, resolved_by: "bot" },
      { conversation_id: "c-slow", human_handled: true, first_human_reply_ms: 3_700_000, resolved_by: null },
    ]);
    expect(await dailyRows(tenantId)).toMatchObject([
      {
        conversations: 5,
        resolved: 3,
        human_handled: 3,
        resolved_by_human: 1,
        human_replies: 2,
        human_reply_ms: 3_742_000,
      },
    ]);

    const res = await admin("GET", `/tenants/${tenantId}/analytics/dashboard?days=1`);
    expect(res.status).toBe(200);
    const d = (await res.json()) as Dashboard;
    // 42 s and 3,700 s: the nearest-rank P50 is the first, P95 the second, each as its bucket's midpoint
    // (42,000 ms lies in [41,984, 43,008), width 1,024; 3,700,000 in [3,670,016, 3,735,552), width 65,536).
    const figures = {
      human_handled_conversations: 3,
      human_handled_pct: 60,
      resolved_by_human: 1,
      resolved_by_bot: 2,
      resolved_by_human_pct: 20,
      resolved_by_bot_pct: 40,
      human_replies: 2,
      avg_first_human_reply_ms: 1_871_000,
      p50_first_human_reply_ms: 41_984 + 511.5,
      p95_first_human_reply_ms: 3_670_016 + 32_767.5,
    };
    expect(d.totals).toMatchObject(figures);
    expect(d.series).toHaveLength(1);
    expect(d.series[0]).toMatchObject(figures);
    expect(d.totals.resolution_rate_pct).toBe(60);

    const { text, families } = await scrape();
    expect(families.get("chatedge_conversations_human_handled_total")?.type).toBe("COUNTER");
    expect(sample(families.get("chatedge_conversations_human_handled_total"), { tenant: tenantId })).toBe(3);
    const by = families.get("chatedge_conversations_resolved_by_total");
    expect(sample(by, { tenant: tenantId, by: "human" })).toBe(1);
    expect(sample(by, { tenant: tenantId, by: "bot" })).toBe(2);
    expect(families.get("chatedge_first_human_reply_seconds")?.type).toBe("HISTOGRAM");
    expect(histogramLines(text, "chatedge_first_human_reply_seconds", tenantId)).toEqual({
      "le=10": 0,
      "le=30": 0,
      "le=60": 1,
      "le=120": 1,
      "le=300": 1,
      "le=600": 1,
      "le=900": 1,
      "le=1800": 1,
      "le=3600": 1,
      "le=7200": 2,
      "le=14400": 2,
      "le=28800": 2,
      "le=86400": 2,
      "le=+Inf": 2,
      sum: 3_742,
      count: 2,
    });
  });

  it("a tenant with no handoff has zero counts, null times and an empty histogram", async () => {
    const tenantId = (await createTenant()).tenant_id;
    await deliver(batchOf([conversationEvent(tenantId, { resolved: false })]));
    const d = (await (
      await admin("GET", `/tenants/${tenantId}/analytics/dashboard?days=1`)
    ).json()) as Dashboard;
    expect(d.totals).toMatchObject({
      total_conversations: 1,
      human_handled_conversations: 0,
      human_handled_pct: 0,
      resolved_by_human: 0,
      resolved_by_bot: 0,
      human_replies: 0,
      avg_first_human_reply_ms: null,
      p50_first_human_reply_ms: null,
      p95_first_human_reply_ms: null,
    });
    const { text } = await scrape();
    expect(histogramLines(text, "chatedge_first_human_reply_seconds", tenantId)).toMatchObject({
      "le=+Inf": 0,
      count: 0,
      sum: 0,
    });
  });

  it("refuses bad handoff fields as dead letters and stores nothing of them", async () => {
    const tenantId = (await createTenant()).tenant_id;
    const bad = [
      { ...conversationEvent(tenantId, { conversationId: "b-1" }), firstHumanReplyMs: -5 },
      { ...conversationEvent(tenantId, { conversationId: "b-2" }), resolvedBy: "operator" },
      { ...conversationEvent(tenantId, { conversationId: "b-3" }), humanHandled: "yes" },
      { ...conversationEvent(tenantId, { conversationId: "b-4" }), firstHumanReplyMs: "42" },
    ];
    const r = await deliver(batchOf(bad));
    expect(r.explicitAcks).toHaveLength(bad.length);
    const letters = await query<{ reason: string; error: string }>(
      sql`select reason, error from dead_letters where tenant_id = ${tenantId} order by error`,
    );
    expect(letters.map((l) => l.reason)).toEqual(["invalid", "invalid", "invalid", "invalid"]);
    expect(letters.map((l) => l.error.split(":")[1]?.trim()).sort()).toEqual([
      "firstHumanReplyMs",
      "firstHumanReplyMs",
      "humanHandled",
      "resolvedBy",
    ]);
    expect(await stored(tenantId)).toEqual([]);
    expect(await dailyRows(tenantId)).toEqual([]);
  });
});
