import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { resetRedisCooldown } from "../../../src/cache/redis";
import worker from "../../../src/index";
import { clearIsolateCaches } from "../../../src/tenants/config";
import { BASE } from "../helpers";
import { chatTenant } from "./helpers";

/** Calls the worker's fetch with parts of its environment broken. */
async function chatWith(overrides: Record<string, unknown>, key: string, content: string, model = "mock") {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content }] }),
    }),
    { ...(env as unknown as Record<string, unknown>), ...overrides },
    ctx,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body };
}

const DEAD_POSTGRES = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" };
const DEAD_REDIS = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" };

beforeEach(() => {
  resetRedisCooldown();
});

describe("chat when dependencies fail", () => {
  it("keeps answering from Redis-cached config while Postgres is down", async () => {
    const { key } = await chatTenant();
    expect((await chatWith({}, key, "hello")).status).toBe(200);
    clearIsolateCaches();
    const res = await chatWith(DEAD_POSTGRES, key, "hello");
    expect(res.status).toBe(200);
    expect(res.body).toContain("mock assistant");
  });

  it("keeps answering from Postgres while Redis is down", async () => {
    const { key } = await chatTenant();
    clearIsolateCaches();
    const res = await chatWith(DEAD_REDIS, key, "hello");
    expect(res.status).toBe(200);
    expect(res.body).toContain("mock assistant");
  });

  it("answers 503 in the envelope, not 500, when neither Redis nor Postgres can say who the key is", async () => {
    const { key } = await chatTenant();
    clearIsolateCaches();
    const res = await chatWith({ ...DEAD_POSTGRES, ...DEAD_REDIS }, key, "hello");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.message).toContain("unavailable");
  });
});
