/**
 * The optional bot check (issue #14 item 7): a tenant with a Turnstile secret key makes browsers
 * (publishable keys) pass Turnstile before their first conversation; the worker verifies the token
 * with siteverify, here local/turnstile.ts speaking the real API with Cloudflare's test keys.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { PublicConfig, StartedConversation } from "../../../src/api-types";
import type { RawEnv } from "../../../src/env";
import worker from "../../../src/index";
import { admin, BASE, createKey, envelope, send, tampered, uniqueId } from "../helpers";
import { chatTenant } from "./helpers";

// Cloudflare's documented test keys (https://developers.cloudflare.com/turnstile/troubleshooting/testing/).
const SITE_KEY = "1x00000000000000000000AA";
const PASSES = "1x0000000000000000000000000000000AA";
const FAILS = "2x0000000000000000000000000000000AA";
const SPENT = "3x0000000000000000000000000000000AA";
const DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";
const ORIGIN = "https://shop.example";

interface Seen {
  secret?: string;
  response?: string;
  remoteip?: string;
  contentType: string;
}

/** The siteverify requests local/turnstile.ts saw for this secret, oldest first. */
async function verifications(secret: string): Promise<Seen[]> {
  const res = await fetch(`${env.TURNSTILE_URL}/__requests`);
  return ((await res.json()) as { requests: Seen[] }).requests.filter((r) => r.secret === secret);
}

async function botCheckedTenant(secret = PASSES, overrides: Record<string, unknown> = {}) {
  const t = await chatTenant({
    allowed_origins: [ORIGIN],
    turnstile_site_key: SITE_KEY,
    turnstile_secret_key: secret,
    ...overrides,
  });
  return { ...t, pk: (await createKey(t.id, "publishable")).key };
}

