/**
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11) on both chat APIs,
 * parsed as Structured Fields: one policy per level in force, remaining and reset per level, on
 * admitted messages and on refusals. The gate's clock is pinned, so every value is exact.
 */
import { describe, expect, it } from "vitest";
import { rateLimitHeaders } from "../../../src/admission/headers";
import { rateRefusal } from "../../../src/admission/refusals";
import { GLOBAL_LIMIT_PER_MINUTE } from "../../../src/admission/types";
import { gateOf, setClock, T0 } from "../admission/helpers";
import { createKey, send, uniqueId } from "../helpers";
import { integerParamsByName, parseList } from "../structured-fields";
import { chatTenant, completions } from "./helpers";

const GLOBAL = { q: GLOBAL_LIMIT_PER_MINUTE, w: 60 };
const policy = (res: Response) => integerParamsByName(res.headers.get("ratelimit-policy"));
const limits = (res: Response) => integerParamsByName(res.headers.get("ratelimit"));

/** A tenant allowing 3 messages per user and 5 per tenant a minute, its gate's clock at T0. */
async function tenant(overrides: Record<string, unknown> = {}) {
  const t = await chatTenant({ user_rate_limit_per_minute: 3, rate_limit_per_minute: 5, ...overrides });
  const gate = gateOf(t.id);
  await setClock(gate, T0);
  return { ...t, at: (ms: number) => setClock(gate, T0 + ms) };
}

const ask = (key: string, user: string) =>
  completions(key, { model: "mock", user, messages: [{ role: "user", content: "hi" }] });

async function converse(key: string, user: string) {
  const res = await send("POST", "/v1/conversations", key, { user });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  return () => send("POST", `/v1/conversations/${id}/messages`, key, { content: "hello" });
}

