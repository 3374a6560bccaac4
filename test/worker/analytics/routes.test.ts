import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AnalyticsEvent } from "../../../src/analytics/events";
import type { Dashboard } from "../../../src/api-types";
import { eventually } from "../eventually";
import { admin, createKey, createTenant, envelope, query, send, sql, uniqueId } from "../helpers";
import { batchOf, conversationEvent, countRows, dailyRows, dayTime, deliver, turnEvent } from "./helpers";

const queue = () => env.ANALYTICS_QUEUE;

describe("dashboard routes", () => {
  it("validates days: 1..365 integers, default 7, in the error envelope otherwise", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    for (const bad of ["0", "366", "abc", "1.5", "-3", ""]) {
      for (const res of [
        await send("GET", `/v1/analytics/dashboard?days=${bad}`, key),
        await admin("GET", `/tenants/${t.tenant_id}/analytics/dashboard?days=${bad}`),
      ]) {
        expect(res.status, `days=${bad}`).toBe(400);
        const err = await envelope(res);
        expect(err.code).toBe("VALIDATION_FAILED");
        expect(err.message).toContain("days");
      }
    }
    const def = (await (await send("GET", "/v1/analytics/dashboard", key)).json()) as Dashboard;
    expect(def.series).toHaveLength(7);
    const max = (await (await send("GET", "/v1/analytics/dashboard?days=365", key)).json()) as Dashboard;
    expect(max.series).toHaveLength(365);
  });

  it("answers an empty tenant with zero counts and null rates over every day of the window", async () => {
    const t = await createTenant();
    const res = await admin("GET", `/tenants/${t.tenant_id}/analytics/dashboard?days=3`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Dashboard;
    const today = new Date().toISOString().slice(0, 10);
    expect(body.series.map((d) => d.day).at(-1)).toBe(today);
    expect(body.totals).toEqual({
      total_conversations: 0,
      avg_turns_per_conversation: null,
      resolution_rate_pct: null,
      escalation_rate_pct: null,
      avg_csat: null,
      csat_responses: 0,
      total_turns: 0,
      disconnected_turns: 0,
      human_turns: 0,
      total_tokens: 0,
      total_cost_usd: 0,
      avg_response_time_ms: null,
      p50_response_time_ms: null,
      p99_response_time_ms: null,
      streamed_answers: 0,
      p50_first_token_ms: null,
      p95_first_token_ms: null,
      error_rate_pct: null,
      daily_active_users: 0,
      cost_per_conversation_usd: null,
      safety_violations_blocked: 0,
      human_handled_conversations: 0,
      human_handled_pct: null,
      resolved_by_human: 0,
      resolved_by_bot: 0,
      resolved_by_human_pct: null,
      resolved_by_bot_pct: null,
      human_replies: 0,
      avg_first_human_reply_ms: null,
      p50_first_human_reply_ms: null,
      p95_first_human_reply_ms: null,
    });
  });

  it("shows a key its own tenant only, and admins any tenant by id", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const keyA = (await createKey(a.tenant_id)).key;
    await deliver(
      batchOf([
        turnEvent(a.tenant_id, { latencyMs: 40 }),
        turnEvent(b.tenant_id),
        turnEvent(b.tenant_id),
        conversationEvent(b.tenant_id),
      ]),
    );
    const mine = (await (await send("GET", "/v1/analytics/dashboard?days=1", keyA)).json()) as Dashboard;
    expect(mine.tenant_id).toBe(a.tenant_id);
    expect(mine.totals).toMatchObject({ total_turns: 1, total_conversations: 0, p50_response_time_ms: 40 });
    // No parameter can point the tenant route elsewhere.
    const sneaky = (await (
      await send("GET", `/v1/analytics/dashboard?days=1&tenant_id=${b.tenant_id}`, keyA)
    ).json()) as Dashboard;
    expect(sneaky.tenant_id).toBe(a.tenant_id);
    expect(sneaky.totals.total_turns).toBe(1);
    const theirs = (await (
      await admin("GET", `/tenants/${b.tenant_id}/analytics/dashboard?days=1`)
    ).json()) as Dashboard;
    expect(theirs.totals).toMatchObject({ total_turns: 2, total_conversations: 1 });
  });

  it("refuses missing, wrong and publishable keys, and unknown tenants", async () => {
    const t = await createTenant({ allowed_origins: ["https://shop.example"] });
    const pk = (await createKey(t.tenant_id, "publishable")).key;
    expect((await send("GET", "/v1/analytics/dashboard", undefined)).status).toBe(401);
    expect((await send("GET", "/v1/analytics/dashboard", "sk_live_nope")).status).toBe(401);
    const browser = await send("GET", "/v1/analytics/dashboard", pk, undefined, {
      origin: "https://shop.example",
    });
    expect(browser.status).toBe(403);
    expect((await envelope(browser)).message).toContain("secret key");
    expect(
      (await send("GET", `/admin/tenants/${t.tenant_id}/analytics/dashboard`, "not-the-admin-token")).status,
    ).toBe(401);
    const missing = await admin("GET", `/tenants/${uniqueId("ghost")}/analytics/dashboard?days=7`);
    expect(missing.status).toBe(404);
    expect((await envelope(missing)).code).toBe("NOT_FOUND");
    expect((await admin("GET", "/tenants/NOT_AN_ID/analytics/dashboard")).status).toBe(400);
  });
});

