import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MOCK_GREETING_REPLY } from "../../src/chat/providers/mock";
import { type Stack, startStack } from "./stack";

let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: stack.secretKey, maxRetries: 0 });
}, 150_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

describe("the official openai client against `npm run dev`", () => {
  it("gets a non-streamed completion from the mock provider", async () => {
    const res = await client.chat.completions.create({
      model: "mock",
      messages: [{ role: "user", content: "hello" }],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]?.message.content).toBe(MOCK_GREETING_REPLY);
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("streams a completion chunk by chunk, with usage at the end", async () => {
    const stream = await client.chat.completions.create({
      model: "mock",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "what are your opening hours on sunday" }],
    });
    let text = "";
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toContain("opening hours on sunday");
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  it("surfaces errors as the client's typed errors", async () => {
    const hi = { model: "mock", messages: [{ role: "user" as const, content: "hi" }] };
    const bad = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: `sk_${"x".repeat(44)}`, maxRetries: 0 });
    const unauthorized = await bad.chat.completions.create(hi).catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(unauthorized).toMatchObject({
      status: 401,
      type: "authentication_error",
      code: "invalid_api_key",
    });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const publishable = new OpenAI({
      baseURL: `${stack.base}/v1`,
      apiKey: stack.publishableKey,
      maxRetries: 0,
    });
    const forbidden = await publishable.chat.completions.create(hi).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(forbidden).toMatchObject({ status: 403, type: "permission_error" });

    const unknownModel = await client.chat.completions
      .create({ ...hi, model: "no-such-model" })
      .catch((e: unknown) => e);
    expect(unknownModel).toBeInstanceOf(OpenAI.BadRequestError);
    expect(unknownModel).toMatchObject({ param: "model", code: "model_not_found" });
    const noUser = await client.chat.completions
      .create({ model: "mock", messages: [{ role: "system", content: "x" }] })
      .catch((e: unknown) => e);
    expect(noUser).toBeInstanceOf(OpenAI.BadRequestError);
    expect(noUser).toMatchObject({ type: "invalid_request_error" });

    const notFound = await client.post("/chat/completions/x", { body: hi }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect(notFound).toMatchObject({ status: 404, type: "not_found_error" });
  });

  it("surfaces a rate limit as RateLimitError with OpenAI's code", async () => {
    const limited = await tenantClient({ user_rate_limit_per_minute: 1 });
    const hi = { model: "mock", messages: [{ role: "user" as const, content: "hi" }] };
    await limited.chat.completions.create(hi);
    const refused = await limited.chat.completions.create(hi).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, code: "rate_limit_exceeded", param: "user" });
  });

  it("lists the models the key may name with client.models.list()", async () => {
    const own = await tenantClient({
      model: "mock",
      fallback_model: "mock-slow",
      allowed_models: ["mock-2"],
    });
    const ids: string[] = [];
    for await (const model of own.models.list()) {
      expect(model).toMatchObject({ object: "model", owned_by: "mock" });
      ids.push(model.id);
    }
    expect(ids).toEqual(["mock", "mock-slow", "mock-2"]);
  });
});

// The README's TypeScript example is this file, word for word: the test runs what readers copy.
describe("the README's openai snippet (docs/snippets/openai-client.ts)", () => {
  it("is in the README exactly", () => {
    const snippet = readFileSync("docs/snippets/openai-client.ts", "utf8");
    expect(readFileSync("README.md", "utf8")).toContain(`\`\`\`ts\n${snippet}\`\`\``);
  });

  it("answers, streams, and turns a rate limit into a wait, against `npm run dev`", async () => {
    process.env.CHATEDGE_URL = stack.base;
    process.env.CHATEDGE_SECRET_KEY = await tenantKey({ user_rate_limit_per_minute: 2 });
    process.env.CHATEDGE_MODEL = "mock";
    const { ask, askStreaming, askOrWait } = await import("../../docs/snippets/openai-client");
    expect(await ask("hello", "customer-42")).toBe(MOCK_GREETING_REPLY);
    const pieces: string[] = [];
    const usage = await askStreaming("when do you open on sunday", "customer-42", (t) => pieces.push(t));
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.join("")).toContain("when do you open on sunday");
    expect(usage?.total_tokens).toBeGreaterThan(0);
    // customer-42 has had its 2 messages this minute; another user has not.
    expect(await askOrWait("hello", "customer-42")).toMatch(
      /^Busy \(rate_limit_exceeded: user\), try again in \d+ s\.$/,
    );
    expect(await askOrWait("hello", "customer-7")).toBe(MOCK_GREETING_REPLY);
  });
});

/** A client on a new tenant of the stack, created through the admin API, with a secret key. */
async function tenantClient(config: Record<string, unknown>): Promise<OpenAI> {
  return new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: await tenantKey(config), maxRetries: 0 });
}

/** A secret key of a new tenant of the stack, created through the admin API. */
async function tenantKey(config: Record<string, unknown>): Promise<string> {
  const admin = (path: string, body: unknown) =>
    fetch(`${stack.base}/admin${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const id = `e2e-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  const made = await admin("/tenants", {
    tenant_id: id,
    name: id,
    system_prompt: "You help.",
    model: "mock",
    ...config,
  });
  expect(made.status).toBe(201);
  const key = await admin(`/tenants/${id}/keys`, { kind: "secret", name: "e2e" });
  expect(key.status).toBe(201);
  return ((await key.json()) as { key: string }).key;
}
