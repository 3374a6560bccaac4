/**
 * Tool-loop steps at the tenant gate (issue #16): a step continues its message's admission. It
 * takes no slot in the rate windows, but every budget holds for it; a forged or foreign
 * continuation is refused.
 */
import { describe, expect, it } from "vitest";
import { admitted, freshGate, input, refused } from "../admission/helpers";

describe("admission of tool-loop steps", () => {
  it("counts a message once in the rate window however many steps it takes", async () => {
    const { tenantId, gate } = await freshGate();
    const cfg = { userRateLimitPerMinute: 2 };
    const first = admitted(await gate.admit(input(tenantId, {}, cfg)));
    for (let step = 0; step < 5; step++) {
      const r = admitted(await gate.admit(input(tenantId, { continues: first.reservationId }, cfg)));
      // The window still shows one message used of two.
      expect(r.rateLimit).toMatchObject({ level: "user", remaining: 1 });
    }
    admitted(await gate.admit(input(tenantId, { conversationId: "c2" }, cfg)));
    // A third message is refused: the steps of the first took no slot, the two messages did.
    expect(refused(await gate.admit(input(tenantId, { conversationId: "c3" }, cfg))).level).toBe("user");
    const usage = await gate.usage({ tenantId, days: 1, config: input(tenantId, {}, cfg).config });
    // Seven calls reserved (two messages, five steps), two requests in the tenant's window.
    expect(usage.window).toMatchObject({ tenantUsed: 2, openReservations: 7 });
  });

  it("holds every budget for a step: reserved like any call, refused when the budget is spent", async () => {
    const { tenantId, gate } = await freshGate();
    // 1,300 tokens: the first call reserves 600 (100 in + 500 out), one step 600 more, then no room.
    const cfg = { monthlyTokenBudget: 1_300 };
    const first = admitted(await gate.admit(input(tenantId, {}, cfg)));
    const step = admitted(await gate.admit(input(tenantId, { continues: first.reservationId }, cfg)));
    expect(step.reservedTokens).toBe(600);
    const over = refused(
      await gate.admit(
        input(tenantId, { continues: first.reservationId, maxTokens: 500, inputTokens: 200 }, cfg),
      ),
    );
    expect(over).toMatchObject({ level: "budget", code: "BUDGET_EXCEEDED", budget: "monthly_tokens" });
  });

  it("refuses a continuation of another conversation's, another user's or an unknown admission", async () => {
    const { tenantId, gate } = await freshGate();
    const first = admitted(await gate.admit(input(tenantId)));
    const tag = first.reservationId.split("_")[2];
    for (const over of [
      { conversationId: "other", continues: first.reservationId },
      { userId: "u2", continues: first.reservationId },
      { continues: `rsv_zz_${tag}` },
      { continues: first.reservationId.replace(/_[0-9a-f]{8}$/, "_00000000") },
    ]) {
      await expect(gate.admit(input(tenantId, over))).rejects.toMatchObject({ status: 400 });
    }
    await expect(gate.admit(input(tenantId, { continues: "rsv_not-an-id" }))).rejects.toMatchObject({
      status: 400,
    });
  });
});
