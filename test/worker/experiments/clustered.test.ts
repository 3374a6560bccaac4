import { describe, expect, it } from "vitest";
import type { ConversationEvent } from "../../../src/analytics/events";
import { batchOf, conversationEvent, deliver } from "../analytics/helpers";
import { admin, createTenant } from "../helpers";
import { prng } from "../prng";
import { clusteredOls, erfc, type Observation } from "./clustered-oracle";
import { createExperiment, twoArms } from "./helpers";

type Comparison = { difference: number; statistic: number; df: number | null; p_value: number } | null;
type Results = {
  analysis: Record<string, string>;
  variants: {
    name: string;
    users: number;
    conversations: number;
    csat_responses: number;
    vs_control: Record<string, Comparison> | null;
  }[];
};

/**
 * Repeat visitors: each user has 1-6 conversations and a propensity of their own, so a user's
 * conversations are alike (positively correlated), the case where counting them as independent
 * overstates the evidence. Two users have conversations in both arms (the split changed).
 */
function workload(tenantId: string, experiment: string): ConversationEvent[] {
  const rand = prng(15_008);
  const at = Date.now() + 1_000;
  const events: ConversationEvent[] = [];
  const add = (user: string, variant: string, k: number, lean: number) => {
    for (let j = 0; j < k; j++) {
      const rated = rand() < 0.6;
      events.push(
        conversationEvent(tenantId, {
          conversationId: `${experiment}-${user}-${variant}-${j}`,
          userId: user,
          startedAt: at,
          endedAt: at + 60_000,
          at: at + 60_000,
          experiment,
          variant,
          resolved: rand() < lean,
          escalated: rand() < (1 - lean) / 3,
          csat: rated ? 1 + Math.min(4, Math.floor(lean * 4 + rand() * 2)) : null,
          totalCostUsd: Math.round((0.002 + lean * 0.01 + rand() * 0.004) * 1e9) / 1e9,
        }),
      );
    }
  };
  for (let u = 0; u < 80; u++) {
    const variant = u % 2 === 0 ? "control" : "B";
    const lean = Math.min(0.95, rand() * 0.8 + (variant === "B" ? 0.15 : 0));
    add(`u${u}`, variant, 1 + Math.floor(rand() * 6), lean);
  }
  add("u0", "B", 2, 0.9);
  add("u1", "control", 3, 0.3);
  return events;
}

/** The observations of one metric, in control and B, as the reference reads them. */
function observations(
  events: ConversationEvent[],
  y: (e: ConversationEvent) => number | null,
): Observation[] {
  return events.flatMap((e) => {
    const v = y(e);
    return v === null ? [] : [{ cluster: e.userId, treated: e.variant === "B", y: v }];
  });
}

describe("experiment results with repeat users", () => {
  it("the reference's normal tail matches textbook values", () => {
    // Two-sided normal p at z = 1.959963984540054 is 0.05; at 1, 2 and 3 (Abramowitz & Stegun 26.2).
    expect(erfc(1.959963984540054 / Math.SQRT2)).toBeCloseTo(0.05, 14);
    expect(erfc(1 / Math.SQRT2)).toBeCloseTo(0.3173105078629141, 14);
    expect(erfc(2 / Math.SQRT2)).toBeCloseTo(0.04550026389635842, 14);
    expect(erfc(3 / Math.SQRT2) / 0.0026997960632601866).toBeCloseTo(1, 12);
    expect(erfc(5 / Math.SQRT2) / 5.733031437583878e-7).toBeCloseTo(1, 10);
    // 2·norm.sf(3.034330424545042) as scipy 1.17 gave it (quoted in stats.test.ts by its author).
    expect(erfc(3.034330424545042 / Math.SQRT2)).toBeCloseTo(0.0024107023750756166, 14);
  });

  it("compares per conversation with a user-clustered variance, as the reference computes it", async () => {
    const t = await createTenant();
    await createExperiment(t.tenant_id, twoArms("cl-exp"));
    const events = workload(t.tenant_id, "cl-exp");
    for (let i = 0; i < events.length; i += 100) {
      const r = await deliver(batchOf(events.slice(i, i + 100)));
      expect(r.retryMessages).toEqual([]);
    }
    const res = await admin("GET", `/tenants/${t.tenant_id}/experiments/cl-exp/results`);
    expect(res.status).toBe(200);
    const r = (await res.json()) as Results;
    expect(r.analysis).toEqual({
      randomization_unit: "user",
      observation_unit: "conversation",
      comparison_variance: "user_clustered",
      comparison_test: "z",
      interval_variance: "conversation",
    });
    const b = r.variants.find((v) => v.name === "B");
    const inArm = (v: string) => events.filter((e) => e.variant === v);
    expect(b?.conversations).toBe(inArm("B").length);
    expect(b?.users).toBe(new Set(inArm("B").map((e) => e.userId)).size);
    expect(b?.csat_responses).toBe(inArm("B").filter((e) => e.csat !== null).length);

    const metrics = {
      resolution_rate: (e: ConversationEvent) => (e.resolved ? 1 : 0),
      escalation_rate: (e: ConversationEvent) => (e.escalated ? 1 : 0),
      csat: (e: ConversationEvent) => e.csat,
      cost_per_conversation_usd: (e: ConversationEvent) => e.totalCostUsd,
    };
    for (const [name, y] of Object.entries(metrics)) {
      const ref = clusteredOls(observations(events, y));
      const got = b?.vs_control?.[name];
      expect(got, name).not.toBeNull();
      expect(got?.difference, name).toBeCloseTo(ref.difference, 12);
      expect((got?.statistic as number) / ref.z, name).toBeCloseTo(1, 9);
      expect((got?.p_value as number) / ref.p, name).toBeCloseTo(1, 8);
      expect(got?.df, name).toBeNull();
    }
    // The data is clustered: the user-clustered z of resolution (3.56 on this data) is below the
    // naive pooled z (4.33) that counted each conversation as independent evidence.
    const obs = observations(events, metrics.resolution_rate);
    const [n1, n2] = [obs.filter((o) => !o.treated).length, obs.filter((o) => o.treated).length];
    const [x1, x2] = [
      obs.filter((o) => !o.treated && o.y === 1).length,
      obs.filter((o) => o.treated && o.y === 1).length,
    ];
    const pooled = (x1 + x2) / (n1 + n2);
    const naive = (x2 / n2 - x1 / n1) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
    expect(Math.abs(b?.vs_control?.resolution_rate?.statistic as number)).toBeLessThan(Math.abs(naive));
  });
});
