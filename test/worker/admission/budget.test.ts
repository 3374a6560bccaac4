import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { costOf } from "../../../src/admission/pricing";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import { REQUEST_CONVERSATION, type Usage } from "../../../src/admission/types";
import { admitted, config, freshGate, input, refused, runAlarm, setClock, T0 } from "./helpers";

const mini = (inputTokens: number, outputTokens: number): Usage => ({
  model: "gpt-4o-mini",
  inputTokens,
  outputTokens,
});

describe("TenantGate budgets", () => {
  it("never lets concurrent spends exceed the monthly token budget by a single token", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { monthlyTokenBudget: 100_500, userRateLimitPerMinute: 1_000 };
    // 300 messages at once, each reserving 300 + 700 tokens: 100 fit whole, one more fits lowered.
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        gate.admit(input(tenantId, { userId: `u${i}`, inputTokens: 300, maxTokens: 700 }, cfg)),
      ),
    );
    const ok = results.filter((r) => r.ok).map(admitted);
    expect(ok.length).toBe(101);
    expect(ok.reduce((n, r) => n + r.reservedTokens, 0)).toBe(100_500);
    const lowered = ok.filter((r) => r.degraded.length > 0);
    expect(lowered.map((r) => [r.maxTokens, r.degraded, r.budget])).toEqual([
      [200, ["max_tokens"], "monthly_tokens"],
    ]);
    const no = results.filter((r) => !r.ok).map(refused);
    expect(no.length).toBe(199);
    // Refused on 2030-01-15 12:00 UTC: the budget resets at 2030-02-01 00:00 UTC.
    expect(new Set(no.map((r) => `${r.level} ${r.code} ${r.budget} ${r.retryAfterSeconds}`))).toEqual(
      new Set([`budget BUDGET_EXCEEDED monthly_tokens ${(Date.UTC(2030, 1, 1) - T0) / 1000}`]),
    );
    // Everyone spends exactly what was reserved, concurrently: the month lands on the budget.
    const settled = await Promise.all(ok.map((r) => gate.settle(r.reservationId, mini(300, r.maxTokens))));
    expect(settled.every((s) => s.status === "settled" && s.overrunTokens === 0)).toBe(true);
    const usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensUsed: 100_500, tokensReserved: 0, tokensLeft: 0 });
    expect(refused(await gate.admit(input(tenantId, { inputTokens: 1, maxTokens: 1 }, cfg))).budget).toBe(
      "monthly_tokens",
    );
  });

  it("keeps spends within the budget when admissions and settlements interleave", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { monthlyTokenBudget: 50_000, userRateLimitPerMinute: 1_000 };
    // Each message admits, then settles using part of its reservation, all 250 at once.
    const outcomes = await Promise.all(
      Array.from({ length: 250 }, async (_, i) => {
        const r = await gate.admit(
          input(tenantId, { userId: `u${i}`, inputTokens: 200, maxTokens: 400 }, cfg),
        );
        if (!r.ok) return 0;
        const used = 200 + ((i * 37) % r.maxTokens);
        await gate.settle(r.reservationId, mini(200, used - 200));
        return used;
      }),
    );
    const spent = outcomes.reduce((a, b) => a + b, 0);
    const usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month.tokensUsed).toBe(spent);
    expect(usage.month.tokensReserved).toBe(0);
    expect(spent).toBeLessThanOrEqual(50_000);
    expect(usage.month.tokensLeft).toBe(50_000 - spent);
  });

  it("lowers max_tokens, then falls back to the cheaper model, then refuses (daily cost budget)", async () => {
    const { tenantId, stub, gate } = await freshGate();
    // $0.01 a day. gpt-4o: $2.50 in / $10 out per million; gpt-4o-mini: $0.15 / $0.60.
    const cfg = { dailyCostBudgetUsd: 0.01, fallbackModel: "gpt-4o-mini", userRateLimitPerMinute: 100 };
    const ask = (inputTokens: number, conversationId: string) =>
      gate.admit(input(tenantId, { model: "gpt-4o", inputTokens, maxTokens: 500, conversationId }, cfg));
    const first = admitted(await ask(1_000, "c1")); // $0.0025 + $0.005
    expect(first).toMatchObject({ model: "gpt-4o", maxTokens: 500, degraded: [], reservedCostUsd: 0.0075 });
    // $0.0025 left: gpt-4o cannot even pay the input; the fallback covers the whole request.
    const second = admitted(await ask(1_000, "c2"));
    expect(second).toMatchObject({
      model: "gpt-4o-mini",
      requestedModel: "gpt-4o",
      maxTokens: 500,
      degraded: ["fallback_model"],
      budget: "daily_cost",
      reservedCostUsd: 0.00045,
    });
    // $0.00205 left: gpt-4o pays 200 input tokens ($0.0005) and 155 output tokens ($0.00155).
    const third = admitted(await ask(200, "c3"));
    expect(third).toMatchObject({
      model: "gpt-4o",
      maxTokens: 155,
      degraded: ["max_tokens"],
      reservedCostUsd: 0.00205,
    });
    const fourth = refused(await ask(200, "c4"));
    expect(fourth).toMatchObject({ level: "budget", code: "BUDGET_EXCEEDED", budget: "daily_cost" });
    expect(fourth.retryAfterSeconds).toBe(12 * 3600); // until midnight UTC
    // Settling the first for less refunds the rest: 100 of 500 output tokens used frees $0.004.
    const s = await gate.settle(first.reservationId, {
      model: "gpt-4o",
      inputTokens: 1_000,
      outputTokens: 100,
    });
    expect(s).toMatchObject({ status: "settled", costUsd: 0.0035 });
    expect(admitted(await ask(100, "c5"))).toMatchObject({ model: "gpt-4o", maxTokens: 375 });
    // The next day starts fresh.
    await setClock(stub, Date.UTC(2030, 0, 16, 0, 0, 0));
    expect(admitted(await ask(1_000, "c6"))).toMatchObject({ model: "gpt-4o", maxTokens: 500, degraded: [] });
  });

  it("refuses once a conversation reaches its cost cap, and only that conversation", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { conversationCostCapUsd: 0.001 }; // 1,000,000 nano-dollars
    const ask = (conversationId: string) =>
      gate.admit(input(tenantId, { conversationId, inputTokens: 1_000, maxTokens: 500 }, cfg)); // $0.00045
    const a = admitted(await ask("c1"));
    await gate.settle(a.reservationId, mini(1_000, 500));
    admitted(await ask("c1"));
    const r = refused(await ask("c1"));
    expect(r).toMatchObject({ level: "budget", budget: "conversation_cost", retryAfterSeconds: 86_400 });
    admitted(await ask("c2"));
  });

  it("refuses when a request's own input exceeds what is left and no fallback is named", async () => {
    const { tenantId, gate } = await freshGate();
    const r = refused(
      await gate.admit(input(tenantId, { inputTokens: 2_000 }, { monthlyTokenBudget: 1_000 })),
    );
    expect(r.budget).toBe("monthly_tokens");
    // A zero budget refuses everything, however small.
    const z = await freshGate();
    expect(
      refused(
        await z.gate.admit(input(z.tenantId, { inputTokens: 0, maxTokens: 1 }, { monthlyTokenBudget: 0 })),
      ).level,
    ).toBe("budget");
  });

  it("counts the month in the tenant's time zone", async () => {
    // 2030-01-31 10:00 UTC is 23:00 on Jan 31 in Auckland (UTC+13); at 11:00 UTC it is February there.
    const before = Date.UTC(2030, 0, 31, 10, 0, 0);
    const { tenantId, stub, gate } = await freshGate(before);
    const cfg = { monthlyTokenBudget: 1_000, timezone: "Pacific/Auckland" };
    const a = admitted(await gate.admit(input(tenantId, { inputTokens: 500, maxTokens: 500 }, cfg)));
    await gate.settle(a.reservationId, mini(500, 500));
    const r = refused(await gate.admit(input(tenantId, { inputTokens: 10, maxTokens: 10 }, cfg)));
    expect(r).toMatchObject({ budget: "monthly_tokens", retryAfterSeconds: 3_600 });
    let usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ month: "2030-01", tokensUsed: 1_000, tokensLeft: 0 });
    expect(usage.month.resetsAt).toBe(Date.UTC(2030, 0, 31, 11, 0, 0));
    await setClock(stub, Date.UTC(2030, 0, 31, 11, 0, 0));
    admitted(await gate.admit(input(tenantId, { inputTokens: 500, maxTokens: 500 }, cfg)));
    usage = await gate.usage({ tenantId, days: 2, config: config(cfg) });
    expect(usage.month).toMatchObject({ month: "2030-02", tokensUsed: 0, tokensReserved: 1_000 });
    expect(usage.daily.map((d) => [d.date, d.inputTokens + d.outputTokens])).toEqual([
      ["2030-02-01", 0],
      ["2030-01-31", 1_000],
    ]);
  });

  it("commits actual usage on settle, refunds the rest, and ignores a repeat", async () => {
    const { tenantId, gate } = await freshGate();
    const a = admitted(await gate.admit(input(tenantId)));
    expect(a).toMatchObject({ reservedTokens: 600, reservedCostUsd: costOf("gpt-4o-mini", 100, 500) });
    const s = await gate.settle(a.reservationId, mini(90, 60));
    expect(s).toEqual({
      reservationId: a.reservationId,
      status: "settled",
      costUsd: costOf("gpt-4o-mini", 90, 60),
      inputTokens: 90,
      outputTokens: 60,
      overrunTokens: 0,
    });
    const again = await gate.settle(a.reservationId, mini(5_000, 5_000));
    expect(again).toEqual({ ...s, status: "duplicate" });
    const usage = await gate.usage({ tenantId, days: 1, config: config() });
    expect(usage.month).toMatchObject({ tokensUsed: 150, tokensReserved: 0 });
    expect(usage.daily[0]).toMatchObject({ inputTokens: 90, outputTokens: 60, messages: 1 });
  });

  it("reports tokens beyond the reservation (the input estimate was low) and still commits them", async () => {
    const { tenantId, gate } = await freshGate();
    const a = admitted(await gate.admit(input(tenantId, { inputTokens: 100, maxTokens: 100 })));
    const s = await gate.settle(a.reservationId, mini(180, 100));
    expect(s.overrunTokens).toBe(80);
    const usage = await gate.usage({ tenantId, days: 1, config: config() });
    expect(usage.month.tokensUsed).toBe(280);
  });

  it("refunds a reservation nobody settles when its alarm runs, and takes a late settlement", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const cfg = { monthlyTokenBudget: 1_000 };
    const a = admitted(
      await gate.admit(input(tenantId, { inputTokens: 400, maxTokens: 600, ttlMs: 30_000 }, cfg)),
    );
    expect(a.expiresAt).toBe(T0 + 30_000);
    expect(refused(await gate.admit(input(tenantId, { inputTokens: 10, maxTokens: 10 }, cfg))).budget).toBe(
      "monthly_tokens",
    );
    // Before its time, the alarm leaves it alone.
    await setClock(stub, T0 + 29_999);
    expect(await runAlarm(stub)).toBe(true);
    expect((await gate.usage({ tenantId, days: 1, config: config(cfg) })).month.tokensReserved).toBe(1_000);
    await setClock(stub, T0 + 30_000);
    expect(await runAlarm(stub)).toBe(true);
    let usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensReserved: 0, tokensUsed: 0, tokensLeft: 1_000 });
    expect(usage.window.openReservations).toBe(0);
    // The answer did happen after all: its usage still counts, the reservation stays refunded.
    const late = await gate.settle(a.reservationId, mini(400, 100));
    expect(late).toMatchObject({ status: "late", inputTokens: 400, outputTokens: 100 });
    usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensReserved: 0, tokensUsed: 500, tokensLeft: 500 });
    expect((await gate.settle(a.reservationId, mini(1, 1))).status).toBe("duplicate");
  });

  it("settles a batch in one call and piggybacks settlements on an admit", async () => {
    const { tenantId, gate } = await freshGate();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(admitted(await gate.admit(input(tenantId))).reservationId);
    const batch = await gate.settleMany([
      { reservationId: ids[0]!, usage: mini(10, 10) },
      { reservationId: "rsv_zz_00000000", usage: mini(10, 10) },
      { reservationId: ids[1]!, usage: mini(10, 10) },
    ]);
    expect(batch.map((r) => r.status)).toEqual(["settled", "unknown", "settled"]);
    await gate.admit(input(tenantId, { settle: [{ reservationId: ids[2]!, usage: mini(5, 5) }] }));
    const usage = await gate.usage({ tenantId, days: 1, config: config() });
    expect(usage.month.tokensUsed).toBe(50);
    expect(usage.window.openReservations).toBe(1);
  });

  it("keeps a request-scoped conversation's total an hour, a named conversation's for 30 days", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const cfg = { conversationCostCapUsd: 0.001 };
    const conversations = () =>
      runInDurableObject(stub, (_g: TenantGate, state) =>
        state.storage.sql
          .exec<{ id: string }>("SELECT id FROM conversations ORDER BY id")
          .toArray()
          .map((r) => r.id),
      );
    for (const conversationId of [`${REQUEST_CONVERSATION}r1`, "c-named"]) {
      const a = admitted(
        await gate.admit(input(tenantId, { conversationId, inputTokens: 1_000, maxTokens: 500 }, cfg)),
      );
      await gate.settle(a.reservationId, mini(1_000, 500));
    }
    await setClock(stub, T0 + 20_000);
    expect(await runAlarm(stub)).toBe(true);
    expect(await conversations()).toEqual(["c-named", `${REQUEST_CONVERSATION}r1`]);
    // Within the hour the request's total still counts against its cap.
    expect(
      refused(
        await gate.admit(
          input(
            tenantId,
            { conversationId: `${REQUEST_CONVERSATION}r1`, inputTokens: 4_000, maxTokens: 500 },
            cfg,
          ),
        ),
      ).budget,
    ).toBe("conversation_cost");
    // An hour after its last settlement the request's total goes, with its admission rows.
    await setClock(stub, T0 + 61 * 60_000);
    expect(await runAlarm(stub)).toBe(true);
    expect(await conversations()).toEqual(["c-named"]);
  });

  it("keeps every settlement across restarts, before and after the alarm folds them into the totals", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const cfg = { conversationCostCapUsd: 0.001 };
    const table = (name: string) =>
      runInDurableObject(stub, (_g: TenantGate, state) =>
        state.storage.sql.exec(`SELECT * FROM ${name}`).toArray(),
      );
    for (let i = 0; i < 2; i++) {
      const a = admitted(await gate.admit(input(tenantId, { inputTokens: 1_000, maxTokens: 500 }, cfg)));
      await gate.settle(a.reservationId, mini(1_000, 500)); // $0.00045 each
    }
    // Settled rows only so far: the totals are in memory and in the rows, not yet in their tables.
    expect(await table("usage_day")).toEqual([]);
    const check = async () => {
      const u = await gate.usage({ tenantId, days: 1, config: config(cfg) });
      expect(u.month.tokensUsed).toBe(3_000);
      expect(u.daily[0]).toMatchObject({ costUsd: 0.0009, messages: 2 });
      // The conversation has $0.0001 left: not enough for another $0.00045 message.
      expect(
        refused(await gate.admit(input(tenantId, { inputTokens: 1_000, maxTokens: 500 }, cfg))).budget,
      ).toBe("conversation_cost");
    };
    await evictDurableObject(stub);
    await setClock(stub, T0 + 1_000);
    await check();
    // The alarm folds them in; a restart after that must not count them twice.
    await setClock(stub, T0 + 20_000);
    expect(await runAlarm(stub)).toBe(true);
    expect(await table("usage_day")).toEqual([
      { day: "2030-01-15", input_tokens: 2_000, output_tokens: 1_000, nanos: 900_000, messages: 2 },
    ]);
    expect(await table("conversations")).toEqual([{ id: "c1", nanos: 900_000, updated_at: T0 }]);
    await evictDurableObject(stub);
    await setClock(stub, T0 + 21_000);
    await check();
  });
});
