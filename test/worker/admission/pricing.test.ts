import { describe, expect, it } from "vitest";
import { planBudget } from "../../../src/admission/budget";
import { lastDays, localDay, nextDayStart, nextMonthStart } from "../../../src/admission/periods";
import {
  affordableOutput,
  canonicalModel,
  costNanos,
  costOf,
  MODEL_PRICING,
  priceOf,
  UNKNOWN_MODEL_PRICE,
} from "../../../src/admission/pricing";

const M = 1_000_000;

describe("pricing", () => {
  it("prices the reference design's four models per million tokens", () => {
    expect(costOf("gpt-4o", M, M)).toBe(12.5);
    expect(costOf("gpt-4o-mini", M, M)).toBe(0.75);
    expect(costOf("claude-sonnet", M, M)).toBe(18);
    expect(costOf("claude-haiku", M, M)).toBe(1.5);
    expect(costOf("gpt-4o-mini", 100, 500)).toBe(0.000315);
  });

  it("finds provider spellings of a listed model", () => {
    expect(canonicalModel("openai/gpt-4o-2024-08-06")).toBe("gpt-4o");
    expect(canonicalModel("claude-3-5-haiku-20241022")).toBe("claude-3-5-haiku");
    expect(canonicalModel("claude-sonnet-4-5-latest")).toBe("claude-sonnet-4-5");
    expect(priceOf("GPT-4o-Mini")).toEqual({ input: 0.15, output: 0.6 });
    expect(priceOf("@cf/meta/llama-3.1-8b-instruct")).toEqual(
      MODEL_PRICING["@cf/meta/llama-3.1-8b-instruct"],
    );
  });

  it("charges an unknown model the documented default, $5 in and $15 out", () => {
    expect(UNKNOWN_MODEL_PRICE).toEqual({ input: 5, output: 15 });
    expect(costOf("my-own-finetune", M, M)).toBe(20);
    expect(costOf("some-unlisted-model", 1_000, 1_000)).toBe(0.02);
  });

  it("prices the built-in mock like gpt-4o-mini, so local dashboards look real", () => {
    expect(costOf("mock", M, M)).toBe(0.75);
    expect(costOf("mock-slow", M, M)).toBe(0.75);
  });

  it("lets a tenant's override win, by exact or canonical name", () => {
    const overrides = { "gpt-4o": { input: 1, output: 2 }, "my-model": { input: 0, output: 0 } };
    expect(costOf("gpt-4o", M, M, overrides)).toBe(3);
    expect(costOf("openai/gpt-4o-2024-11-20", M, M, overrides)).toBe(3);
    expect(costOf("my-model", M, M, overrides)).toBe(0);
  });

  it("keeps costs in whole nano-dollars, rounding up", () => {
    expect(costNanos({ input: 0.0375, output: 0 }, 1, 0)).toBe(38);
    expect(costNanos({ input: 0.15, output: 0.6 }, 3, 7)).toBe(3 * 150 + 7 * 600);
    // What fits: never a token more than the money pays for.
    expect(affordableOutput({ input: 2.5, output: 10 }, 200, 2_050_000)).toBe(155);
    expect(affordableOutput({ input: 2.5, output: 10 }, 200, 499_999)).toBe(-1);
    expect(affordableOutput({ input: 1, output: 0 }, 1, 1_000)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("degradation plan", () => {
  const req = { model: "gpt-4o", fallbackModel: null, inputTokens: 100, maxTokens: 500, overrides: {} };
  const room = { tokens: 10_000, dayNanos: Number.POSITIVE_INFINITY, convNanos: Number.POSITIVE_INFINITY };

  it("never goes below 16 output tokens (or the request's own smaller max)", () => {
    expect(planBudget(req, { ...room, tokens: 115 })).toEqual({ ok: false, budget: "monthly_tokens" });
    expect(planBudget(req, { ...room, tokens: 116 })).toMatchObject({ ok: true, maxTokens: 16 });
    expect(planBudget({ ...req, maxTokens: 4 }, { ...room, tokens: 104 })).toMatchObject({
      ok: true,
      maxTokens: 4,
    });
  });

  it("names the budget that binds", () => {
    expect(planBudget(req, { ...room, convNanos: 10 })).toEqual({ ok: false, budget: "conversation_cost" });
    expect(planBudget(req, { ...room, dayNanos: 10, convNanos: 20 })).toEqual({
      ok: false,
      budget: "daily_cost",
    });
  });
});

describe("tenant-local periods", () => {
  it("turns an instant into the tenant's local day", () => {
    const t = Date.UTC(2030, 0, 31, 23, 30);
    expect(localDay(t, "UTC")).toBe("2030-01-31");
    expect(localDay(t, "Europe/Berlin")).toBe("2030-02-01");
    expect(localDay(t, "America/Los_Angeles")).toBe("2030-01-31");
  });

  it("finds the next local midnight and month start, across daylight saving changes", () => {
    // Berlin moves to summer time on 2030-03-31: that local day has 23 hours.
    expect(nextDayStart(Date.UTC(2030, 2, 31, 12), "Europe/Berlin")).toBe(Date.UTC(2030, 2, 31, 22));
    expect(nextDayStart(Date.UTC(2030, 2, 30, 12), "Europe/Berlin")).toBe(Date.UTC(2030, 2, 30, 23));
    expect(nextMonthStart(Date.UTC(2030, 11, 15), "UTC")).toBe(Date.UTC(2031, 0, 1));
    expect(nextMonthStart(Date.UTC(2030, 0, 15), "Asia/Kolkata")).toBe(Date.UTC(2030, 0, 31, 18, 30));
  });

  it("lists the last n days across month and year ends", () => {
    expect(lastDays("2030-03-01", 3)).toEqual(["2030-03-01", "2030-02-28", "2030-02-27"]);
    expect(lastDays("2031-01-01", 2)).toEqual(["2031-01-01", "2030-12-31"]);
  });
});
