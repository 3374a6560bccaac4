import { describe, expect, it } from "vitest";
import type { ConversationEvent, TurnEvent } from "../../../src/analytics/events";
import { batchOf, conversationEvent, deliver, turnEvent } from "../analytics/helpers";
import { admin, createKey, createTenant, send } from "../helpers";
import { clusteredOls } from "./clustered-oracle";
import { createExperiment, twoArms } from "./helpers";

type Estimate = { value: number; ci95: [number, number] } | null;
type Comparison = {
  difference: number;
  relative_lift: number | null;
  statistic: number;
  df: number | null;
  p_value: number;
};
type Results = {
  experiment: string;
  control: string;
  min_sample_per_arm: number;
  variants: {
    name: string;
    control: boolean;
    users: number;
    conversations: number;
    resolution_rate: Estimate;
    escalation_rate: Estimate;
    csat: Estimate;
    csat_responses: number;
    cost_per_conversation_usd: Estimate;
    p50_latency_ms: number | null;
    vs_control: Record<string, Comparison | null> | null;
    verdict: string;
  }[];
  srm: {
    chi_square: number | null;
    df: number;
    p_value: number;
    flagged: boolean;
    observed: Record<string, number>;
  } | null;
  unlisted_variants: { name: string; users: number; conversations: number }[];
};

/** Writes events through the worker's real queue consumer, 100 per batch, and checks all landed. */
async function ingest(events: (ConversationEvent | TurnEvent)[]) {
  for (let i = 0; i < events.length; i += 100) {
    const r = await deliver(batchOf(events.slice(i, i + 100)));
    expect(r.retryMessages).toEqual([]);
  }
}

/** `n` conversations of one arm, each by its own user, shaped by `each(i)`. */
function arm(
  tenantId: string,
  experiment: string,
  variant: string,
  n: number,
  each: (i: number) => Partial<ConversationEvent> = () => ({}),
): ConversationEvent[] {
  const at = Date.now() + 1_000;
  return Array.from({ length: n }, (_, i) =>
    conversationEvent(tenantId, {
      conversationId: `${experiment}-${variant}-${i}`,
      userId: `u-${experiment}-${variant}-${i}`,
      startedAt: at,
      endedAt: at + 60_000,
      at: at + 60_000,
      experiment,
      variant,
      resolved: false,
      escalated: false,
      csat: null,
      totalCostUsd: 0.02,
      ...each(i),
    }),
  );
}

const results = async (tenantId: string, name: string) => {
  const res = await admin("GET", `/tenants/${tenantId}/experiments/${name}/results`);
  expect(res.status).toBe(200);
  return (await res.json()) as Results;
};

