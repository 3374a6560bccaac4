import { describe, expect, it } from "vitest";
import { allowedModels, pinnedModel } from "../../../src/chat/model-choice";
import { stickyKey } from "../../../src/experiments/assign";
import type { TenantConfig } from "../../../src/tenants/config";
import { createExperiment, defOfJson, services, twoArms } from "../experiments/helpers";
import { admin, uniqueId } from "../helpers";
import { chatTenant, completions, upstreamRequests } from "./helpers";

type Completion = { model: string; choices: { message: { content: string | null } }[] };
type OpenAiErr = {
  error: { message: string; type: string; param: string | null; code: string; request_id: string };
};

/** Asks once with a unique marker; returns the answer and the model the fake OpenAI was sent (if any). */
async function ask(key: string, model: string | undefined, extra: Record<string, unknown> = {}) {
  const marker = `question ${uniqueId("q")}`;
  const res = await completions(key, {
    ...(model === undefined ? {} : { model }),
    ...extra,
    messages: [{ role: "user", content: marker }],
  });
  const seen = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes(marker));
  return { res, upstreamModel: seen?.body.model as string | undefined };
}

describe("POST /v1/chat/completions: which model answers", () => {
  it("runs the tenant's model when the request names none or the tenant's own", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    for (const model of [undefined, "gpt-4o-mini"]) {
      const { res, upstreamModel } = await ask(key, model);
      expect(res.status, String(model)).toBe(200);
      expect(upstreamModel).toBe("gpt-4o-mini");
      expect(((await res.json()) as Completion).model).toBe("gpt-4o-mini");
    }
  });

  it("refuses any other model by default with OpenAI's model_not_found, naming what is allowed", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini", user_rate_limit_per_minute: 1 });
    for (const stream of [false, true]) {
      const { res, upstreamModel } = await ask(key, "gpt-4o", { stream });
      expect(res.status).toBe(400);
      expect(upstreamModel).toBeUndefined();
      const err = (await res.json()) as OpenAiErr;
      expect(err.error).toMatchObject({
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
        request_id: res.headers.get("x-request-id"),
      });
      expect(err.error.message).toBe(
        "The model `gpt-4o` is not available to this tenant; allowed: gpt-4o-mini",
      );
      expect(res.headers.get("ratelimit-limit"), `stream=${stream}`).toBeNull();
    }
    // The refusals were not admitted: the user's one message a minute is still there.
    const { res } = await ask(key, undefined);
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
  });

  it("runs the fallback model or one of allowed_models when the request names it", async () => {
    const { key } = await chatTenant({
      model: "gpt-4o-mini",
      fallback_model: "mock",
      allowed_models: ["gpt-4o", "claude-haiku"],
    });
    const fallback = await ask(key, "mock");
    expect(fallback.res.status).toBe(200);
    const fb = (await fallback.res.json()) as Completion;
    expect(fb.model).toBe("mock");
    expect(fb.choices[0]?.message.content).toContain("mock model");
    const allowed = await ask(key, "gpt-4o");
    expect(allowed.res.status).toBe(200);
    expect(allowed.upstreamModel).toBe("gpt-4o");
    expect(((await allowed.res.json()) as Completion).model).toBe("gpt-4o");
    const refused = await ask(key, "gpt-4.1");
    expect(refused.res.status).toBe(400);
    expect(((await refused.res.json()) as OpenAiErr).error.message).toBe(
      "The model `gpt-4.1` is not available to this tenant; allowed: gpt-4o-mini, mock, gpt-4o, claude-haiku",
    );
  });

  it("follows a change of allowed_models at once", async () => {
    const { id, key } = await chatTenant({ model: "gpt-4o-mini" });
    expect((await ask(key, "gpt-4o")).res.status).toBe(400);
    const patched = await admin("PATCH", `/tenants/${id}`, { allowed_models: ["gpt-4o"] });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ allowed_models: ["gpt-4o"], config_version: 2 });
    expect((await ask(key, "gpt-4o")).upstreamModel).toBe("gpt-4o");
    await admin("PATCH", `/tenants/${id}`, { allowed_models: [] });
    expect((await ask(key, "gpt-4o")).res.status).toBe(400);
  });

  it("reports the model that answered: the fallback when the tenant's model failed", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini", fallback_model: "mock" });
    const res = await completions(key, { messages: [{ role: "user", content: "hi [[fault:500]]" }] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Completion;
    expect(body.model).toBe("mock");
    expect(body.choices[0]?.message.content).toContain("from the mock model");
  });

  it("lets an experiment's model apply unless the caller names another allowed model", async () => {
    const { id, key } = await chatTenant({ model: "gpt-4o-mini", allowed_models: ["claude-haiku"] });
    const e = await createExperiment(id, twoArms("model-ab", { model: "gpt-4o" }, { control: 0, B: 1 }));
    for (const model of [undefined, "gpt-4o-mini"]) {
      const { res, upstreamModel } = await ask(key, model, { user: "alice" });
      expect(res.status, String(model)).toBe(200);
      expect(upstreamModel).toBe("gpt-4o");
      expect(((await res.json()) as Completion).model).toBe("gpt-4o");
    }
    // The variant's model is the experiment's, not one callers may name.
    const pinned = await ask(key, "gpt-4o", { user: "alice" });
    expect(pinned.res.status).toBe(400);
    // A refused request is not assigned to any variant.
    const sticky = (name: string) =>
      services().cache.run<string | null>(null, (r) => r.get(stickyKey(id, defOfJson(e), `user:${name}`)));
    expect(await ask(key, "gpt-4.1", { user: "bob" }).then((a) => a.res.status)).toBe(400);
    expect(await sticky("bob")).toBeNull();
    expect(await sticky("alice")).toBe("B");
  });
});

describe("allowedModels / pinnedModel", () => {
  const tenant = (over: Partial<TenantConfig>) =>
    ({ model: "gpt-4o-mini", fallbackModel: null, allowedModels: [], ...over }) as TenantConfig;

  it("allows the model, the fallback and allowed_models, once each", () => {
    expect(allowedModels(tenant({}))).toEqual(["gpt-4o-mini"]);
    expect(
      allowedModels(tenant({ fallbackModel: "mock", allowedModels: ["gpt-4o", "mock", "gpt-4o-mini"] })),
    ).toEqual(["gpt-4o-mini", "mock", "gpt-4o"]);
  });

  it("reads a config cached before allowed_models existed as having none", () => {
    const old = tenant({ fallbackModel: "mock" });
    delete (old as Partial<TenantConfig>).allowedModels;
    expect(allowedModels(old)).toEqual(["gpt-4o-mini", "mock"]);
    expect(pinnedModel(old, "mock")).toBe("mock");
    expect(() => pinnedModel(old, "gpt-4o")).toThrow("allowed: gpt-4o-mini, mock");
  });

  it("pins nothing when the caller names no model or the tenant's", () => {
    expect(pinnedModel(tenant({}), undefined)).toBeUndefined();
    expect(pinnedModel(tenant({}), "gpt-4o-mini")).toBeUndefined();
    expect(pinnedModel(tenant({ allowedModels: ["gpt-4o"] }), "gpt-4o")).toBe("gpt-4o");
  });
});
