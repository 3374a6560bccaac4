/**
 * Alert rules and alerts. Every rule at its reference threshold: data made to cross it fires, the
 * same data at the threshold stays quiet. Then an alert's life: it fires once, is not sent again
 * while it keeps firing, is resolved when the value comes back, and each change is delivered by
 * email to the escalation address and by the tenant's webhook (through the real notifications
 * queue and consumer). Tenants' overrides, the settings API's bad input, and the cron trigger.
 * The data goes through the real queue consumer into the rollups.
 *
 * One file on purpose: the cron test evaluates every tenant, so no other file may assert on which
 * evaluation fired an alert (tests in a file run one after another).
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AnalyticsEvent } from "../../../src/analytics/events";
import worker from "../../../src/index";
import type { RuleName } from "../../../src/monitoring/rules";
import { turnEvent } from "../analytics/helpers";
import { FAKE } from "../chat/helpers";
import { eventually, present } from "../eventually";
import { consoleSend, operator, visitor, widgetTenant } from "../handoff/helpers";
import { admin, createKey, envelope, query, send, sql } from "../helpers";
import {
  alertOutbox,
  alertRows,
  alertTenant,
  conversations,
  evaluate,
  HOUR,
  inboxEvent,
  ingest,
  MINUTE,
  ruleNames,
  turns,
} from "./helpers";

const DAY = 24 * HOUR;

/** Daily active users: `perDay(d)` distinct users on each of the 14 whole days before today. */
function dauEvents(t: string, now: number, perDay: (daysAgo: number) => number): AnalyticsEvent[] {
  const midnight = Math.floor(now / DAY) * DAY;
  const out: AnalyticsEvent[] = [];
  for (let d = 1; d <= 14; d++) {
    for (let u = 0; u < perDay(d); u++) {
      out.push(
        turnEvent(t, {
          at: midnight - d * DAY + 12 * HOUR,
          userId: `user-${u}`,
          conversationId: `c-${d}-${u}`,
        }),
      );
    }
  }
  return out;
}

/** Safety events: `perHour` in each of the 168 hours before the window, `inWindow` 10 minutes ago. */
function safetyEvents(t: string, now: number, perHour: number, inWindow: number): AnalyticsEvent[] {
  const hour = Math.floor(now / HOUR) * HOUR;
  const out: AnalyticsEvent[] = [];
  const ev = (at: number): AnalyticsEvent => ({
    type: "safety",
    id: crypto.randomUUID(),
    tenantId: t,
    conversationId: "c-1",
    userId: "u-1",
    at,
    direction: "input",
    topic: "medical advice",
  });
  // The 1-hour window is the current hour and the one before; the baseline the 168 hours before that.
  for (let h = 2; h <= 169; h++)
    for (let i = 0; i < perHour; i++) out.push(ev(hour - h * HOUR + 30 * MINUTE));
  for (let i = 0; i < inWindow; i++) out.push(ev(now - 10 * MINUTE));
  return out;
}

type Case = {
  rule: RuleName;
  /** Events that cross the threshold, and events that stay at or just under it. */
  fires: (t: string, now: number) => AnalyticsEvent[];
  quiet: (t: string, now: number) => AnalyticsEvent[];
};