describe("producer to consumer through the queue binding", () => {
  it("delivers sent events to the consumer, which writes them", async () => {
    const t = uniqueId("rt");
    const events = [
      turnEvent(t, { at: dayTime(0) }),
      turnEvent(t, { at: dayTime(0), userId: "u-2" }),
      conversationEvent(t, { csat: 4 }),
    ];
    await queue().send(events[0] as AnalyticsEvent, { contentType: "json" });
    await queue().sendBatch(events.slice(1).map((body) => ({ body, contentType: "json" as const })));
    await eventually(
      async () => {
        expect(await countRows("conversations", t)).toBe(1);
        expect(await countRows("turns", t)).toBe(2);
      },
      { timeoutMs: 20_000 },
    );
    expect((await dailyRows(t))[0]).toMatchObject({
      turns: 2,
      active_users: 2,
      conversations: 1,
      csat_sum: 4,
    });
  });
});

describe("dead-letter replay", () => {
  it("re-sends pending dead letters onto the queue, marks them, and the consumer writes them once", async () => {
    const t = uniqueId("rp");
    const events = [turnEvent(t), turnEvent(t, { userId: "u-9" }), conversationEvent(t)];
    // As if Postgres had been down through every retry: the DLQ consumer stored them.
    await deliver(batchOf(events, { queue: "chatedge-analytics-dlq" }));
    const listed = await admin("GET", `/dead-letters?tenant_id=${t}`);
    expect(listed.status).toBe(200);
    const list = (await listed.json()) as { dead_letters: { id: number; reason: string }[]; pending: number };
    expect(list.pending).toBe(3);
    expect(list.dead_letters.map((d) => d.reason)).toEqual(["exhausted", "exhausted", "exhausted"]);

    const res = await admin("POST", "/dead-letters/replay", { tenant_id: t, limit: 2 });
    expect(res.status).toBe(200);
    const first = (await res.json()) as { replayed: number; ids: number[]; remaining: number };
    expect(first).toEqual({ replayed: 2, ids: list.dead_letters.slice(0, 2).map((d) => d.id), remaining: 1 });
    const rest = (await (await admin("POST", "/dead-letters/replay", { tenant_id: t })).json()) as {
      replayed: number;
    };
    expect(rest).toMatchObject({ replayed: 1, remaining: 0 });
    expect(await (await admin("POST", "/dead-letters/replay", { tenant_id: t })).json()).toEqual({
      replayed: 0,
      ids: [],
      remaining: 0,
    });

    await eventually(
      async () => {
        expect(await countRows("turns", t)).toBe(2);
        expect(await countRows("conversations", t)).toBe(1);
      },
      { timeoutMs: 20_000 },
    );
    const marks = await query<{ replays: number; replayed: boolean }>(
      sql`select replays, replayed_at is not null as replayed from dead_letters where tenant_id = ${t}`,
    );
    expect(marks).toEqual(Array(3).fill({ replays: 1, replayed: true }));
    expect((await dailyRows(t))[0]).toMatchObject({ turns: 2, active_users: 2, conversations: 1 });
  });

  it("validates its body and needs the admin token", async () => {
    expect((await admin("POST", "/dead-letters/replay", { limit: 0 })).status).toBe(400);
    expect((await admin("POST", "/dead-letters/replay", { reason: "bored" })).status).toBe(400);
    expect((await admin("POST", "/dead-letters/replay", { surprise: 1 })).status).toBe(400);
    expect((await send("POST", "/admin/dead-letters/replay", "wrong-token", {})).status).toBe(401);
  });
});
