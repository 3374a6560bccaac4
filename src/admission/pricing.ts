import { calledModel } from "../chat/providers/aliases";

/** USD per million tokens, input and output. */
export interface Price {
  input: number;
  output: number;
}

/** A tenant's per-model price overrides (USD per million tokens). */
export type PricingOverrides = Record<string, Price>;

/**
 * List prices in USD per million tokens (standard tier: no batch, cache or long-context rates),
 * keyed by the model actually called. An alias (`claude-haiku`) is priced as the model it calls
 * (`claude-haiku-4-5`), never as a model of the same short name: the reference design's table
 * priced `claude-haiku` at Claude 3 Haiku's $0.25/$1.25 while it called Haiku 4.5 at $1/$5.
 * OpenAI and Anthropic rows checked against their public price lists as republished in
 * December 2026 (openai.com/api/pricing, anthropic.com/pricing#api); Google and Workers AI rows are
 * as first written. Prices move: a tenant's `pricing_overrides` win over this table, and the table
 * is the place to correct a drifted price for everyone.
 */
export const MODEL_PRICING: Readonly<Record<string, Price>> = {
  // OpenAI
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
  // Anthropic
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
  // Google
  "gemini-2.5-pro": { input: 1.25, output: 10 },
  "gemini-2.5-flash": { input: 0.3, output: 2.5 },
  "gemini-2.5-flash-lite": { input: 0.1, output: 0.4 },
  "gemini-2.0-flash": { input: 0.1, output: 0.4 },
  // The built-in mock, priced like gpt-4o-mini so local dashboards and budgets show realistic costs.
  mock: { input: 0.15, output: 0.6 },
  "mock-slow": { input: 0.15, output: 0.6 },
  // Workers AI
  "@cf/meta/llama-3.3-70b-instruct-fp8-fast": { input: 0.293, output: 2.253 },
  "@cf/meta/llama-3.1-8b-instruct": { input: 0.282, output: 0.827 },
};

/**
 * What a model missing from the table and from the tenant's overrides costs: the reference
 * design's default, deliberately above most listed models so an unknown model is never cheap.
 */
export const UNKNOWN_MODEL_PRICE: Readonly<Price> = { input: 5, output: 15 };

/** Cost is kept in integer nano-dollars so budget sums never drift by floating-point error. */
export const NANOS_PER_USD = 1_000_000_000;

// "openai/gpt-4o" and "gpt-4o-2024-08-06" are the table's "gpt-4o": a provider prefix (not
// Workers AI's "@cf/") and a date or "-latest" suffix do not change the price list entry.
const PROVIDER_PREFIX = /^(openai|anthropic|google|gemini)\//;
const VERSION_SUFFIX = /-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$/;

/** The table's name for a model as providers spell it. */
export function canonicalModel(model: string): string {
  return model.toLowerCase().replace(PROVIDER_PREFIX, "").replace(VERSION_SUFFIX, "");
}

/**
 * The name a model is priced under: the model it calls (an alias resolved), as the table spells it
 * when the table has it (a provider spelling canonicalized), else the called name itself.
 */
export function pricedModel(model: string): string {
  const called = calledModel(model);
  if (MODEL_PRICING[called]) return called;
  const name = calledModel(canonicalModel(called));
  return MODEL_PRICING[name] ? name : called;
}

/**
 * The price of a model, as the model it calls: the tenant's override (keyed by the name the tenant
 * wrote, an alias or the called model), else the table, else the unknown-model default.
 */
export function priceOf(model: string, overrides: PricingOverrides = {}): Price {
  const priced = pricedModel(model);
  const own =
    overrides[model] ??
    overrides[priced] ??
    Object.entries(overrides).find(([name]) => pricedModel(name) === priced)?.[1];
  return own ?? MODEL_PRICING[priced] ?? UNKNOWN_MODEL_PRICE;
}

/** Nano-dollars per token for a price per million tokens, without float noise (0.15 -> 150). */
function nanosPerToken(usdPerMillion: number): number {
  return Math.round(usdPerMillion * 1e9) / 1e6;
}

/** Cost in nano-dollars of `input` and `output` tokens at `price`, rounded up. */
export function costNanos(price: Price, input: number, output: number): number {
  return Math.ceil(input * nanosPerToken(price.input) + output * nanosPerToken(price.output));
}

/** Output tokens that `nanos` can pay for after `input` tokens at `price`; -1 when not even the input. */
export function affordableOutput(price: Price, input: number, nanos: number): number {
  const left = nanos - Math.ceil(input * nanosPerToken(price.input));
  if (left < 0) return -1;
  const perOut = nanosPerToken(price.output);
  if (perOut === 0) return Number.MAX_SAFE_INTEGER;
  let out = Math.floor(left / perOut);
  // Guard the rounding of costNanos: the answer must itself be affordable.
  while (out > 0 && costNanos(price, input, out) > nanos) out--;
  return out;
}

/** Nano-dollars as USD. */
export const usd = (nanos: number): number => Math.round(nanos) / NANOS_PER_USD;

/** USD as whole nano-dollars (rounded down: a budget is never rounded up). */
export const nanosOf = (dollars: number): number => Math.floor(dollars * NANOS_PER_USD + 1e-6);

/** What `input` and `output` tokens of `model` cost in USD, with the tenant's overrides. */
export function costOf(
  model: string,
  input: number,
  output: number,
  overrides: PricingOverrides = {},
): number {
  return usd(costNanos(priceOf(model, overrides), input, output));
}