const CASES: Case[] = [
  {
    rule: "p50_response_time",
    fires: (t, now) => turns(t, 20, now, { latencyMs: 5_300 }),
    quiet: (t, now) => turns(t, 20, now, { latencyMs: 4_800 }),
  },
  {
    rule: "p99_response_time",
    // 19 fast answers and one slow one: P99 is the slowest, P50 stays fast.
    fires: (t, now) => [...turns(t, 19, now, { latencyMs: 900 }), ...turns(t, 1, now, { latencyMs: 15_600 })],
    quiet: (t, now) => [...turns(t, 19, now, { latencyMs: 900 }), ...turns(t, 1, now, { latencyMs: 14_500 })],
  },
  {
    rule: "error_rate",
    // 6 errors in 100 answers is 6% > 5%; 5 in 100 is exactly 5%, not above.
    fires: (t, now) => [
      ...turns(t, 94, now),
      ...turns(t, 6, now, { outcome: "error", error: "provider 500" }),
    ],
    quiet: (t, now) => [
      ...turns(t, 95, now),
      ...turns(t, 5, now, { outcome: "error", error: "provider 500" }),
    ],
  },
  {
    rule: "resolution_rate",
    // 9 of 20 resolved is 45% < 50%; 10 of 20 is exactly 50%.
    fires: (t, now) => conversations(t, 20, now, (i) => ({ resolved: i < 9 })),
    quiet: (t, now) => conversations(t, 20, now, (i) => ({ resolved: i < 10 })),
  },
  {
    rule: "escalation_rate",
    fires: (t, now) => conversations(t, 20, now, (i) => ({ escalated: i < 7 })),
    quiet: (t, now) => conversations(t, 20, now, (i) => ({ escalated: i < 6 })),
  },
  {
    rule: "cost_per_conversation",
    fires: (t, now) => conversations(t, 20, now, () => ({ totalCostUsd: 0.51 })),
    quiet: (t, now) => conversations(t, 20, now, () => ({ totalCostUsd: 0.5 })),
  },
  {
    rule: "csat",
    // 10 ratings averaging 2.9 < 3.0; averaging exactly 3.0.
    fires: (t, now) => conversations(t, 10, now, (i) => ({ csat: i === 0 ? 2 : 3 })),
    quiet: (t, now) => conversations(t, 10, now, () => ({ csat: 3 })),
  },
  {
    rule: "dau_change",
    // 10 users a day the week before, 7 this week: -30%; 8 this week: exactly -20%.
    fires: (t, now) => dauEvents(t, now, (d) => (d > 7 ? 10 : 7)),
    quiet: (t, now) => dauEvents(t, now, (d) => (d > 7 ? 10 : 8)),
  },
  {
    rule: "safety_spike",
    // A baseline of 2 an hour: 7 in the window is 3.5x; 6 is exactly 3x.
    fires: (t, now) => safetyEvents(t, now, 2, 7),
    quiet: (t, now) => safetyEvents(t, now, 2, 6),
  },
  {
    rule: "handoff_wait",
    // Waiting for a human 301 s is past the default 300 s; exactly 300 s is not.
    fires: (t, now) => [
      inboxEvent(t, "w-1", { status: "waiting", at: now - 301_000, waitingSince: now - 301_000 }),
    ],
    quiet: (t, now) => [
      inboxEvent(t, "w-1", { status: "waiting", at: now - 300_000, waitingSince: now - 300_000 }),
    ],
  },
];

describe("alert rules at their reference thresholds", () => {
  it("covers every rule", async () => {
    const { RULE_NAMES } = await import("../../../src/monitoring/rules");
    expect(CASES.map((c) => c.rule).sort()).toEqual([...RULE_NAMES].sort());
  });

  for (const c of CASES) {
    it(`${c.rule}: fires past the threshold, quiet at it`, async () => {
      const now = Date.now();
      const [hot, cold] = await Promise.all([alertTenant(), alertTenant()]);
      await ingest([...c.fires(hot, now), ...c.quiet(cold, now)]);
      const fired = await evaluate(hot, now);
      const firedRule = fired.fired.find((a) => a.rule === c.rule);
      expect(firedRule, JSON.stringify(fired)).toBeDefined();
      expect(firedRule?.state).toBe("firing");
      const calm = await evaluate(cold, now);
      expect(calm.fired.map((a) => a.rule)).not.toContain(c.rule);
      expect(calm.evaluated).toBeGreaterThan(0);
    });
  }

  it("keeps quiet below the minimum number of events, whatever the value", async () => {
    const now = Date.now();
    const [few, enough] = await Promise.all([alertTenant(), alertTenant()]);
    await ingest([
      ...turns(few, 19, now, { latencyMs: 30_000 }),
      ...turns(enough, 20, now, { latencyMs: 30_000 }),
    ]);
    const small = await evaluate(few, now);
    expect(small.fired).toEqual([]);
    expect(small.insufficient).toBeGreaterThan(0);
    const big = await evaluate(enough, now);
    expect(big.fired.map((a) => a.rule).sort()).toEqual(["p50_response_time", "p99_response_time"]);
  });

  it("looks only at the rule's window", async () => {
    const now = Date.now();
    const t = await alertTenant();
    // Slow answers three hours ago are outside the default 1-hour window.
    await ingest(turns(t, 30, now, { latencyMs: 9_000 }, 3 * HOUR));
    expect((await evaluate(t, now)).fired).toEqual([]);
  });
});

