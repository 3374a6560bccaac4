import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import { admitted, freshGate, input, refused, runAlarm, setClock, T0 } from "./helpers";

/** Rows in the gate's admissions table: one per admitted message, none per refusal. */
const rows = (stub: DurableObjectStub<TenantGate>) =>
  runInDurableObject(stub, (_g: TenantGate, state) =>
    Number(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM admissions").one().n),
  );

describe("TenantGate rate limits", () => {
  it("admits exactly 30 of 200 concurrent messages from one user (limit 30)", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => gate.admit(input(tenantId, { conversationId: `c${i}` }))),
    );
    const ok = results.filter((r) => r.ok);
    const no = results.filter((r) => !r.ok).map(refused);
    expect(ok.length).toBe(30);
    expect(no.length).toBe(170);
    expect(new Set(no.map((r) => `${r.level} ${r.code} ${r.retryAfterSeconds}`))).toEqual(
      new Set(["user RATE_LIMITED 60"]),
    );
    expect(no[0]?.rateLimit).toEqual({ level: "user", limit: 30, remaining: 0, resetSeconds: 60 });
    // The remaining count walks down 29..0 across the admitted ones: each saw the one before it.
    expect(ok.map((r) => admitted(r).rateLimit.remaining).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i),
    );
    // Refusals consumed nothing: one row per admission, and the window holds exactly 30.
    expect(await rows(stub)).toBe(30);
    const usage = await gate.usage({ tenantId, days: 1, config: input(tenantId).config });
    expect(usage.window).toMatchObject({ tenantUsed: 30, openReservations: 30, activeUsers: 1 });
    expect(usage.month.tokensReserved).toBe(30 * 600);
  });

  it("slides the window exactly: each event leaves 60 s after it happened", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const cfg = { userRateLimitPerMinute: 3 };
    const at = async (ms: number) => {
      await setClock(stub, T0 + ms);
      return gate.admit(input(tenantId, {}, cfg));
    };
    expect(admitted(await at(0)).rateLimit).toEqual({
      level: "user",
      limit: 3,
      remaining: 2,
      resetSeconds: 60,
    });
    expect(admitted(await at(10_000)).rateLimit.remaining).toBe(1);
    expect(admitted(await at(20_000)).rateLimit).toEqual({
      level: "user",
      limit: 3,
      remaining: 0,
      resetSeconds: 40,
    });
    expect(refused(await at(20_000)).retryAfterSeconds).toBe(40);
    // One millisecond before the first event leaves, the window is still full.
    const edge = refused(await at(59_999));
    expect(edge).toMatchObject({ level: "user", retryAfterSeconds: 1 });
    // At 60 s the T0 event is out (a window is (now - 60 s, now]); one slot, and no more.
    expect(admitted(await at(60_000)).rateLimit).toEqual({
      level: "user",
      limit: 3,
      remaining: 0,
      resetSeconds: 10,
    });
    expect(refused(await at(60_000)).retryAfterSeconds).toBe(10);
    // A two-counter estimate at 65 s would weigh the previous minute's 3 events at 92% and refuse;
    // exactly, only the 10 s event has left... and it has, so there is room for one.
    expect(refused(await at(69_999)).retryAfterSeconds).toBe(1);
    expect(admitted(await at(70_000)).rateLimit.remaining).toBe(0);
    expect(admitted(await at(80_000)).rateLimit.remaining).toBe(0);
    expect(refused(await at(80_000)).retryAfterSeconds).toBe(40);
  });

  it("holds the tenant limit across users and reports the tighter level in the headers", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { rateLimitPerMinute: 5, userRateLimitPerMinute: 30 };
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => gate.admit(input(tenantId, { userId: `u${i}` }, cfg))),
    );
    expect(results.filter((r) => r.ok).length).toBe(5);
    const no = results.filter((r) => !r.ok).map(refused);
    expect(no.every((r) => r.level === "tenant" && r.retryAfterSeconds === 60)).toBe(true);
    const last = results.filter((r) => r.ok).map(admitted);
    expect(last.map((r) => r.rateLimit.level)).toEqual(["tenant", "tenant", "tenant", "tenant", "tenant"]);
    expect(last.map((r) => r.rateLimit.remaining).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("lets a different user through when one user is limited", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { userRateLimitPerMinute: 1 };
    admitted(await gate.admit(input(tenantId, { userId: "alice" }, cfg)));
    expect(refused(await gate.admit(input(tenantId, { userId: "alice" }, cfg))).level).toBe("user");
    admitted(await gate.admit(input(tenantId, { userId: "bob" }, cfg)));
  });

  it("rebuilds its windows from SQLite after the object restarts", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const cfg = { userRateLimitPerMinute: 2 };
    admitted(await gate.admit(input(tenantId, {}, cfg)));
    await setClock(stub, T0 + 30_000);
    admitted(await gate.admit(input(tenantId, {}, cfg)));
    // Drop the in-memory state: a fresh instance must see the same two events.
    await evictDurableObject(stub);
    await setClock(stub, T0 + 59_000);
    expect(refused(await gate.admit(input(tenantId, {}, cfg))).retryAfterSeconds).toBe(1);
    await setClock(stub, T0 + 60_000);
    admitted(await gate.admit(input(tenantId, {}, cfg)));
  });

  it("counts a message no model answers in the windows, across a restart, and in no budget or usage figure", async () => {
    const { tenantId, stub, gate } = await freshGate();
    // A month's budget of 100 tokens cannot hold a priced message (input 100 + 500 out).
    const cfg = { userRateLimitPerMinute: 3, monthlyTokenBudget: 100 };
    const unpriced = () => gate.admit({ ...input(tenantId, {}, cfg), unpriced: true });
    expect(refused(await gate.admit(input(tenantId, {}, cfg))).level).toBe("budget");
    const first = admitted(await unpriced());
    expect(first).toMatchObject({ reservedTokens: 0, reservedCostUsd: 0 });
    expect(first.rateLimit.remaining).toBe(2);
    await setClock(stub, T0 + 20_000);
    admitted(await unpriced());
    await evictDurableObject(stub);
    await setClock(stub, T0 + 30_000);
    admitted(await unpriced());
    // The window is full of them: the next is refused, priced or not, until the first leaves.
    expect(refused(await unpriced())).toMatchObject({ level: "user", retryAfterSeconds: 30 });
    expect(refused(await gate.admit(input(tenantId, {}, cfg))).level).toBe("user");
    await evictDurableObject(stub);
    await setClock(stub, T0 + 30_000);
    const usage = await gate.usage({ tenantId, days: 1, config: input(tenantId, {}, cfg).config });
    expect(usage.month).toMatchObject({ tokensUsed: 0, tokensReserved: 0 });
    expect(usage.daily[0]).toMatchObject({ messages: 0 });
    expect(usage.window).toMatchObject({ tenantUsed: 3, openReservations: 0, activeUsers: 1 });
    expect(await rows(stub)).toBe(3);
  });

  it("prunes old admission rows in its alarm once they are settled and out of every window", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const a = admitted(await gate.admit(input(tenantId)));
    await gate.settle(a.reservationId, { model: "gpt-4o-mini", inputTokens: 10, outputTokens: 10 });
    expect(await rows(stub)).toBe(1);
    await setClock(stub, T0 + 2 * 60 * 60_000);
    expect(await runAlarm(stub)).toBe(true);
    expect(await rows(stub)).toBe(0);
    // The usage it recorded stays: rows go, daily totals remain.
    const usage = await gate.usage({ tenantId, days: 1, config: input(tenantId).config });
    expect(usage.month.tokensUsed).toBe(20);
    expect(usage.window.activeUsers).toBe(0);
  });
});
