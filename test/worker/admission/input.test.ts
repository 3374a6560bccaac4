import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gateFailure, rejectionError } from "../../../src/admission/headers";
import { AdmitInputRestSchema, isAdmitRest } from "../../../src/admission/schemas";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import type { AdmitInput, GateOutcome } from "../../../src/admission/types";
import { prng } from "../prng";
import { admitted, config, freshGate, input } from "./helpers";

/** Why a gate rejected a call, as the worker sees it: the gate's code and the HTTP status it maps to. */
async function failure(p: Promise<GateOutcome<unknown>>) {
  const out = await p;
  if (out.ok) throw new Error("expected the gate to reject the call");
  const app = rejectionError(out);
  return { code: out.code, status: app.status, appCode: app.code, message: app.message };
}

describe("gate input validation", () => {
  const cases: Array<[string, (i: AdmitInput) => unknown, string]> = [
    ["negative input tokens", (i) => ({ ...i, inputTokens: -1 }), "inputTokens"],
    ["fractional max tokens", (i) => ({ ...i, maxTokens: 1.5 }), "maxTokens"],
    ["zero max tokens", (i) => ({ ...i, maxTokens: 0 }), "maxTokens"],
    ["empty user", (i) => ({ ...i, userId: "" }), "userId"],
    ["bad model name", (i) => ({ ...i, model: "gpt 4o; drop" }), "model"],
    ["bad tenant id", (i) => ({ ...i, tenantId: "Not_A_Tenant" }), "tenantId"],
    [
      "unknown time zone",
      (i) => ({ ...i, config: { ...i.config, timezone: "Mars/Olympus" } }),
      "config.timezone",
    ],
    [
      "negative budget",
      (i) => ({ ...i, config: { ...i.config, monthlyTokenBudget: -5 } }),
      "config.monthlyTokenBudget",
    ],
    ["a string for a number", (i) => ({ ...i, inputTokens: "100" }), "inputTokens"],
    ["an unknown field", (i) => ({ ...i, sneaky: true }), "sneaky"],
    ["no config", (i) => ({ ...i, config: undefined }), "config"],
    ["reservation ttl too short", (i) => ({ ...i, ttlMs: 10 }), "ttlMs"],
    [
      "global limit zero",
      (i) => ({ ...i, global: { gate: "global", limitPerMinute: 0 } }),
      "global.limitPerMinute",
    ],
    [
      "a bad piggybacked settlement",
      (i) => ({
        ...i,
        settle: [{ reservationId: "x", usage: { model: "m", inputTokens: 1, outputTokens: 1 } }],
      }),
      "settle.0.reservationId",
    ],
  ];

  it.each(cases)("refuses admit input with %s (400) and changes nothing", async (_name, mutate, field) => {
    const { tenantId, stub } = await freshGate();
    const f = await failure(stub.admit(mutate(input(tenantId)) as AdmitInput));
    expect(f).toMatchObject({ code: "INVALID_INPUT", status: 400, appCode: "VALIDATION_FAILED" });
    expect(f.message).toContain(field);
    const n = await runInDurableObject(stub, (_g: TenantGate, state) =>
      Number(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM admissions").one().n),
    );
    expect(n).toBe(0);
  });

  // A gate checks only the rest of an input whose config and global target equal the ones it last
  // validated: any difference in them, however deep, must still be refused with its field named.
  const afterValid: typeof cases = [
    ...cases,
    [
      "a bad price in the overrides",
      (i) => ({
        ...i,
        config: { ...i.config, pricingOverrides: { "gpt-4o-mini": { input: -1, output: 1 } } },
      }),
      "config.pricingOverrides",
    ],
    ["an unknown config field", (i) => ({ ...i, config: { ...i.config, sneaky: 1 } }), "sneaky"],
    [
      "an array for the overrides",
      (i) => ({ ...i, config: { ...i.config, pricingOverrides: [] } }),
      "pricingOverrides",
    ],
    ["an unknown global field", (i) => ({ ...i, global: { ...i.global, sneaky: 1 } }), "sneaky"],
  ];

  it.each(afterValid)("refuses admit input with %s after a valid admit too", async (_name, mutate, field) => {
    const { tenantId, stub, gate } = await freshGate();
    admitted(await gate.admit(input(tenantId)));
    const f = await failure(stub.admit(mutate(input(tenantId)) as AdmitInput));
    expect(f).toMatchObject({ code: "INVALID_INPUT", status: 400, appCode: "VALIDATION_FAILED" });
    expect(f.message).toContain(field);
    const n = await runInDurableObject(stub, (_g: TenantGate, state) =>
      Number(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM admissions").one().n),
    );
    expect(n).toBe(1);
    // The remembered config still admits.
    admitted(await gate.admit(input(tenantId)));
  });

  // The gate's hand-written check of an admit's rest (what every message's admission runs) must
  // give the schema's verdict: a yes it gives the schema would refuse would admit bad input, a no
  // the schema would accept would only cost speed, but is a bug of the check all the same.
  it("checks an admit's rest by hand exactly as its schema does, on generated inputs", () => {
    const rand = prng(20261206);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const settleItem = () => ({
      reservationId: pick([
        "rsv_1_0123abcd",
        "rsv_zzzzzzzzzzz_ffffffff",
        "rsv__0123abcd",
        "rsv_1_0123ABCD",
        7,
      ]),
      usage: {
        model: pick(["gpt-4o-mini", "bad model", "@cf/meta/llama", ""]),
        inputTokens: pick([0, 10, -1, 1.5, 10_000_000, 10_000_001]),
        outputTokens: pick([0, 5, Number.NaN, "5"]),
        ...(rand() < 0.1 ? { extra: 1 } : {}),
      },
    });
    const values: Record<string, readonly unknown[]> = {
      tenantId: ["t-1", "a", "-bad", "Bad", `${"a".repeat(63)}`, `${"a".repeat(64)}`, 5, undefined],
      userId: ["u1", "", "x".repeat(256), "x".repeat(257), null, undefined],
      conversationId: ["c1", "", "c".repeat(256), "c".repeat(257), 1],
      model: ["gpt-4o-mini", "@cf/x", "a".repeat(128), "a".repeat(129), "two words", ""],
      inputTokens: [0, 100, -0, -1, 0.5, 10_000_000, 10_000_001, Number.POSITIVE_INFINITY, Number.NaN, "1"],
      maxTokens: [1, 500, 0, 1_000_000, 1_000_001, 2.5, Number.MAX_SAFE_INTEGER + 2],
      ttlMs: [undefined, 1_000, 999, 3_600_000, 3_600_001, 1_500.5],
      continues: [undefined, "rsv_a_00000000", "rsv_a", ""],
      unpriced: [undefined, true, false, "true", 1],
      settle: [undefined, [], "x", { 0: 1 }],
      config: [config(), undefined],
      global: [{ gate: "g", limitPerMinute: 1 }, null],
    };
    let accepted = 0;
    for (let n = 0; n < 3_000; n++) {
      const raw: Record<string, unknown> = { ...input("t-1") };
      // Most fields keep their valid value, so both verdicts come up often.
      for (const [k, vs] of Object.entries(values)) if (rand() < 0.15) raw[k] = pick(vs);
      if (rand() < 0.3) raw.settle = Array.from({ length: Math.floor(rand() * 3) }, settleItem);
      if (rand() < 0.05) raw.sneaky = true;
      if (rand() < 0.05) delete raw[pick(Object.keys(values))];
      const fast = isAdmitRest(raw);
      const schema = AdmitInputRestSchema.safeParse(raw);
      expect({ raw, fast }).toEqual({ raw, fast: schema.success });
      if (fast && schema.success) {
        expect(raw).toEqual(schema.data);
        accepted++;
      }
    }
    // Both verdicts were tested, many times.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(2_500);
    // Only a plain object is taken at its word: the schema decides the rest.
    expect(isAdmitRest(Object.assign(Object.create({ inherited: 1 }), input("t-1")))).toBe(false);
  });

  it("refuses malformed, unknown and forged reservation ids on settle", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const usage = { model: "gpt-4o-mini", inputTokens: 1, outputTokens: 1 };
    expect(await failure(stub.settle("rsv_bogus", usage))).toMatchObject({
      code: "INVALID_INPUT",
      status: 400,
    });
    expect(await failure(stub.settle("rsv_zz_00000000", usage))).toMatchObject({
      code: "NOT_FOUND",
      status: 404,
    });
    const a = admitted(await gate.admit(input(tenantId)));
    // The right sequence number with another tag: an id from some other gate, not this reservation.
    const forged = a.reservationId.replace(/_[0-9a-f]{8}$/, "_00000000");
    expect(await failure(stub.settle(forged, usage))).toMatchObject({ code: "NOT_FOUND", status: 404 });
    expect(await failure(stub.settle(a.reservationId, { ...usage, outputTokens: -1 }))).toMatchObject({
      code: "INVALID_INPUT",
      status: 400,
    });
    expect(
      await failure(
        stub.settleMany(Array.from({ length: 501 }, () => ({ reservationId: a.reservationId, usage }))),
      ),
    ).toMatchObject({ code: "INVALID_INPUT", status: 400 });
    // None of that touched the reservation.
    expect((await gate.settle(a.reservationId, usage)).status).toBe("settled");
  });

  it("belongs to one tenant: another tenant's id is a conflict (409)", async () => {
    const { tenantId, stub, gate } = await freshGate();
    admitted(await gate.admit(input(tenantId)));
    expect(await failure(stub.admit(input("some-other-tenant")))).toMatchObject({
      code: "CONFLICT",
      status: 409,
    });
    expect(
      await failure(stub.usage({ tenantId: "some-other-tenant", days: 7, config: config() })),
    ).toMatchObject({
      code: "CONFLICT",
      status: 409,
    });
    // The worker's client throws the rejection's AppError; the routes pass it on as is.
    await expect(
      gate.usage({ tenantId: "some-other-tenant", days: 7, config: config() }),
    ).rejects.toMatchObject({ code: "CONFLICT", status: 409 });
  });

  it("refuses a usage query outside 1..90 days", async () => {
    const { tenantId, stub } = await freshGate();
    for (const days of [0, 91, 2.5]) {
      expect(await failure(stub.usage({ tenantId, days, config: config() }))).toMatchObject({
        code: "INVALID_INPUT",
        status: 400,
      });
    }
  });

  it("maps anything else a gate throws to 503", () => {
    const e = gateFailure(new Error("Network connection lost."));
    expect([e.status, e.code, e.headers]).toEqual([503, "UNAVAILABLE", { "Retry-After": "1" }]);
  });
});