async function webhookBodies(tenantId: string) {
  const res = await fetch(`${FAKE}/__requests?key=webhook`);
  const { requests } = (await res.json()) as { requests: { raw: string; headers: { signature?: string } }[] };
  return requests
    .map((r) => ({
      body: JSON.parse(r.raw) as {
        kind: string;
        tenant_id: string;
        subject: string;
        notice: { state: string; rule: string };
      },
      signature: r.headers.signature,
    }))
    .filter((r) => r.body.tenant_id === tenantId && r.body.kind === "alert");
}

async function putSettings(tenantId: string, body: unknown) {
  return admin("PUT", `/tenants/${tenantId}/alert-settings`, body);
}

describe("an alert's life", () => {
  it("fires once, stays quiet while firing, resolves, and notifies by email and webhook each time", async () => {
    const now = Date.now();
    const t = await alertTenant();
    expect((await putSettings(t, { webhook_url: `${FAKE}/__webhook` })).status).toBe(200);
    await ingest(turns(t, 20, now, { latencyMs: 16_000 }));

    const first = await evaluate(t, now);
    expect(ruleNames(first.fired)).toEqual(["p50_response_time", "p99_response_time"]);
    expect(first.notices).toBe(4); // two alerts, each by email and webhook
    const again = await evaluate(t, now + MINUTE);
    expect(again.fired).toEqual([]);
    expect(again.still_firing).toBe(2);
    expect(again.notices).toBe(0);

    const sent = await alertOutbox(t, 4);
    expect(sent).toHaveLength(4);
    expect(sent.every((r) => r.status === "sent")).toBe(true);
    expect(sent.filter((r) => r.channel === "email").map((r) => r.recipient)).toEqual([
      "oncall@shop.example",
      "oncall@shop.example",
    ]);
    expect(sent.find((r) => r.subject.includes("p50_response_time_ms"))?.subject).toMatch(
      /FIRING: p50_response_time_ms for .* is 1[56]\.\d s \(threshold above 5\.0 s\)/,
    );

    // Fast answers bring both percentiles back under their thresholds (the slow 20 under 1%).
    await ingest(turns(t, 2_000, now, { latencyMs: 300 }));
    const later = await evaluate(t, now + 2 * MINUTE);
    expect(ruleNames(later.resolved)).toEqual(["p50_response_time", "p99_response_time"]);
    expect(later.resolved.every((a) => a.state === "resolved" && a.resolved_at !== null)).toBe(true);
    expect((await evaluate(t, now + 3 * MINUTE)).resolved).toEqual([]);

    const rows = await alertRows(t);
    expect(rows.map((r) => [r.rule, r.state])).toEqual([
      ["p50_response_time", "resolved"],
      ["p99_response_time", "resolved"],
    ]);
    expect(rows[0]?.first_value).toBeGreaterThan(5_000);
    expect(rows[0]?.value).toBeLessThan(5_000);

    const all = await alertOutbox(t, 8);
    expect(all).toHaveLength(8);
    expect(all.filter((r) => r.subject.includes("RESOLVED"))).toHaveLength(4);
    const hooks = await webhookBodies(t);
    expect(hooks.map((h) => `${h.body.notice.rule}:${h.body.notice.state}`).sort()).toEqual([
      "p50_response_time:firing",
      "p50_response_time:resolved",
      "p99_response_time:firing",
      "p99_response_time:resolved",
    ]);
  });

  it("opens one alert when two evaluations race", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest(turns(t, 20, now, { outcome: "error", error: "provider 500" }));
    const reports = await Promise.all([evaluate(t, now), evaluate(t, now), evaluate(t, now)]);
    const fired = reports.flatMap((r) => r.fired).filter((a) => a.rule === "error_rate");
    expect(fired).toHaveLength(1);
    expect((await alertRows(t)).filter((r) => r.rule === "error_rate")).toHaveLength(1);
    expect(await alertOutbox(t, 1)).toHaveLength(1); // the email; no webhook configured
  });

  it("keeps a firing alert while the data thins below the minimum", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest(turns(t, 20, now, { outcome: "error", error: "timeout" }));
    expect(ruleNames((await evaluate(t, now)).fired)).toContain("error_rate");
    // Three hours on, the window is empty: too few events to say it is over.
    const quiet = await evaluate(t, now + 3 * HOUR);
    expect(quiet.resolved).toEqual([]);
    expect(quiet.still_firing).toBe(1);
  });
});

