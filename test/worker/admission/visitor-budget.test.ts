/**
 * The abuse case of issue #14 (item 5): one browser visitor must not exhaust the tenant's month.
 * No visitor may use more than `visitorMonthlyTokenShare` of the monthly token budget; reservations
 * hold against the share like against the month, so concurrency cannot overshoot it, and the
 * visitor's month total survives a restart of the gate. Server users (`user:`, `key:`) are not
 * limited by it.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import type { Usage } from "../../../src/admission/types";
import { admitted, config, freshGate, input, refused, runAlarm, setClock, T0 } from "./helpers";

const mini = (inputTokens: number, outputTokens: number): Usage => ({
  model: "gpt-4o-mini",
  inputTokens,
  outputTokens,
});

// 5% of 150,000 tokens: 7,500 tokens per visitor per month.
const cfg = { monthlyTokenBudget: 150_000, visitorMonthlyTokenShare: 0.05, userRateLimitPerMinute: 1_000 };
const A = "visitor:v_aaaaaaaaaaaaaaaa";
const B = "visitor:v_bbbbbbbbbbbbbbbb";
const FEB = Date.UTC(2030, 1, 1);

describe("the visitor token share", () => {
  it("stops one visitor at its share: degraded, then refused; others go on", async () => {
    const { tenantId, gate } = await freshGate();
    const ask = (userId: string, inputTokens: number, maxTokens: number, conversationId = "c1") =>
      gate.admit(input(tenantId, { userId, inputTokens, maxTokens, conversationId }, cfg));
    for (let i = 0; i < 4; i++) {
      const r = admitted(await ask(A, 1_000, 500));
      expect(r).toMatchObject({ maxTokens: 500, degraded: [] });
      await gate.settle(r.reservationId, mini(1_000, 500));
    }
    // 6,000 used: 1,500 left, so a 1,000-token answer is lowered to 500.
    const fifth = admitted(await ask(A, 1_000, 1_000));
    expect(fifth).toMatchObject({ maxTokens: 500, degraded: ["max_tokens"], budget: "visitor_tokens" });
    await gate.settle(fifth.reservationId, mini(1_000, 500));
    // Exactly 7,500 used: nothing more, however small, in any conversation.
    const no = refused(await ask(A, 1, 1, "c2"));
    expect(no).toMatchObject({
      level: "budget",
      code: "BUDGET_EXCEEDED",
      budget: "visitor_tokens",
      retryAfterSeconds: (FEB - T0) / 1000,
    });
    expect(no.message).toBe(
      "this visitor's share of the monthly token budget is used up (5%, 7,500 tokens a month)",
    );
    let usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensUsed: 7_500, tokensReserved: 0, tokensLeft: 142_500 });
    // Another visitor has its own share; server users have none.
    expect(admitted(await ask(B, 1_000, 500)).degraded).toEqual([]);
    const server = admitted(await ask("user:alice", 20_000, 500));
    expect(server).toMatchObject({ maxTokens: 500, degraded: [], reservedTokens: 20_500 });
    await gate.settle(server.reservationId, mini(20_000, 500));
    expect(admitted(await ask("key:key_abcdefghijklmnop", 20_000, 500)).degraded).toEqual([]);
    // A user id that merely contains the word is not a visitor.
    expect(admitted(await ask("user:visitor:x", 20_000, 500)).degraded).toEqual([]);
    usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month.tokensUsed).toBe(28_000);
  });

  it("never lets concurrent messages of one visitor reserve a token beyond its share", async () => {
    const { tenantId, gate } = await freshGate();
    // 200 at once, each reserving 300 + 700: 7 fit whole, one more fits lowered to 200 output tokens.
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        gate.admit(
          input(tenantId, { userId: A, conversationId: `c${i}`, inputTokens: 300, maxTokens: 700 }, cfg),
        ),
      ),
    );
    const ok = results.filter((r) => r.ok).map(admitted);
    expect(ok.length).toBe(8);
    expect(ok.reduce((n, r) => n + r.reservedTokens, 0)).toBe(7_500);
    expect(ok.filter((r) => r.degraded.length > 0).map((r) => [r.maxTokens, r.budget])).toEqual([
      [200, "visitor_tokens"],
    ]);
    const no = results.filter((r) => !r.ok).map(refused);
    expect(no.length).toBe(192);
    expect(new Set(no.map((r) => r.budget))).toEqual(new Set(["visitor_tokens"]));
    const usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month.tokensReserved).toBe(7_500);
  });

  it("keeps interleaved admit-then-settle pipelines of one visitor within its share", async () => {
    const { tenantId, gate } = await freshGate();
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, async (_, i) => {
        const r = await gate.admit(
          input(tenantId, { userId: A, conversationId: `c${i}`, inputTokens: 100, maxTokens: 400 }, cfg),
        );
        if (!r.ok) return 0;
        const out = (i * 37) % (r.maxTokens + 1);
        await gate.settle(r.reservationId, mini(100, out));
        return 100 + out;
      }),
    );
    const spent = outcomes.reduce((a, b) => a + b, 0);
    expect(spent).toBeLessThanOrEqual(7_500);
    const usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensUsed: spent, tokensReserved: 0 });
    // What is left is exactly the share minus what was spent.
    const left = 7_500 - spent;
    if (left >= 116) {
      const r = admitted(
        await gate.admit(input(tenantId, { userId: A, inputTokens: 100, maxTokens: 100_000 }, cfg)),
      );
      expect(r.reservedTokens).toBe(left);
    }
  });

  it("keeps a visitor's month across restarts, before and after the alarm folds it in", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const table = () =>
      runInDurableObject(stub, (_g: TenantGate, state) =>
        state.storage.sql.exec("SELECT * FROM visitor_month").toArray(),
      );
    for (let i = 0; i < 2; i++) {
      const r = admitted(
        await gate.admit(input(tenantId, { userId: A, inputTokens: 3_000, maxTokens: 500 }, cfg)),
      );
      await gate.settle(r.reservationId, mini(3_000, 500));
    }
    // 7,000 used, settled rows only: not yet in the visitor table.
    expect(await table()).toEqual([]);
    const check = async () => {
      const r = admitted(
        await gate.admit(input(tenantId, { userId: A, inputTokens: 400, maxTokens: 500, ttlMs: 1_000 }, cfg)),
      );
      expect(r).toMatchObject({ maxTokens: 100, degraded: ["max_tokens"], budget: "visitor_tokens" });
      // While that reservation is open the share is spent; its expiry refunds it.
      expect(
        refused(await gate.admit(input(tenantId, { userId: A, inputTokens: 1, maxTokens: 1 }, cfg))).budget,
      ).toBe("visitor_tokens");
      return r;
    };
    await evictDurableObject(stub);
    await setClock(stub, T0 + 1_000);
    const held = await check();
    await setClock(stub, held.expiresAt);
    expect(await runAlarm(stub)).toBe(true);
    expect(await table()).toEqual([{ month: "2030-01", user_id: A, tokens: 7_000 }]);
    await evictDurableObject(stub);
    await setClock(stub, T0 + 20_000);
    await check();
    // A restart with the reservation still open holds it too.
    await evictDurableObject(stub);
    await setClock(stub, T0 + 20_500);
    expect(
      refused(await gate.admit(input(tenantId, { userId: A, inputTokens: 1, maxTokens: 1 }, cfg))).budget,
    ).toBe("visitor_tokens");
    // Another visitor, and the tenant's month, are untouched by A's share.
    const usage = await gate.usage({ tenantId, days: 1, config: config(cfg) });
    expect(usage.month).toMatchObject({ tokensUsed: 7_000, tokensReserved: 500 });
    expect(
      admitted(await gate.admit(input(tenantId, { userId: B, inputTokens: 3_000, maxTokens: 500 }, cfg)))
        .degraded,
    ).toEqual([]);
  });

  it("resets with the tenant's month, follows the configured share, and is off at 1", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const ask = (share: number, inputTokens: number, maxTokens: number) =>
      gate.admit(
        input(tenantId, { userId: A, inputTokens, maxTokens }, { ...cfg, visitorMonthlyTokenShare: share }),
      );
    const r = admitted(await ask(0.05, 7_000, 500));
    await gate.settle(r.reservationId, mini(7_000, 500));
    expect(refused(await ask(0.05, 1, 1)).budget).toBe("visitor_tokens");
    // Raised to 10% (15,000 tokens): 7,500 more.
    expect(admitted(await ask(0.1, 7_000, 1_000))).toMatchObject({
      maxTokens: 500,
      budget: "visitor_tokens",
    });
    // 1 turns it off: only the tenant's month binds.
    expect(admitted(await ask(1, 100_000, 500)).degraded).toEqual([]);
    // February: a fresh share.
    await setClock(stub, FEB);
    expect(admitted(await ask(0.05, 7_000, 500)).degraded).toEqual([]);
  });
});