describe("experiment results", () => {
  it("computes every figure per arm and against control, exactly", async () => {
    const t = await createTenant();
    const other = await createTenant();
    await createExperiment(t.tenant_id, twoArms("res-exp"));
    // Control: 200 conversations, 100 resolved, 20 escalated; CSAT 50×4 and 50×5; cost 0.01 or 0.03.
    const control = arm(t.tenant_id, "res-exp", "control", 200, (i) => ({
      resolved: i < 100,
      escalated: i % 10 === 0,
      csat: i < 50 ? 4 : i < 100 ? 5 : null,
      totalCostUsd: i % 2 === 0 ? 0.01 : 0.03,
    }));
    // B: 200 conversations, 130 resolved, 10 escalated; CSAT 20×3 and 80×5; cost 0.02. Ten of them
    // ran under two experiments at once and carry the joined form.
    const b = arm(t.tenant_id, "res-exp", "B", 200, (i) => ({
      resolved: i < 130,
      escalated: i % 20 === 0,
      csat: i < 20 ? 3 : i < 100 ? 5 : null,
      ...(i >= 190 ? { experiment: "res-exp,zz-other", variant: "B,x" } : {}),
    }));
    const at = Date.now() + 1_000;
    const turn = (variant: string, userId: string, latencyMs: number, outcome: TurnEvent["outcome"] = "ok") =>
      turnEvent(t.tenant_id, { experiment: "res-exp", variant, userId, latencyMs, outcome, at });
    await ingest([
      ...control,
      ...b,
      // Noise: no experiment, another experiment, another tenant's experiment of the same name.
      ...arm(t.tenant_id, "not-this", "B", 3),
      conversationEvent(t.tenant_id, {
        conversationId: "plain",
        userId: "u-plain",
        startedAt: at,
        endedAt: at + 1,
        at: at + 1,
      }),
      ...arm(other.tenant_id, "res-exp", "B", 5),
      // Median latency of answered turns: control [100, 200, 900] -> 200; B [50, 150, 250, 350] -> 200
      // (percentile_cont interpolates); a blocked turn does not count.
      turn("control", "u-res-exp-control-0", 100),
      turn("control", "u-res-exp-control-1", 200, "error"),
      turn("control", "u-res-exp-control-2", 900),
      turn("control", "u-res-exp-control-3", 0, "blocked"),
      turn("B", "u-res-exp-B-0", 50),
      turn("B", "u-res-exp-B-1", 150),
      turn("B", "u-res-exp-B-2", 250),
      turn("B", "u-res-exp-B-3", 350),
      // A user seen only in turns (stateless API) still counts as a user of the arm.
      turn("B", "u-turns-only", 10_000, "blocked"),
    ]);

    const r = await results(t.tenant_id, "res-exp");
    expect(r.unlisted_variants).toEqual([]);
    const [c, v] = r.variants;
    expect(c).toMatchObject({
      name: "control",
      control: true,
      users: 200,
      conversations: 200,
      csat_responses: 100,
    });
    expect(v).toMatchObject({
      name: "B",
      control: false,
      users: 201,
      conversations: 200,
      csat_responses: 100,
    });
    expect(c?.vs_control).toBeNull();
    expect(c?.verdict).toBe("control");
    expect(c?.p50_latency_ms).toBe(200);
    expect(v?.p50_latency_ms).toBe(200);

    // Wilson intervals: scipy.stats.binomtest(x, 200).proportion_ci(method="wilson").
    expect(c?.resolution_rate?.value).toBe(0.5);
    expect(c?.resolution_rate?.ci95[0]).toBeCloseTo(0.43136085960389187, 12);
    expect(c?.resolution_rate?.ci95[1]).toBeCloseTo(0.5686391403961082, 12);
    expect(v?.resolution_rate?.value).toBe(0.65);
    expect(v?.resolution_rate?.ci95[0]).toBeCloseTo(0.5816346433604008, 12);
    expect(v?.resolution_rate?.ci95[1]).toBeCloseTo(0.7127117587264192, 12);
    expect(c?.escalation_rate?.value).toBe(0.1);
    expect(v?.escalation_rate?.ci95[0]).toBeCloseTo(0.02738264560076392, 12);
    expect(v?.escalation_rate?.ci95[1]).toBeCloseTo(0.08957814813877599, 12);

    // Against control: per conversation, variance clustered by user (here one conversation each),
    // as the independent reference computes it (clustered-oracle.ts).
    const obs = (y: (e: ConversationEvent) => number | null) =>
      [...control, ...b].flatMap((e) => {
        const v = y(e);
        return v === null ? [] : [{ cluster: e.userId, treated: e.variant !== "control", y: v }];
      });
    const metrics = {
      resolution_rate: (e: ConversationEvent) => (e.resolved ? 1 : 0),
      escalation_rate: (e: ConversationEvent) => (e.escalated ? 1 : 0),
      csat: (e: ConversationEvent) => e.csat,
      cost_per_conversation_usd: (e: ConversationEvent) => e.totalCostUsd,
    };
    for (const [name, y] of Object.entries(metrics)) {
      const ref = clusteredOls(obs(y));
      const got = v?.vs_control?.[name];
      expect(got?.difference, name).toBeCloseTo(ref.difference, 12);
      expect(got?.statistic, name).toBeCloseTo(ref.z, 9);
      expect(got?.p_value, name).toBeCloseTo(ref.p, 10);
      expect(got?.df, name).toBeNull();
    }
    expect(v?.vs_control?.resolution_rate?.relative_lift).toBeCloseTo(0.3, 12);
    // CSAT means 4.5 vs 4.6: scipy.stats.t.interval per arm.
    expect(c?.csat?.value).toBeCloseTo(4.5, 12);
    expect(c?.csat?.ci95[0]).toBeCloseTo(4.400289346498865, 10);
    expect(v?.csat?.ci95[1]).toBeCloseTo(4.7595370456018165, 10);
    // Cost per conversation: 0.02 in both arms, so no difference (z = 0, p = 1).
    expect(c?.cost_per_conversation_usd?.value).toBeCloseTo(0.02, 12);
    expect(c?.cost_per_conversation_usd?.ci95[0]).toBeCloseTo(0.01860211706868675, 12);
    expect(v?.vs_control?.cost_per_conversation_usd?.statistic).toBeCloseTo(0, 10);
    expect(v?.vs_control?.cost_per_conversation_usd?.p_value).toBeCloseTo(1, 10);

    // 200 vs 201 users on 50/50: no mismatch; both arms past 100 conversations; p < 0.05: better.
    expect(r.srm).toMatchObject({ df: 1, flagged: false, observed: { control: 200, B: 201 } });
    expect(r.srm?.chi_square).toBeCloseTo(0.5 ** 2 / 200.5 + 0.5 ** 2 / 200.5, 12);
    expect(v?.verdict).toBe("better");
  });

  it("flags a sample ratio mismatch and then names no winner", async () => {
    const t = await createTenant();
    await createExperiment(t.tenant_id, twoArms("srm-exp"));
    await ingest([
      ...arm(t.tenant_id, "srm-exp", "control", 300, (i) => ({ resolved: i < 150 })),
      ...arm(t.tenant_id, "srm-exp", "B", 200, (i) => ({ resolved: i < 190 })),
    ]);
    const r = await results(t.tenant_id, "srm-exp");
    // χ² = 50²/250 · 2 = 20 with 1 df; p = 7.744216431044088e-06 (scipy chi2.sf) < 0.001.
    expect(r.srm).toMatchObject({ chi_square: 20, df: 1, flagged: true });
    expect(r.srm?.p_value).toBeCloseTo(7.744216431044088e-6, 18);
    expect(r.variants[1]?.vs_control?.resolution_rate?.p_value).toBeLessThan(1e-10);
    expect(r.variants[1]?.verdict).toBe("sample_ratio_mismatch");
  });

  it("names no winner below the minimum sample per arm", async () => {
    const t = await createTenant();
    await createExperiment(t.tenant_id, twoArms("small-exp"));
    await ingest([
      ...arm(t.tenant_id, "small-exp", "control", 99, (i) => ({ resolved: i < 10 })),
      ...arm(t.tenant_id, "small-exp", "B", 99, (i) => ({ resolved: i < 90 })),
    ]);
    const r = await results(t.tenant_id, "small-exp");
    expect(r.min_sample_per_arm).toBe(100);
    expect(r.variants[1]?.vs_control?.resolution_rate?.p_value).toBeLessThan(1e-10);
    expect(r.variants[1]?.verdict).toBe("insufficient_sample");
    expect(r.srm?.flagged).toBe(false);
  });

  it("answers an empty experiment, and serves the tenant key its own results", async () => {
    const t = await createTenant();
    await createExperiment(t.tenant_id, twoArms("empty-exp"));
    const { key } = await createKey(t.tenant_id);
    const res = await send("GET", "/v1/experiments/empty-exp/results", key);
    expect(res.status).toBe(200);
    const r = (await res.json()) as Results;
    expect(r.srm).toBeNull();
    expect(r.variants.map((v) => [v.name, v.users, v.resolution_rate, v.verdict])).toEqual([
      ["control", 0, null, "control"],
      ["B", 0, null, "insufficient_sample"],
    ]);
  });
});