describe("tenant overrides", () => {
  it("threshold, window and minimum events change when a rule fires", async () => {
    const now = Date.now();
    const t = await alertTenant();
    // Five 1.5 s answers two hours ago: under every default (and outside the 1-hour window).
    await ingest(turns(t, 5, now, { latencyMs: 1_500 }, 2 * HOUR));
    expect((await evaluate(t, now)).fired).toEqual([]);
    const res = await putSettings(t, {
      rules: { p50_response_time: { threshold: 1_000, window_hours: 3, min_events: 5 } },
    });
    expect(res.status).toBe(200);
    const settings = (await res.json()) as {
      rules: { rule: string; threshold: number; default_threshold: number }[];
    };
    expect(settings.rules.find((r) => r.rule === "p50_response_time")).toMatchObject({
      threshold: 1_000,
      default_threshold: 5_000,
      window_hours: 3,
      min_events: 5,
      enabled: true,
    });
    const report = await evaluate(t, now);
    expect(ruleNames(report.fired)).toEqual(["p50_response_time"]);
    expect(report.fired[0]).toMatchObject({ threshold: 1_000, window_hours: 3, events: 5 });
  });

  it("a rule switched off resolves its alert and fires no more; null restores the default", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest(turns(t, 20, now, { outcome: "error", error: "timeout" }));
    expect(ruleNames((await evaluate(t, now)).fired)).toContain("error_rate");
    await putSettings(t, { rules: { error_rate: { enabled: false } } });
    expect(ruleNames((await evaluate(t, now)).resolved)).toEqual(["error_rate"]);
    expect((await evaluate(t, now)).fired).toEqual([]);
    const res = await putSettings(t, { rules: { error_rate: null } });
    expect(((await res.json()) as { overrides: object }).overrides).toEqual({});
    expect(ruleNames((await evaluate(t, now)).fired)).toEqual(["error_rate"]);
  });

  it("the tenant's own secret key reads and writes its settings; a publishable key may not", async () => {
    const t = await alertTenant();
    const sk = (await createKey(t, "secret")).key;
    const pk = (await createKey(t, "publishable")).key;
    const put = await send("PUT", "/v1/alert-settings", sk, { rules: { csat: { threshold: 3.5 } } });
    expect(put.status).toBe(200);
    const got = (await (await send("GET", "/v1/alert-settings", sk)).json()) as {
      rules: { rule: string; threshold: number }[];
    };
    expect(got.rules.find((r) => r.rule === "csat")?.threshold).toBe(3.5);
    for (const [method, path] of [
      ["GET", "/v1/alert-settings"],
      ["PUT", "/v1/alert-settings"],
      ["GET", "/v1/monitoring"],
      ["GET", "/v1/alerts"],
    ] as const) {
      const res = await send(method, path, pk, method === "PUT" ? { rules: {} } : undefined, {
        origin: "https://shop.example",
        "x-visitor-id": "v-1",
      });
      expect([401, 403], `${method} ${path}`).toContain(res.status);
      await envelope(res);
    }
  });

  it("refuses bad settings with a clear error and changes nothing", async () => {
    const t = await alertTenant();
    await putSettings(t, { rules: { csat: { threshold: 3.5 } } });
    const bad: [unknown, string][] = [
      [{ rules: { p50_response_time: { threshold: -1 } } }, "rules.p50_response_time.threshold"],
      [{ rules: { resolution_rate: { threshold: 150 } } }, "rules.resolution_rate.threshold"],
      [{ rules: { dau_change: { window_hours: 36 } } }, "rules.dau_change.window_hours"],
      [{ rules: { error_rate: { window_hours: 0 } } }, "rules.error_rate.window_hours"],
      [{ rules: { error_rate: { window_hours: 1.5 } } }, "rules.error_rate.window_hours"],
      [{ rules: { error_rate: { min_events: 0 } } }, "rules.error_rate.min_events"],
      [{ rules: { error_rate: { enabled: "no" } } }, "rules.error_rate.enabled"],
      [{ rules: { no_such_rule: { threshold: 1 } } }, "rules"],
      [{ rules: { csat: { threshold: 3, colour: "red" } } }, "rules.csat"],
      [{ webhook_url: "ftp://hooks.example/x" }, "webhook_url"],
      [{ webhook_url: "not a url" }, "webhook_url"],
      [{ surprise: true }, ""],
      [[], ""],
    ];
    for (const [body, path] of bad) {
      const res = await putSettings(t, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const e = (await res.json()) as { error: { code: string; details: { path: string }[] } };
      expect(e.error.code).toBe("VALIDATION_FAILED");
      expect(
        e.error.details.map((d) => d.path).some((p) => p.startsWith(path)),
        JSON.stringify(e),
      ).toBe(true);
    }
    const malformed = await send("PUT", `/admin/tenants/${t}/alert-settings`, undefined, "{");
    expect(malformed.status).toBe(401);
    const notJson = await admin("PUT", `/tenants/${t}/alert-settings`, "{not json");
    expect(notJson.status).toBe(400);
    const settings = (await (await admin("GET", `/tenants/${t}/alert-settings`)).json()) as {
      overrides: Record<string, unknown>;
      webhook_url: string | null;
    };
    expect(settings).toMatchObject({ overrides: { csat: { threshold: 3.5 } }, webhook_url: null });
    const unknown = await admin("PUT", "/tenants/no-such-tenant-x/alert-settings", { rules: {} });
    expect(unknown.status).toBe(404);
    expect((await envelope(unknown)).code).toBe("NOT_FOUND");
  });
});

