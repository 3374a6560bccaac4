import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, type MockInstance, vi } from "vitest";
import type { RawEnv } from "../../../src/env";
import worker from "../../../src/index";
import { BASE } from "../helpers";
import { chatTenant } from "./helpers";

/** The worker's environment without any provider key: an operator who set none. */
const NO_KEYS: Partial<RawEnv> = { OPENAI_API_KEY: undefined, ANTHROPIC_API_KEY: undefined };

/** Calls the worker's fetch with its environment overridden (a new object: a new isolate to it). */
async function fetchWith(overrides: Partial<RawEnv>, key: string, path: string, body: unknown) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    { ...env, ...overrides },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text };
}

const chat = (overrides: Partial<RawEnv>, key: string, model: string) =>
  fetchWith(overrides, key, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }] });

/** The "model not configured" log lines written so far. */
function refusalLogs(warn: MockInstance<typeof console.warn>): Record<string, unknown>[] {
  return warn.mock.calls
    .map((args) => {
      try {
        return JSON.parse(String(args[0])) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((l) => l.msg === "model not configured");
}

afterEach(() => vi.restoreAllMocks());

describe("a model whose provider is not configured", () => {
  it("is refused at once on the OpenAI route with a 400 in OpenAI's shape naming the missing key, reserving nothing", async () => {
    const { id, key } = await chatTenant({ model: "gpt-4o", user_rate_limit_per_minute: 1 });
    const warn = vi.spyOn(console, "warn");
    for (let i = 0; i < 2; i++) {
      const res = await chat(NO_KEYS, key, "gpt-4o");
      expect(res.status).toBe(400);
      const error = JSON.parse(res.body).error;
      expect(error).toMatchObject({ type: "invalid_request_error", param: "model" });
      expect(error.message).toBe("model not configured on this platform: gpt-4o needs OPENAI_API_KEY");
    }
    expect(refusalLogs(warn)).toEqual([
      { msg: "model not configured", tenantId: id, models: ["gpt-4o"], missing: ["OPENAI_API_KEY"] },
      { msg: "model not configured", tenantId: id, models: ["gpt-4o"], missing: ["OPENAI_API_KEY"] },
    ]);
    // Nothing was admitted: the one message a minute this visitor may send is still there.
    expect((await chat({}, key, "gpt-4o")).status).toBe(200);
    expect((await chat({}, key, "gpt-4o")).status).toBe(429);
  });

  it("is refused on the conversation API with a 400 in our envelope", async () => {
    const { key } = await chatTenant({ model: "claude-haiku" });
    const started = await fetchWith(NO_KEYS, key, "/v1/conversations", {});
    expect(started.status).toBe(201);
    const conv = JSON.parse(started.body) as { id: string };
    const res = await fetchWith(NO_KEYS, key, `/v1/conversations/${conv.id}/messages`, { content: "hi" });
    expect(res.status).toBe(400);
    const { error } = JSON.parse(res.body);
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.message).toBe("model not configured on this platform: claude-haiku needs ANTHROPIC_API_KEY");
    expect(error.details).toEqual([
      { path: "model", message: "provider not configured: ANTHROPIC_API_KEY is not set" },
    ]);
  });

  it("names every missing setting when the fallback lacks its own", async () => {
    const { key } = await chatTenant({ model: "gpt-4o", fallback_model: "claude-haiku" });
    const res = await chat(NO_KEYS, key, "gpt-4o");
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.message).toBe(
      "model not configured on this platform: gpt-4o needs OPENAI_API_KEY; claude-haiku (fallback) needs ANTHROPIC_API_KEY",
    );
  });

  it("still answers through a configured fallback", async () => {
    const { key } = await chatTenant({ model: "gpt-4o", fallback_model: "mock" });
    const res = await chat(NO_KEYS, key, "gpt-4o");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).model).toBe("mock");
  });
});