const browser = (ip: string, visitorToken?: string) => ({
  origin: ORIGIN,
  "cf-connecting-ip": ip,
  ...(visitorToken ? { "x-visitor-token": visitorToken } : {}),
});
const address = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}`;

const start = (pk: string, body: Record<string, unknown>, headers: Record<string, string>) =>
  send("POST", "/v1/conversations", pk, body, headers);

describe("Turnstile bot check on conversation starts", () => {
  it("passes a browser whose token siteverify accepts, sending the secret, token and address", async () => {
    const { pk } = await botCheckedTenant();
    const before = (await verifications(PASSES)).length;
    const ip = address();
    const res = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser(ip));
    expect(res.status).toBe(201);
    const started = (await res.json()) as StartedConversation;
    expect(started.visitor_token).toMatch(/^vt1\./);
    const seen = (await verifications(PASSES)).slice(before);
    expect(seen).toEqual([
      {
        secret: PASSES,
        response: DUMMY_TOKEN,
        remoteip: ip,
        contentType: "application/x-www-form-urlencoded;charset=UTF-8",
      },
    ]);
  });

  it("refuses a token siteverify rejects with 403 and its error codes", async () => {
    const { pk } = await botCheckedTenant(FAILS);
    const res = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser(address()));
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
    expect(body.error).toMatchObject({
      code: "FORBIDDEN",
      message: "bot check failed",
      details: { error_codes: ["invalid-input-response"] },
    });
    expect(res.headers.get("x-visitor-token")).toBeNull();
  });

  it("a script sending junk tokens from one address costs siteverify its hourly starts, then nothing", async () => {
    const { pk } = await botCheckedTenant(FAILS, { address_conversations_per_hour: 3 });
    const ip = `198.51.100.9-${uniqueId("ip")}`;
    const before = (await verifications(FAILS)).length;
    for (let i = 0; i < 3; i++)
      expect((await start(pk, { turnstile_token: `junk-${i}` }, browser(ip))).status).toBe(403);
    expect((await verifications(FAILS)).length - before).toBe(3);
    // The address's window comes first: past it, no siteverify call is made.
    for (let i = 0; i < 5; i++)
      expect((await start(pk, { turnstile_token: `junk-more-${i}` }, browser(ip))).status).toBe(429);
    expect((await verifications(FAILS)).length - before).toBe(3);
  });

  it("starts refused by the bot check take none of the site's new conversations a minute", async () => {
    const { pk } = await botCheckedTenant(PASSES, { conversations_per_minute: 2 });
    // A script on many addresses, without a token or with one siteverify refuses.
    for (let i = 0; i < 3; i++) {
      expect((await start(pk, {}, browser(`203.0.113.${i + 1}`))).status).toBe(403);
      expect(
        (await start(pk, { turnstile_token: "x".repeat(3000) }, browser(`203.0.113.${i + 101}`))).status,
      ).toBe(403);
    }
    // Real visitors still get the site's two.
    for (let i = 0; i < 2; i++)
      expect((await start(pk, { turnstile_token: DUMMY_TOKEN }, browser(`192.0.2.${i + 1}`))).status).toBe(
        201,
      );
    const over = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser("192.0.2.99"));
    expect(over.status).toBe(429);
    expect((await envelope(over)).details).toMatchObject({ level: "tenant", limit: 2 });
    // Known full in this isolate: the next is refused before its token is spent on siteverify.
    const before = (await verifications(PASSES)).length;
    const next = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser("192.0.2.98"));
    expect(next.status).toBe(429);
    expect((await envelope(next)).details).toMatchObject({ level: "tenant" });
    expect((await verifications(PASSES)).length).toBe(before);
  });

  it("refuses a spent token (timeout-or-duplicate)", async () => {
    const { pk } = await botCheckedTenant(SPENT);
    const res = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser(address()));
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { details: unknown } };
    expect(body.error.details).toEqual({ error_codes: ["timeout-or-duplicate"] });
  });

  it("refuses a browser without a token, without asking siteverify", async () => {
    const { pk } = await botCheckedTenant();
    const before = (await verifications(PASSES)).length;
    const res = await start(pk, {}, browser(address()));
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
    expect(body.error).toMatchObject({
      code: "FORBIDDEN",
      message: "bot check failed",
      details: { error_codes: ["missing-input-response"] },
    });
    expect((await verifications(PASSES)).length).toBe(before);
  });

  it("answers 503 when siteverify does not answer in time", async () => {
    const { pk } = await botCheckedTenant();
    const overrides: Partial<RawEnv> = {
      TURNSTILE_SITEVERIFY_URL: `http://127.0.0.1:${env.HANG_PORT}/turnstile/v0/siteverify`,
      TURNSTILE_TIMEOUT_MS: "300",
    };
    const ctx = createExecutionContext();
    const started = Date.now();
    const res = await worker.fetch(
      new Request(`${BASE}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${pk}`, "content-type": "application/json", ...browser(address()) },
        body: JSON.stringify({ turnstile_token: DUMMY_TOKEN }),
      }),
      { ...env, ...overrides },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await envelope(res)).code).toBe("UNAVAILABLE");
    expect(res.headers.get("retry-after")).toBe("5");
  });

  it("answers 503 when siteverify is unreachable", async () => {
    const { pk } = await botCheckedTenant();
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}/v1/conversations`, {
        method: "POST",
        headers: { authorization: `Bearer ${pk}`, "content-type": "application/json", ...browser(address()) },
        body: JSON.stringify({ turnstile_token: DUMMY_TOKEN }),
      }),
      { ...env, TURNSTILE_SITEVERIFY_URL: "http://127.0.0.1:9/turnstile/v0/siteverify" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
  });

  it("does not ask a visitor holding a valid visitor token again", async () => {
    const { pk } = await botCheckedTenant();
    const ip = address();
    const first = await start(pk, { turnstile_token: DUMMY_TOKEN }, browser(ip));
    expect(first.status).toBe(201);
    const token = ((await first.json()) as StartedConversation).visitor_token ?? "";
    const before = (await verifications(PASSES)).length;
    const again = await start(pk, {}, browser(ip, token));
    expect(again.status).toBe(201);
    expect((await verifications(PASSES)).length).toBe(before);
    // A forged or foreign visitor token is no proof: the check is asked for again.
    const forged = await start(pk, {}, browser(ip, tampered(token)));
    expect(forged.status).toBe(403);
  });

  it("never asks the tenant's servers (secret keys)", async () => {
    const { key } = await botCheckedTenant(FAILS);
    const before = (await verifications(FAILS)).length;
    const res = await start(key, {}, { "cf-connecting-ip": address() });
    expect(res.status).toBe(201);
    expect((await verifications(FAILS)).length).toBe(before);
  });

  it("tenants without the check start conversations as before", async () => {
    const t = await chatTenant({ allowed_origins: [ORIGIN] });
    const pk = (await createKey(t.id, "publishable")).key;
    expect((await start(pk, {}, browser(address()))).status).toBe(201);
    const config = (await (
      await send("GET", "/v1/config", pk, undefined, { origin: ORIGIN })
    ).json()) as PublicConfig;
    expect(config.turnstile).toBeNull();
  });

  it("publishes the site key and script in /v1/config, never the secret", async () => {
    const { pk, key } = await botCheckedTenant();
    for (const k of [pk, key]) {
      const res = await send("GET", "/v1/config", k, undefined, { origin: ORIGIN });
      const text = await res.text();
      expect(text).not.toContain(PASSES);
      expect((JSON.parse(text) as PublicConfig).turnstile).toEqual({
        site_key: SITE_KEY,
        script_url: "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit",
      });
    }
  });
});

describe("Turnstile settings", () => {
  it("takes the secret key on create and patch but never returns it", async () => {
    const id = uniqueId("ts");
    const created = await admin("POST", "/tenants", {
      tenant_id: id,
      name: "Bot checked",
      system_prompt: "You help.",
      turnstile_site_key: SITE_KEY,
      turnstile_secret_key: PASSES,
    });
    expect(created.status).toBe(201);
    const createdText = await created.text();
    expect(createdText).not.toContain(PASSES);
    expect(JSON.parse(createdText)).toMatchObject({ turnstile_site_key: SITE_KEY, turnstile_enabled: true });
    expect(JSON.parse(createdText)).not.toHaveProperty("turnstile_secret_key");

    const patched = await admin("PATCH", `/tenants/${id}`, { turnstile_secret_key: FAILS });
    expect(patched.status).toBe(200);
    expect(await patched.text()).not.toContain(FAILS);

    for (const path of [`/tenants/${id}`, "/tenants?limit=200", `/tenants/${id}/audit`]) {
      const text = await (await admin("GET", path)).text();
      expect(text, path).not.toContain(PASSES);
      expect(text, path).not.toContain(FAILS);
    }
    const one = (await (await admin("GET", `/tenants/${id}`)).json()) as Record<string, unknown>;
    expect(one.turnstile_enabled).toBe(true);
    expect(one).not.toHaveProperty("turnstile_secret_key");
  });

  it("patching the secret key to null turns the check off", async () => {
    const { id, pk } = await botCheckedTenant(FAILS);
    const ip = address();
    expect((await start(pk, {}, browser(ip))).status).toBe(403);
    const res = await admin("PATCH", `/tenants/${id}`, { turnstile_secret_key: null });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { turnstile_enabled: boolean }).turnstile_enabled).toBe(false);
    expect((await start(pk, {}, browser(ip))).status).toBe(201);
    const config = (await (
      await send("GET", "/v1/config", pk, undefined, { origin: ORIGIN })
    ).json()) as PublicConfig;
    expect(config.turnstile).toBeNull();
  });

  it("refuses a secret key without a site key, and keys that are not Turnstile's", async () => {
    const t = await chatTenant();
    const lone = await admin("PATCH", `/tenants/${t.id}`, { turnstile_secret_key: PASSES });
    expect(lone.status).toBe(400);
    expect((await envelope(lone)).message).toContain("turnstile_site_key");
    const unchanged = (await (await admin("GET", `/tenants/${t.id}`)).json()) as Record<string, unknown>;
    expect(unchanged.turnstile_enabled).toBe(false);
    const bad = await admin("PATCH", `/tenants/${t.id}`, { turnstile_site_key: "<script>" });
    expect(bad.status).toBe(400);
  });
});