const anna = { operatorId: "op-anna", name: "Anna" };

/** The tenant's alert notifications' bodies in the outbox, once there are `n`. */
async function alertBodies(tenantId: string, n: number) {
  await alertOutbox(tenantId, n);
  const rows = await query<{ channel: string; subject: string; body: string }>(
    sql`select channel, subject, body from notifications where tenant_id = ${tenantId} and kind = 'alert'
        order by created_at, channel`,
  );
  return rows;
}

describe("a conversation waiting too long for a human (handoff_wait)", () => {
  it("fires once with links to the conversations past the threshold, resolves when they are taken over", async () => {
    const now = Date.now();
    const [t, other] = await Promise.all([alertTenant(), alertTenant()]);
    expect((await putSettings(t, { webhook_url: `${FAKE}/__webhook` })).status).toBe(200);
    await ingest([
      inboxEvent(t, "long", { status: "waiting", at: now - 10 * MINUTE, waitingSince: now - 10 * MINUTE }),
      inboxEvent(t, "short", { status: "waiting", at: now - MINUTE, waitingSince: now - MINUTE }),
      inboxEvent(t, "held", { status: "human", at: now - 20 * MINUTE, holder: anna }),
      // Another tenant's visitor has waited an hour: not this tenant's alert.
      inboxEvent(other, "theirs", { status: "waiting", at: now - HOUR, waitingSince: now - HOUR }),
    ]);

    const first = await evaluate(t, now, "https://console.shop.example");
    expect(first.fired).toMatchObject([
      { rule: "handoff_wait", metric: "handoff_wait_seconds", value: 600, threshold: 300, events: 2 },
    ]);
    expect(first.notices).toBe(2); // email and webhook
    const link = `https://console.shop.example/console/#/t/${t}/inbox/long`;
    const [email, hook] = [...(await alertBodies(t, 2))].sort((a, b) => a.channel.localeCompare(b.channel));
    expect(email?.subject).toBe(`[chatedge] FIRING: a visitor of ${t} has waited 10.0 min for a human`);
    expect(email?.body).toContain(`- waiting since ${new Date(now - 10 * MINUTE).toISOString()}: ${link}`);
    expect(email?.body).not.toContain("/inbox/short");
    expect(hook?.channel).toBe("webhook");
    const posted = (await fetch(`${FAKE}/__requests?key=webhook`).then((r) => r.json())) as {
      requests: { raw: string }[];
    };
    const mine = posted.requests
      .map((r) => JSON.parse(r.raw) as { tenant_id: string; links: string[]; notice: { rule: string } })
      .filter((b) => b.tenant_id === t && b.notice.rule === "handoff_wait");
    expect(mine.map((b) => b.links)).toEqual([[link]]);

    // A minute on it still fires: nothing is sent again.
    const again = await evaluate(t, now + MINUTE);
    expect(again.fired).toEqual([]);
    expect(again.notices).toBe(0);
    expect((await alertRows(t)).map((r) => [r.rule, r.state, r.value])).toEqual([
      ["handoff_wait", "firing", 660],
    ]);

    // Anna takes the long one over (a newer version of its row): the short one has waited 3 minutes.
    await ingest([
      inboxEvent(t, "long", {
        status: "human",
        version: 4,
        at: now + MINUTE,
        waitingSince: null,
        holder: anna,
      }),
    ]);
    const later = await evaluate(t, now + 2 * MINUTE);
    expect(later.resolved).toMatchObject([
      { rule: "handoff_wait", state: "resolved", value: 180, events: 1 },
    ]);
    expect(later.notices).toBe(2);

    // Nobody takes the short one: 7 minutes into its wait it fires a new alert that names it.
    const next = await evaluate(t, now + 6 * MINUTE + 1_000);
    expect(next.fired).toMatchObject([{ rule: "handoff_wait", value: 421, events: 1 }]);
    const bodies = await alertBodies(t, 6);
    expect(bodies.at(-1)?.body ?? bodies.at(-2)?.body).toContain(`/console/#/t/${t}/inbox/short`);
  });

  it("end to end: a visitor asks for a human, nobody answers for 5 minutes, a takeover ends the alert", async () => {
    const t = await widgetTenant({ escalation_email: "desk@shop.example" });
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    expect((await v.say(conv.id, "let me speak to a human agent")).status).toBe(200);
    // The conversation object's inbox event reaches the index through the analytics queue.
    const since = await eventually(async () => {
      const [r] = await query<{ status: string; since: number | null }>(
        sql`select status, (extract(epoch from waiting_since) * 1000)::float8 as since from inbox_conversations
            where tenant_id = ${t.id} and conversation_id = ${conv.id}`,
      );
      const row = present(r, "inbox row");
      if (row.status !== "waiting" || row.since === null) throw new Error(`status ${row.status}`);
      return row.since;
    });
    expect((await evaluate(t.id, since + 300_000)).fired).toEqual([]);
    const now = since + 301_000;
    const fired = await evaluate(t.id, now, "https://console.shop.example");
    expect(fired.fired).toMatchObject([{ rule: "handoff_wait", value: 301, events: 1 }]);
    const [email] = await alertBodies(t.id, 1);
    expect(email?.body).toContain(`https://console.shop.example/console/#/t/${t.id}/inbox/${conv.id}`);

    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    await eventually(async () => {
      const [r] = await query<{ status: string }>(
        sql`select status from inbox_conversations where tenant_id = ${t.id} and conversation_id = ${conv.id}`,
      );
      expect(r?.status).toBe("human");
    });
    const later = await evaluate(t.id, now + MINUTE);
    expect(later.resolved).toMatchObject([{ rule: "handoff_wait", value: 0, events: 0 }]);
  });

  it("handoff_wait_alert_seconds sets the threshold and 0 turns the alert off; bad values change nothing", async () => {
    const now = Date.now();
    const t = await alertTenant();
    const set = await putSettings(t, { handoff_wait_alert_seconds: 120 });
    expect(set.status).toBe(200);
    const view = (await set.json()) as {
      handoff_wait_alert_seconds: number;
      rules: { rule: string; threshold: number; enabled: boolean; unit: string }[];
    };
    expect(view.handoff_wait_alert_seconds).toBe(120);
    expect(view.rules.find((r) => r.rule === "handoff_wait")).toMatchObject({
      threshold: 120,
      enabled: true,
      unit: "s",
    });
    await ingest([
      inboxEvent(t, "w", { status: "waiting", at: now - 3 * MINUTE, waitingSince: now - 3 * MINUTE }),
    ]);
    expect((await evaluate(t, now)).fired).toMatchObject([
      { rule: "handoff_wait", value: 180, threshold: 120 },
    ]);

    const off = await putSettings(t, { handoff_wait_alert_seconds: 0 });
    expect(((await off.json()) as { handoff_wait_alert_seconds: number }).handoff_wait_alert_seconds).toBe(0);
    expect(ruleNames((await evaluate(t, now)).resolved)).toEqual(["handoff_wait"]);
    expect((await evaluate(t, now + HOUR)).fired).toEqual([]);

    for (const body of [
      { handoff_wait_alert_seconds: -1 },
      { handoff_wait_alert_seconds: 1.5 },
      { handoff_wait_alert_seconds: "300" },
      { handoff_wait_alert_seconds: 7 * 86_400 + 1 },
      { handoff_wait_alert_seconds: 60, rules: { handoff_wait: { threshold: 60 } } },
      { rules: { handoff_wait: { min_events: 1 } } },
      { rules: { handoff_wait: { window_hours: 2 } } },
      { rules: { handoff_wait: { threshold: 0 } } },
    ]) {
      const res = await putSettings(t, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await envelope(res)).code).toBe("VALIDATION_FAILED");
    }
    const sk = (await createKey(t, "secret")).key;
    const got = (await (await send("GET", "/v1/alert-settings", sk)).json()) as {
      handoff_wait_alert_seconds: number;
    };
    expect(got.handoff_wait_alert_seconds).toBe(0);
  });
});

describe("the cron trigger", () => {
  it("evaluates every active tenant's rules", async () => {
    const now = Date.now();
    const t = await alertTenant();
    await ingest(turns(t, 25, now, { outcome: "error", error: "provider 500" }));
    const ctx = createExecutionContext();
    const controller = createScheduledController({ scheduledTime: new Date(now), cron: "*/5 * * * *" });
    await worker.scheduled(controller, env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await alertRows(t)).map((r) => [r.rule, r.state])).toEqual([["error_rate", "firing"]]);
    const listed = (await (await admin("GET", `/tenants/${t}/alerts?state=firing`)).json()) as {
      alerts: { rule: string; metric: string }[];
    };
    expect(listed.alerts).toMatchObject([{ rule: "error_rate", metric: "error_rate_pct" }]);
  });
});