describe("RateLimit-Policy and RateLimit", () => {
  it("the strict parser reads the draft's examples and rejects what is not a List of Items", () => {
    expect(integerParamsByName('"burst";q=100;w=60,"daily";q=1000;w=86400')).toEqual({
      burst: { q: 100, w: 60 },
      daily: { q: 1000, w: 86400 },
    });
    expect(parseList('"default";r=50;t=30')).toHaveLength(1);
    for (const bad of ['"a";q=1,', '"a";q=1 "b"', '"a";Q=1', '"a";q=1.5', '"a', "(a b)", '"a";q=1;;w=2']) {
      expect(() => parseList(bad), bad).toThrow(/structured field/);
    }
    expect(() => integerParamsByName("user;q=1")).toThrow(/not a String/);
    expect(() => integerParamsByName('"user";q="1"')).toThrow(/not an Integer/);
  });

  it("/v1/chat/completions: a policy per level, and each level's remaining and reset", async () => {
    const { key, at } = await tenant();
    expect((await ask(key, "alice")).status).toBe(200);
    expect((await ask(key, "alice")).status).toBe(200);
    await at(10_000);
    const bob = await ask(key, "bob");
    expect(bob.status).toBe(200);
    expect(policy(bob)).toEqual({ user: { q: 3, w: 60 }, tenant: { q: 5, w: 60 }, global: GLOBAL });
    // Bob's one message leaves at 70 s; the tenant's oldest (alice's first) at 60 s.
    expect(limits(bob)).toEqual({ user: { r: 2, t: 60 }, tenant: { r: 2, t: 50 } });
    // The legacy fields keep saying the most constrained level (a tie goes to the user).
    expect(bob.headers.get("ratelimit-limit")).toBe("3");
    expect(bob.headers.get("ratelimit-remaining")).toBe("2");
    expect(bob.headers.get("ratelimit-reset")).toBe("60");

    await at(20_000);
    const alice = await ask(key, "alice");
    expect(limits(alice)).toEqual({ user: { r: 0, t: 40 }, tenant: { r: 1, t: 40 } });
    expect(alice.headers.get("ratelimit-remaining")).toBe("0");
  });

  it("/v1/chat/completions: a 429 names the refusing level with nothing left until Retry-After", async () => {
    const { key, at } = await tenant();
    for (let i = 0; i < 3; i++) expect((await ask(key, "alice")).status).toBe(200);
    await at(15_000);
    const refused = await ask(key, "alice");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("45");
    expect(policy(refused)).toEqual({ user: { q: 3, w: 60 }, tenant: { q: 5, w: 60 }, global: GLOBAL });
    // A refusal consumes nothing: the tenant still has 2 of 5.
    expect(limits(refused)).toEqual({ user: { r: 0, t: 45 }, tenant: { r: 2, t: 45 } });

    // The tenant level refusing: bob has room, the tenant has none.
    for (let i = 0; i < 2; i++) expect((await ask(key, "bob")).status).toBe(200);
    await at(30_000);
    const tenantRefused = await ask(key, "carol");
    expect(tenantRefused.status).toBe(429);
    expect(tenantRefused.headers.get("retry-after")).toBe("30");
    expect(limits(tenantRefused)).toEqual({ user: { r: 3, t: 0 }, tenant: { r: 0, t: 30 } });
  });

  it("the conversation API carries the same fields, admitted and refused", async () => {
    const { key, at } = await tenant({ user_rate_limit_per_minute: 2 });
    const alice = await converse(key, "alice");
    const bob = await converse(key, "bob");
    expect((await alice()).status).toBe(200);
    await at(5_000);
    const second = await alice();
    expect(second.status).toBe(200);
    expect(policy(second)).toEqual({ user: { q: 2, w: 60 }, tenant: { q: 5, w: 60 }, global: GLOBAL });
    expect(limits(second)).toEqual({ user: { r: 0, t: 55 }, tenant: { r: 3, t: 55 } });

    await at(12_000);
    const refused = await alice();
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("48");
    expect(limits(refused)).toEqual({ user: { r: 0, t: 48 }, tenant: { r: 3, t: 48 } });

    const other = await bob();
    expect(other.status).toBe(200);
    expect(limits(other)).toEqual({ user: { r: 1, t: 60 }, tenant: { r: 2, t: 48 } });
  });

  it("a global refusal gives the global level nothing left; otherwise it has a policy only", () => {
    const levels = [
      { level: "user" as const, limit: 3, windowSeconds: 60, remaining: 1, resetSeconds: 20 },
      { level: "tenant" as const, limit: 5, windowSeconds: 60, remaining: 2, resetSeconds: 20 },
      { level: "global" as const, limit: 100, windowSeconds: 60, remaining: null, resetSeconds: null },
    ];
    const h = rateLimitHeaders(rateRefusal("global", 100, 2_500, levels));
    expect(h["Retry-After"]).toBe("3");
    expect(integerParamsByName(h["RateLimit-Policy"] ?? null)).toEqual({
      user: { q: 3, w: 60 },
      tenant: { q: 5, w: 60 },
      global: { q: 100, w: 60 },
    });
    expect(integerParamsByName(h.RateLimit ?? null)).toEqual({
      user: { r: 1, t: 20 },
      tenant: { r: 2, t: 20 },
      global: { r: 0, t: 3 },
    });
  });

  it("a browser's address refusal carries the address policy, and CORS exposes the fields", async () => {
    const origin = "https://shop.example";
    const { id, at } = await tenant({
      allowed_origins: [origin],
      user_rate_limit_per_minute: 100,
      rate_limit_per_minute: 100,
      address_messages_per_minute: 1,
    });
    const pk = (await createKey(id, "publishable")).key;
    const from = { origin, "cf-connecting-ip": `203.0.113.9-${uniqueId("ip")}` };
    const started = await send("POST", "/v1/conversations", pk, {}, from);
    expect(started.status).toBe(201);
    const conv = (await started.json()) as { id: string; visitor_token: string };
    const headers = { ...from, "x-visitor-token": conv.visitor_token };
    const say = () => send("POST", `/v1/conversations/${conv.id}/messages`, pk, { content: "hi" }, headers);
    const first = await say();
    expect(first.status).toBe(200);
    const exposed = (first.headers.get("access-control-expose-headers") ?? "").split(/, */);
    expect(exposed).toEqual(expect.arrayContaining(["RateLimit-Policy", "RateLimit", "Retry-After"]));
    await at(20_000);
    const refused = await say();
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("40");
    expect(policy(refused)).toEqual({ address: { q: 1, w: 60 } });
    expect(limits(refused)).toEqual({ address: { r: 0, t: 40 } });
  });
});
