import { describe, expect, it } from "vitest";
import { planBudget } from "../../../src/admission/budget";
import { lastDays, localDay, nextDayStart, nextMonthStart } from "../../../src/admission/periods";
import {
  affordableOutput,
  canonicalModel,
  costNanos,
  costOf,
  MODEL_PRICING,
  type Price,
  pricedModel,
  priceOf,
  UNKNOWN_MODEL_PRICE,
} from "../../../src/admission/pricing";
import { ANTHROPIC_ALIASES, resolveModel } from "../../../src/chat/providers/registry";
import type { AiBinding } from "../../../src/chat/providers/workers-ai";
import { fakeEnv } from "../providers/helpers";

const M = 1_000_000;

describe("pricing", () => {
  it("prices the reference design's four names per million tokens, aliases as the model they call", () => {
    expect(costOf("gpt-4o", M, M)).toBe(12.5);
    expect(costOf("gpt-4o-mini", M, M)).toBe(0.75);
    // claude-sonnet calls claude-sonnet-4-5 ($3/$15), claude-haiku calls claude-haiku-4-5 ($1/$5):
    // not Claude 3 Haiku's $0.25/$1.25, which the reference design's table gave the short name.
    expect(costOf("claude-sonnet", M, M)).toBe(18);
    expect(costOf("claude-haiku", M, M)).toBe(6);
    expect(costOf("claude-haiku", M, M)).toBe(costOf("claude-haiku-4-5", M, M));
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

  it("applies a tenant's override of an alias to the model it calls, and the other way round", () => {
    const onAlias = { "claude-haiku": { input: 0.2, output: 1 } };
    expect(costOf("claude-haiku", M, M, onAlias)).toBe(1.2);
    expect(costOf("claude-haiku-4-5", M, M, onAlias)).toBe(1.2);
    expect(costOf("claude-haiku-4-5-20251001", M, M, onAlias)).toBe(1.2);
    const onCalled = { "claude-haiku-4-5": { input: 0.5, output: 2 } };
    expect(costOf("claude-haiku", M, M, onCalled)).toBe(2.5);
    expect(costOf("claude-sonnet", M, M, onCalled)).toBe(18);
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
  const room = {
    tokens: 10_000,
    visitorTokens: Number.POSITIVE_INFINITY,
    dayNanos: Number.POSITIVE_INFINITY,
    convNanos: Number.POSITIVE_INFINITY,
  };

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
    // A visitor's share binds like the monthly budget; on a tie the tenant's month is named.
    expect(planBudget(req, { ...room, visitorTokens: 115 })).toEqual({ ok: false, budget: "visitor_tokens" });
    expect(planBudget(req, { ...room, tokens: 115, visitorTokens: 115 })).toEqual({
      ok: false,
      budget: "monthly_tokens",
    });
    expect(planBudget(req, { ...room, visitorTokens: 400 })).toMatchObject({
      ok: true,
      maxTokens: 300,
      degraded: ["max_tokens"],
      budget: "visitor_tokens",
    });
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

// List prices, USD per million tokens (standard tier), as the providers' public price lists stood
// in December 2026: openai.com/api/pricing and anthropic.com/pricing#api, as republished by
// third-party price trackers (the lists themselves are not reachable from here). Google and
// Workers AI rows are the table's own, unverified here.
const LIST_PRICES: Record<string, Price> = {
  "gpt-4o": { input: 2.5, output: 10 },
  "gpt-4o-mini": { input: 0.15, output: 0.6 },
  "gpt-5": { input: 1.25, output: 10 },
  "gpt-5-mini": { input: 0.25, output: 2 },
  "gpt-5-nano": { input: 0.05, output: 0.4 },
  "gpt-4.1": { input: 2, output: 8 },
  "gpt-4.1-mini": { input: 0.4, output: 1.6 },
  "gpt-4.1-nano": { input: 0.1, output: 0.4 },
  o3: { input: 2, output: 8 },
  "o3-mini": { input: 1.1, output: 4.4 },
  "o4-mini": { input: 1.1, output: 4.4 },
  "claude-opus-4-5": { input: 5, output: 25 },
  "claude-opus-4-1": { input: 15, output: 75 },
  "claude-opus-4": { input: 15, output: 75 },
  "claude-sonnet-4-5": { input: 3, output: 15 },
  "claude-sonnet-4": { input: 3, output: 15 },
  "claude-3-7-sonnet": { input: 3, output: 15 },
  "claude-3-5-sonnet": { input: 3, output: 15 },
  "claude-haiku-4-5": { input: 1, output: 5 },
  "claude-3-5-haiku": { input: 0.8, output: 4 },
  "claude-3-haiku": { input: 0.25, output: 1.25 },
};

describe("priced as called", () => {
  const ai: AiBinding = { run: async () => ({ response: "ok" }) };
  const env = fakeEnv({
    OPENAI_API_KEY: "sk-o",
    ANTHROPIC_API_KEY: "sk-a",
    AI: ai,
    OPENAI_COMPAT_PROVIDERS: { groq: { baseUrl: "https://api.groq.com/openai/v1" } },
  });
  // Every name the table lists, every alias, and the provider spellings tenants write.
  const names = [
    ...Object.keys(MODEL_PRICING),
    ...Object.keys(ANTHROPIC_ALIASES),
    "gpt-4o-2024-08-06",
    "claude-3-5-haiku-20241022",
    "claude-sonnet-4-5-latest",
    "groq/llama-3.1-8b-instant",
  ];

  it("prices every name the registry resolves as the model it calls upstream", () => {
    for (const name of names) {
      const resolved = resolveModel(name, env);
      if (!resolved) {
        // Listed but served by no provider here (Google's models): priced by name, never called.
        expect(name, name).toMatch(/^gemini-/);
        continue;
      }
      // What the provider is sent, as the price list spells it; compatible providers are sent the
      // name after their prefix, so their called model keeps it.
      const upstream = resolved.provider.name === "groq" ? resolved.calledModel : resolved.upstreamModel;
      expect(pricedModel(name), name).toBe(pricedModel(upstream));
      expect(pricedModel(resolved.calledModel), name).toBe(pricedModel(name));
      expect(priceOf(name), name).toEqual(priceOf(upstream));
    }
    expect(pricedModel("claude-haiku")).toBe("claude-haiku-4-5");
    expect(pricedModel("claude-sonnet")).toBe("claude-sonnet-4-5");
    expect(pricedModel("groq/llama-3.1-8b-instant")).toBe("groq/llama-3.1-8b-instant");
    expect(priceOf("groq/llama-3.1-8b-instant")).toEqual(UNKNOWN_MODEL_PRICE);
  });

  it("lists OpenAI and Anthropic models at their list prices, and no alias of its own", () => {
    for (const [model, price] of Object.entries(LIST_PRICES))
      expect(MODEL_PRICING[model], model).toEqual(price);
    for (const alias of Object.keys(ANTHROPIC_ALIASES)) expect(MODEL_PRICING[alias], alias).toBeUndefined();
    expect(priceOf("claude-haiku")).toEqual({ input: 1, output: 5 });
    expect(priceOf("claude-sonnet")).toEqual({ input: 3, output: 15 });
  });
});
