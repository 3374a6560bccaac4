import type { Env } from "../../env";
import { calledModel } from "./aliases";
import { createAnthropicProvider } from "./anthropic";
import { ProviderError } from "./errors";
import { createMockProvider } from "./mock";
import { createOpenAiProvider } from "./openai";
import type { Provider } from "./types";
import { type AiBinding, createWorkersAiProvider } from "./workers-ai";

/** What the registry reads of the environment; the validated `Env` satisfies it. */
export type ProviderEnv = Pick<
  Env,
  | "OPENAI_API_KEY"
  | "OPENAI_BASE_URL"
  | "ANTHROPIC_API_KEY"
  | "ANTHROPIC_BASE_URL"
  | "OPENAI_COMPAT_PROVIDERS"
> & { AI?: AiBinding };

/** A public model name resolved to the provider that serves it and the id that provider knows it by. */
export interface ResolvedModel {
  /** The name as the tenant configured it. */
  model: string;
  /** The model this name calls, as a public name: an alias resolved (what pricing and analytics use). */
  calledModel: string;
  provider: Provider;
  upstreamModel: string;
  /** false when the provider lacks its key or binding; calling it then fails with a `config` error. */
  configured: boolean;
  /** What an unconfigured provider lacks, e.g. `OPENAI_API_KEY`; set exactly when `configured` is false. */
  missing?: string;
}

export { ANTHROPIC_ALIASES, calledModel } from "./aliases";

const OPENAI_MODEL = /^(gpt-|chatgpt-|o[1-9](-|$))/;

// Stateless, so one of each serves the whole isolate.
const mock = createMockProvider();
const slowMock = createMockProvider({ delayMs: 25 });

function unconfigured(name: string, missing: string): Provider {
  return {
    name,
    // biome-ignore lint/correctness/useYield: it fails before producing anything, by design.
    async *stream(req) {
      throw new ProviderError({
        provider: name,
        model: req.model,
        kind: "config",
        retryable: false,
        message: `${name} is not configured: ${missing} is not set`,
      });
    },
  };
}

function secretNamed(env: ProviderEnv, name: string): string | undefined {
  // Compatible providers name their key variable in config, so it is read by name; loadEnv keeps
  // every raw binding on the env object next to the parsed ones.
  const value = (env as unknown as Record<string, unknown>)[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

// Resolutions per env object (one per isolate once parsed) and model name: a chat request resolves
// its model three times, and each resolution would build its provider anew. Bounded: a few model
// names per tenant, dropped whole when full.
const resolved = new WeakMap<ProviderEnv, Map<string, ResolvedModel | undefined>>();
const RESOLVED_MAX = 1_000;

/** Maps a public model name to its provider; undefined when no provider claims the name. */
export function resolveModel(name: string, env: ProviderEnv): ResolvedModel | undefined {
  let byName = resolved.get(env);
  if (!byName) {
    byName = new Map();
    resolved.set(env, byName);
  }
  if (byName.has(name)) return byName.get(name);
  if (byName.size >= RESOLVED_MAX) byName.clear();
  const model = resolveAnew(name, env);
  byName.set(name, model);
  return model;
}

function resolveAnew(name: string, env: ProviderEnv): ResolvedModel | undefined {
  const found = (provider: Provider, upstreamModel: string): ResolvedModel => ({
    model: name,
    calledModel: calledModel(name),
    provider,
    upstreamModel,
    configured: true,
  });
  const lacking = (provider: string, missing: string, upstreamModel: string): ResolvedModel => ({
    ...found(unconfigured(provider, missing), upstreamModel),
    configured: false,
    missing,
  });
  if (name === "mock" || name.startsWith("mock-")) return found(name === "mock-slow" ? slowMock : mock, name);
  if (name.startsWith("@cf/") || name.startsWith("@hf/")) {
    return env.AI
      ? found(createWorkersAiProvider(env.AI), name)
      : lacking("workers-ai", "the AI binding", name);
  }
  if (name.startsWith("claude-") && name.length > "claude-".length) {
    const upstream = calledModel(name);
    const key = env.ANTHROPIC_API_KEY;
    return key
      ? found(createAnthropicProvider({ baseUrl: env.ANTHROPIC_BASE_URL, apiKey: key }), upstream)
      : lacking("anthropic", "ANTHROPIC_API_KEY", upstream);
  }
  if (OPENAI_MODEL.test(name)) {
    const key = env.OPENAI_API_KEY;
    return key
      ? found(
          createOpenAiProvider({
            name: "openai",
            baseUrl: env.OPENAI_BASE_URL,
            apiKey: key,
            flavor: "openai",
          }),
          name,
        )
      : lacking("openai", "OPENAI_API_KEY", name);
  }
  const slash = name.indexOf("/");
  if (slash > 0 && slash < name.length - 1) {
    const prefix = name.slice(0, slash);
    const compat = env.OPENAI_COMPAT_PROVIDERS[prefix];
    if (!compat) return undefined;
    const upstream = name.slice(slash + 1);
    const key = compat.apiKeyVar ? secretNamed(env, compat.apiKeyVar) : undefined;
    if (compat.apiKeyVar && !key) return lacking(prefix, compat.apiKeyVar, upstream);
    const provider = createOpenAiProvider({
      name: prefix,
      baseUrl: compat.baseUrl,
      apiKey: key,
      flavor: "compatible",
    });
    return found(provider, upstream);
  }
  return undefined;
}

/**
 * Resolves a model and its fallbacks in order, skipping blanks and repeats (two names that call the
 * same model are one step); unknown names are listed.
 */
export function resolveChain(
  names: ReadonlyArray<string | null | undefined>,
  env: ProviderEnv,
): { chain: ResolvedModel[]; unknown: string[] } {
  const chain: ResolvedModel[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    if (!name || seen.has(name)) continue;
    seen.add(name);
    const resolved = resolveModel(name, env);
    if (!resolved) unknown.push(name);
    else if (!chain.some((c) => c.calledModel === resolved.calledModel)) chain.push(resolved);
  }
  return { chain, unknown };
}
