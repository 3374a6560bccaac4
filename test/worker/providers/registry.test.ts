import { env as workerEnv } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resolveChain, resolveModel } from "../../../src/chat/providers/registry";
import type { AiBinding } from "../../../src/chat/providers/workers-ai";
import { loadEnv } from "../../../src/env";
import { drain, fakeEnv, never } from "./helpers";

const ai: AiBinding = { run: async () => ({ response: "ok" }) };
const env = fakeEnv({
  OPENAI_API_KEY: "sk-o",
  ANTHROPIC_API_KEY: "sk-a",
  AI: ai,
  OPENAI_COMPAT_PROVIDERS: {
    groq: { baseUrl: "https://api.groq.com/openai/v1", apiKeyVar: "GROQ_API_KEY" },
    together: { baseUrl: "https://api.together.xyz/v1", apiKeyVar: "TOGETHER_API_KEY" },
    ollama: { baseUrl: "http://127.0.0.1:11434/v1" },
  },
  GROQ_API_KEY: "gsk-g",
});

const route = (name: string) => {
  const r = resolveModel(name, env);
  return r && { provider: r.provider.name, upstream: r.upstreamModel, configured: r.configured };
};

describe("model registry", () => {
  it("maps public names to providers and upstream models", () => {
    expect(route("gpt-4o-mini")).toEqual({ provider: "openai", upstream: "gpt-4o-mini", configured: true });
    expect(route("o3-mini")).toEqual({ provider: "openai", upstream: "o3-mini", configured: true });
    expect(route("claude-haiku")).toEqual({
      provider: "anthropic",
      upstream: "claude-haiku-4-5",
      configured: true,
    });
    expect(route("claude-sonnet")).toEqual({
      provider: "anthropic",
      upstream: "claude-sonnet-4-5",
      configured: true,
    });
    expect(route("claude-3-5-haiku-latest")).toEqual({
      provider: "anthropic",
      upstream: "claude-3-5-haiku-latest",
      configured: true,
    });
    expect(route("@cf/meta/llama-3.1-8b-instruct")).toEqual({
      provider: "workers-ai",
      upstream: "@cf/meta/llama-3.1-8b-instruct",
      configured: true,
    });
    expect(route("mock")).toEqual({ provider: "mock", upstream: "mock", configured: true });
    expect(route("mock-slow")).toEqual({ provider: "mock", upstream: "mock-slow", configured: true });
    expect(route("groq/llama-3.1-8b-instant")).toEqual({
      provider: "groq",
      upstream: "llama-3.1-8b-instant",
      configured: true,
    });
    expect(route("ollama/llama3.2")).toEqual({ provider: "ollama", upstream: "llama3.2", configured: true });
  });

  it("keeps slashes after the provider prefix as part of the upstream model", () => {
    expect(route("together/meta-llama/Llama-3.3-70B-Instruct-Turbo")).toEqual({
      provider: "together",
      upstream: "meta-llama/Llama-3.3-70B-Instruct-Turbo",
      configured: false,
    });
  });

  it("answers undefined for names no provider claims", () => {
    for (const name of [
      "",
      "llama-3",
      "gpt4",
      "claude-",
      "unknown/model",
      "groq/",
      "/gpt-4o",
      "@cf",
      "mockery",
    ]) {
      expect(resolveModel(name, env), name).toBeUndefined();
    }
  });

  it("marks providers without key or binding unconfigured, failing with a config error naming what is missing", async () => {
    const bare = fakeEnv();
    for (const [name, missing] of [
      ["gpt-4o-mini", "OPENAI_API_KEY"],
      ["claude-haiku", "ANTHROPIC_API_KEY"],
      ["@cf/meta/llama-3.1-8b-instruct", "the AI binding"],
    ] as const) {
      const r = resolveModel(name, bare);
      expect(r?.configured, name).toBe(false);
      expect(r?.missing, name).toBe(missing);
      const { error } = await drain(
        r!.provider.stream({ model: r!.upstreamModel, messages: [], maxTokens: 1 }, { signal: never() }),
      );
      expect(error).toMatchObject({
        kind: "config",
        retryable: false,
        message: expect.stringContaining(missing),
      });
    }
  });

  it("resolves a chain in order, skipping blanks and repeats and listing unknown names", () => {
    const { chain, unknown } = resolveChain(
      ["claude-haiku", null, "nope", "claude-haiku", undefined, "mock"],
      env,
    );
    expect(chain.map((c) => c.model)).toEqual(["claude-haiku", "mock"]);
    expect(unknown).toEqual(["nope"]);
  });
});

describe("provider settings in the environment", () => {
  // The test worker's env without the provider settings vitest.config.ts gives it.
  const base = {
    ...workerEnv,
    OPENAI_BASE_URL: undefined,
    ANTHROPIC_BASE_URL: undefined,
    PROVIDER_TIMEOUT_MS: undefined,
  };

  it("defaults to the real APIs and sane limits", () => {
    const loaded = loadEnv({ ...base });
    expect(loaded.ok && loaded.env).toMatchObject({
      OPENAI_BASE_URL: "https://api.openai.com/v1",
      ANTHROPIC_BASE_URL: "https://api.anthropic.com",
      OPENAI_COMPAT_PROVIDERS: {},
      PROVIDER_TIMEOUT_MS: 30_000,
      PROVIDER_MAX_RETRIES: 2,
    });
  });

  it("parses OPENAI_COMPAT_PROVIDERS from JSON text and rejects malformed values by name", () => {
    const good = loadEnv({
      ...base,
      OPENAI_COMPAT_PROVIDERS:
        '{"groq":{"baseUrl":"https://api.groq.com/openai/v1","apiKeyVar":"GROQ_API_KEY"}}',
    });
    expect(good.ok && good.env.OPENAI_COMPAT_PROVIDERS).toEqual({
      groq: { baseUrl: "https://api.groq.com/openai/v1", apiKeyVar: "GROQ_API_KEY" },
    });
    const bad = loadEnv({ ...base, OPENAI_COMPAT_PROVIDERS: "{not json" });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problems.join(" ")).toContain("OPENAI_COMPAT_PROVIDERS");
  });
});
