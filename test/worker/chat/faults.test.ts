import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cacheStats } from "../../../src/cache/stats";
import type { RawEnv } from "../../../src/env";
import worker from "../../../src/index";
import { eventually } from "../eventually";
import { BASE, query, send, sql, uniqueId } from "../helpers";
import { chatTenant, completions, sseFrames } from "./helpers";

/**
 * Calls the worker's fetch with parts of its environment broken. Each call's environment is a new
 * object, so to the worker it is a new isolate: nothing in isolate memory, no Redis outage noted.
 */
async function chatWith(overrides: Partial<RawEnv>, key: string, content: string, model = "mock") {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content }] }),
    }),
    { ...env, ...overrides },
    ctx,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body };
}

const DEAD_POSTGRES = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" };
const DEAD_REDIS = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" };

describe("chat when dependencies fail", () => {
  it("keeps answering from Redis-cached config while Postgres is down", async () => {
    const { key } = await chatTenant();
    expect((await chatWith({}, key, "hello")).status).toBe(200);
    const res = await chatWith(DEAD_POSTGRES, key, "hello");
    expect(res.status).toBe(200);
    expect(res.body).toContain("mock assistant");
  });

  it("serves the last known config from Redis, past its freshness, only while Postgres is down", async () => {
    const { key } = await chatTenant();
    // Copies that are never fresh: Redis keeps them only to serve while Postgres cannot answer.
    const shortFresh = { REDIS_CACHE_TTL_SECONDS: "0" };
    expect((await chatWith(shortFresh, key, "hello")).status).toBe(200);
    const stale = cacheStats.stale;
    const res = await chatWith({ ...shortFresh, ...DEAD_POSTGRES }, key, "hello");
    expect(res.status).toBe(200);
    expect(res.body).toContain("mock assistant");
    expect(cacheStats.stale).toBeGreaterThan(stale);
    // With Postgres back, a stale copy is not used: the lookup goes to Postgres.
    const before = { ...cacheStats };
    expect((await chatWith(shortFresh, key, "hello")).status).toBe(200);
    expect(cacheStats.postgres).toBeGreaterThan(before.postgres);
    expect(cacheStats.stale).toBe(before.stale);
  });

  it("keeps answering from Postgres while Redis is down", async () => {
    const { key } = await chatTenant();
    const res = await chatWith(DEAD_REDIS, key, "hello");
    expect(res.status).toBe(200);
    expect(res.body).toContain("mock assistant");
  });

  it("answers 503 in the envelope, not 500, when neither Redis nor Postgres can say who the key is", async () => {
    const { key } = await chatTenant();
    const res = await chatWith({ ...DEAD_POSTGRES, ...DEAD_REDIS }, key, "hello");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.message).toContain("unavailable");
  });
});

describe("chat when the provider fails", () => {
  it("tells the visitor clearly, records the error and settles what was produced when a stream is cut", async () => {
    const { id, key } = await chatTenant({ model: "gpt-4o-mini" });
    const conv = uniqueId("cut");
    const res = await completions(
      key,
      {
        model: "gpt-4o-mini",
        stream: true,
        messages: [{ role: "user", content: "tell me a long story [[fault:cut]]" }],
      },
      { "x-conversation-id": conv },
    );
    const frames = await sseFrames(res);
    const error = frames.map((f) => f.data).find((d) => d.includes('"error"'));
    expect(error).toBeDefined();
    expect(JSON.parse(error ?? "{}").error.message).toBe(
      "Sorry, the assistant could not answer right now. Please try again in a moment.",
    );
    const rows = await eventually(async () => {
      const rows = await query<{ outcome: string; output_tokens: string }>(
        sql`select outcome, output_tokens from turns where tenant_id = ${id} and conversation_id = ${conv}`,
      );
      expect(rows).not.toHaveLength(0);
      return rows;
    });
    expect(rows[0]?.outcome).toBe("error");
    expect(Number(rows[0]?.output_tokens)).toBeGreaterThan(0);
    const usage = (await (await send("GET", "/v1/usage", key)).json()) as {
      window: { open_reservations: number };
    };
    expect(usage.window.open_reservations).toBe(0);
  });

  it("answers 502 with a clear message when the provider hangs past the timeout", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const started = Date.now();
    const res = await chatWith(
      { PROVIDER_TIMEOUT_MS: "300", PROVIDER_MAX_RETRIES: "0" },
      key,
      "hi [[fault:hang]]",
      "gpt-4o-mini",
    );
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).error.message).toBe(
      "Sorry, the assistant took too long to answer. Please try again.",
    );
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
