import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { BASE, call, createKey, createTenant, envelope, send } from "../helpers";
import { chatTenant, completions } from "./helpers";

type OpenAiErr = {
  error: { message: string; type: string; param: string | null; code: string | null; request_id: string };
};

/** The OpenAI error of a response, checked to be exactly OpenAI's shape plus our request id. */
async function openAiErr(res: Response): Promise<OpenAiErr["error"]> {
  const body = (await res.json()) as OpenAiErr;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "request_id", "type"]);
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  expect(body.error.message).not.toBe("");
  return body.error;
}

const HI = { model: "mock", messages: [{ role: "user", content: "hi" }] };

describe("errors on /v1/chat/completions come in OpenAI's shape, wherever they are raised", () => {
  it("413: a body over the limit (the app's body rule) is an invalid_request_error", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, {
      model: "mock",
      messages: [{ role: "user", content: "x".repeat(70_000) }],
    });
    expect(res.status).toBe(413);
    expect(await openAiErr(res)).toMatchObject({ type: "invalid_request_error", code: null, param: null });
  });

  it("415: a text body (the app's content-type rule) is an invalid_request_error", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, "hello", { "content-type": "text/plain" });
    expect(res.status).toBe(415);
    const err = await openAiErr(res);
    expect(err).toMatchObject({ type: "invalid_request_error", code: null });
    expect(err.message).toContain("application/json");
  });

  it("400: malformed JSON is an invalid_request_error", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, "{nope");
    expect(res.status).toBe(400);
    expect(await openAiErr(res)).toMatchObject({ type: "invalid_request_error", code: null, param: null });
  });

  it("400: a field failing validation is named as OpenAI writes a param", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, { model: "mock", messages: [{ role: "user", content: 42 }] });
    expect(res.status).toBe(400);
    expect(await openAiErr(res)).toMatchObject({
      type: "invalid_request_error",
      code: null,
      param: "messages[0].content",
    });
  });

  it("404: an unknown path under /v1/chat/completions or /v1/models is a not_found_error", async () => {
    for (const [method, path] of [
      ["POST", "/v1/chat/completions/x"],
      ["GET", "/v1/chat/completions"],
    ] as const) {
      const res = await send(method, path, undefined, method === "POST" ? HI : undefined);
      expect(res.status, path).toBe(404);
      expect(await openAiErr(res), path).toMatchObject({ type: "not_found_error", code: null });
    }
    // Paths OpenAI's clients do not call keep the platform's envelope.
    const other = await call("/v1/chat/completionsx");
    expect(other.status).toBe(404);
    expect(await envelope(other)).toMatchObject({ code: "NOT_FOUND" });
  });

  it("401: a missing, malformed or wrong key is an authentication_error with code invalid_api_key", async () => {
    for (const token of [undefined, "nope", `sk_${"w".repeat(44)}`]) {
      const res = await send("POST", "/v1/chat/completions", token, HI);
      expect(res.status, String(token)).toBe(401);
      expect(await openAiErr(res)).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
    }
  });

  it("403: a publishable key, even from an allowed origin, is a permission_error", async () => {
    const origin = "https://shop.example";
    const t = await createTenant({ model: "mock", allowed_origins: [origin] });
    const { key } = await createKey(t.tenant_id, "publishable");
    for (const path of ["/v1/chat/completions", "/v1/models"]) {
      const res = await send(
        path.endsWith("models") ? "GET" : "POST",
        path,
        key,
        path.endsWith("models") ? undefined : HI,
        {
          origin,
        },
      );
      expect(res.status, path).toBe(403);
      const err = await openAiErr(res);
      expect(err, path).toMatchObject({ type: "permission_error", code: null });
      expect(err.message).toContain("secret key");
    }
  });

  it("429: a rate limit is a rate_limit_error, rate_limit_exceeded, with Retry-After", async () => {
    const { key } = await chatTenant({ user_rate_limit_per_minute: 1 });
    expect((await completions(key, HI)).status).toBe(200);
    const res = await completions(key, HI);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await openAiErr(res)).toMatchObject({
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      param: "user",
    });
  });

  it("500: a misconfigured worker (the app's env check) is a server_error", async () => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(HI),
      }),
      { ...env, ADMIN_TOKEN: undefined },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(500);
    const err = await openAiErr(res);
    expect(err).toMatchObject({ type: "server_error", code: null });
    expect(err.message).toContain("ADMIN_TOKEN");
  });
});

describe("GET /v1/models", () => {
  type ModelList = {
    object: string;
    data: { id: string; object: string; created: number; owned_by: string }[];
  };

  it("lists the models the key may name: the tenant's model, its fallback, its allowed_models", async () => {
    const { key } = await chatTenant({
      model: "gpt-4o-mini",
      fallback_model: "mock",
      allowed_models: ["claude-haiku", "mock"],
    });
    const res = await send("GET", "/v1/models", key);
    expect(res.status).toBe(200);
    expect((await res.json()) as ModelList).toEqual({
      object: "list",
      data: [
        { id: "gpt-4o-mini", object: "model", created: 0, owned_by: "openai" },
        { id: "mock", object: "model", created: 0, owned_by: "mock" },
        { id: "claude-haiku", object: "model", created: 0, owned_by: "anthropic" },
      ],
    });
  });

  it("lists only the tenant's model by default, and each listed model is one the route accepts", async () => {
    const { key } = await chatTenant();
    const list = (await (await send("GET", "/v1/models", key)).json()) as ModelList;
    expect(list.data.map((m) => m.id)).toEqual(["mock"]);
    const res = await completions(key, {
      model: list.data[0]?.id,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(res.status).toBe(200);
  });

  it("GET /v1/models/{model} answers a model the key may name, and 404 model_not_found otherwise", async () => {
    const { key } = await chatTenant({
      model: "gpt-4o-mini",
      allowed_models: ["@cf/meta/llama-3.1-8b-instruct"],
    });
    const res = await send("GET", "/v1/models/gpt-4o-mini", key);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "gpt-4o-mini", object: "model", created: 0, owned_by: "openai" });
    // OpenAI's clients percent-encode the id as one path segment.
    const slashed = await send(
      "GET",
      `/v1/models/${encodeURIComponent("@cf/meta/llama-3.1-8b-instruct")}`,
      key,
    );
    expect(slashed.status).toBe(200);
    expect(await slashed.json()).toMatchObject({ id: "@cf/meta/llama-3.1-8b-instruct", object: "model" });
    // OpenAI's Python client sends it as it is, slashes and all.
    const raw = await send("GET", "/v1/models/@cf/meta/llama-3.1-8b-instruct", key);
    expect(raw.status).toBe(200);
    expect(await raw.json()).toMatchObject({ id: "@cf/meta/llama-3.1-8b-instruct", object: "model" });
    const rawMissing = await send("GET", "/v1/models/gpt-4o/x", key);
    expect(rawMissing.status).toBe(404);
    expect(await openAiErr(rawMissing)).toMatchObject({ type: "not_found_error", code: "model_not_found" });
    // A model that exists elsewhere but not for this key is not found for it: no enumeration of others.
    for (const model of ["gpt-4o", "claude-haiku", "nope"]) {
      const missing = await send("GET", `/v1/models/${model}`, key);
      expect(missing.status, model).toBe(404);
      expect(await openAiErr(missing), model).toMatchObject({
        type: "not_found_error",
        param: "model",
        code: "model_not_found",
      });
    }
  });

  it("refuses a missing key with 401 in OpenAI's shape", async () => {
    const res = await call("/v1/models");
    expect(res.status).toBe(401);
    expect(await openAiErr(res)).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
  });
});
