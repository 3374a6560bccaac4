/**
 * Verified users (issue #14 item 4): the tenant's server signs a logged-in user's id with the
 * tenant's identity secret (`user_hash`), the widget passes it with `user_id`, and the browser is
 * then `user:<user_id>`, the same end user on every device and the one servers name with `user`.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StartedConversation } from "../../../src/api-types";
import { issueVisitorToken } from "../../../src/chat/visitor-token";
import { admin, createKey, envelope, hmacHex, send } from "../helpers";
import { chatTenant } from "./helpers";

const ORIGIN = "https://app.example";

/** A tenant with a secret key, a publishable key and an identity secret. */
async function identityTenant() {
  const t = await chatTenant({ allowed_origins: [ORIGIN] });
  const pk = (await createKey(t.id, "publishable")).key;
  const res = await send("POST", "/v1/identity-secret", t.key);
  expect(res.status).toBe(200);
  const { identity_secret: secret } = (await res.json()) as { identity_secret: string };
  return { ...t, pk, secret };
}

const browser = (token?: string) => ({ origin: ORIGIN, ...(token ? { "x-visitor-token": token } : {}) });

async function start(pk: string, body: Record<string, unknown>, token?: string) {
  const res = await send("POST", "/v1/conversations", pk, body, browser(token));
  expect(res.status, await res.clone().text()).toBe(201);
  const c = (await res.json()) as StartedConversation;
  if (!c.visitor_token) throw new Error("no visitor token");
  return { id: c.id, token: c.visitor_token };
}

const read = (pk: string, id: string, token: string) =>
  send("GET", `/v1/conversations/${id}`, pk, undefined, browser(token));

/** The JSON payload of a visitor token. */
const payloadOf = (token: string) =>
  JSON.parse(atob((token.split(".")[1] ?? "").replaceAll("-", "+").replaceAll("_", "/"))) as Record<
    string,
    unknown
  >;

const b64url = (text: string) => btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

describe("identity secret", () => {
  it("is shown once by its rotation, never by a GET, and audited without the secret", async () => {
    const t = await chatTenant({ allowed_origins: [ORIGIN] });
    const pk = (await createKey(t.id, "publishable")).key;
    const first = await send("POST", "/v1/identity-secret", t.key);
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-store");
    const one = (await first.json()) as { tenant_id: string; identity_secret: string };
    expect(one).toEqual({ tenant_id: t.id, identity_secret: expect.stringMatching(/^ids_[A-Za-z0-9]{43}$/) });
    const second = await admin("POST", `/tenants/${t.id}/identity-secret`);
    expect(second.status).toBe(200);
    expect(second.headers.get("cache-control")).toBe("no-store");
    const two = (await second.json()) as { identity_secret: string };
    expect(two.identity_secret).not.toBe(one.identity_secret);

    const gets = [
      await admin("GET", `/tenants/${t.id}`),
      await admin("GET", "/tenants"),
      await admin("GET", `/tenants/${t.id}/audit`),
      await send("GET", "/v1/config", pk, undefined, browser()),
    ];
    for (const res of gets) {
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(one.identity_secret);
      expect(text).not.toContain(two.identity_secret);
    }
    const audit = (await (await admin("GET", `/tenants/${t.id}/audit`)).json()) as {
      entries: { action: string; actor: string; data: unknown }[];
    };
    const rotations = audit.entries.filter((e) => e.action === "tenant.rotate_identity_secret");
    expect(rotations.map((e) => e.data)).toEqual([{}, {}]);
    expect(rotations.map((e) => e.actor).sort()).toEqual(["admin", expect.stringMatching(/^key:key_/)]);

    // A browser's key cannot rotate it; only the latest secret verifies.
    const refused = await send("POST", "/v1/identity-secret", pk, undefined, browser());
    expect(refused.status).toBe(403);
    const stale = await send(
      "POST",
      "/v1/conversations",
      pk,
      { user_id: "u-1", user_hash: await hmacHex(one.identity_secret, "u-1") },
      browser(),
    );
    expect(stale.status).toBe(401);
    await start(pk, { user_id: "u-1", user_hash: await hmacHex(two.identity_secret, "u-1") });
  });
});

describe("verified users", () => {
  it("follow the user across devices; anonymous visitors do not see their conversations", async () => {
    const { key, pk, secret } = await identityTenant();
    const claim = { user_id: "customer-42", user_hash: await hmacHex(secret, "customer-42") };
    const deviceA = await start(pk, claim);
    expect(payloadOf(deviceA.token).u).toBe("customer-42");
    // The hash in upper-case hex is the same hash.
    const deviceB = await start(pk, { ...claim, user_hash: claim.user_hash.toUpperCase() });
    expect(payloadOf(deviceB.token).u).toBe("customer-42");
    expect(deviceB.token).not.toBe(deviceA.token);
    // Device B, with its own token, reads what device A started, and the other way round.
    const onB = await read(pk, deviceA.id, deviceB.token);
    expect(onB.status).toBe(200);
    expect(onB.headers.get("cache-control")).toBe("no-store");
    expect((await read(pk, deviceB.id, deviceA.token)).status).toBe(200);
    const said = await send(
      "POST",
      `/v1/conversations/${deviceA.id}/messages`,
      pk,
      { content: "hello from device B" },
      browser(deviceB.token),
    );
    expect(said.status).toBe(200);
    const t = (await (await read(pk, deviceA.id, deviceA.token)).json()) as {
      messages: { content: string }[];
    };
    expect(t.messages.map((m) => m.content)).toContain("hello from device B");

    // The same end user a server names with `user`.
    const byServer = (await (
      await send("POST", "/v1/conversations", key, { user: "customer-42" })
    ).json()) as {
      id: string;
    };
    expect((await read(pk, byServer.id, deviceB.token)).status).toBe(200);
    const otherUser = await send("POST", "/v1/conversations", key, { user: "customer-43" });
    expect((await read(pk, ((await otherUser.json()) as { id: string }).id, deviceB.token)).status).toBe(404);

    // An anonymous visitor, and another verified user, see none of it.
    const anonymous = await start(pk, {});
    expect((await read(pk, deviceA.id, anonymous.token)).status).toBe(404);
    const other = await start(pk, {
      user_id: "customer-43",
      user_hash: await hmacHex(secret, "customer-43"),
    });
    expect((await read(pk, deviceA.id, other.token)).status).toBe(404);

    // Starting again without the claim is the same browser, anonymous: a claim is not renewed unchecked.
    const later = await start(pk, {}, deviceA.token);
    expect(payloadOf(later.token)).not.toHaveProperty("u");
    expect(payloadOf(later.token).v).toBe(payloadOf(deviceA.token).v);
    expect((await read(pk, deviceA.id, later.token)).status).toBe(404);
  });

  it("a rotated identity secret leaves the users it verified anonymous visitors", async () => {
    const { key, pk, secret } = await identityTenant();
    const claim = { user_id: "customer-42", user_hash: await hmacHex(secret, "customer-42") };
    const mine = await start(pk, claim);
    expect((await read(pk, mine.id, mine.token)).status).toBe(200);
    // The tenant rotates the secret (it leaked, say): tokens it verified no longer name the user.
    const rotated = await send("POST", "/v1/identity-secret", key);
    const { identity_secret: fresh } = (await rotated.json()) as { identity_secret: string };
    expect((await read(pk, mine.id, mine.token)).status).toBe(404);
    // The old secret's hash verifies nobody now; the new one's does, and the user is back.
    const stale = await send("POST", "/v1/conversations", pk, claim, browser());
    expect(stale.status).toBe(401);
    const again = await start(pk, { user_id: "customer-42", user_hash: await hmacHex(fresh, "customer-42") });
    expect((await read(pk, mine.id, again.token)).status).toBe(200);
  });

  it("refuses a wrong hash and creates nothing", async () => {
    const { pk, secret } = await identityTenant();
    const bodies = [
      { user_id: "customer-42", user_hash: await hmacHex(secret, "customer-43") },
      { user_id: "customer-42", user_hash: await hmacHex(`${secret}x`, "customer-42") },
      { user_id: "customer-42", user_hash: "0".repeat(64) },
    ];
    for (const body of bodies) {
      const res = await send("POST", "/v1/conversations", pk, body, browser());
      expect(res.status).toBe(401);
      // The answer is the error alone: no conversation, no visitor token.
      expect(Object.keys(await res.clone().json())).toEqual(["error"]);
      const e = await envelope(res);
      expect(e).toMatchObject({ code: "UNAUTHORIZED", message: "user_hash does not match user_id" });
    }
    // Nor does a valid visitor token make a wrong hash pass.
    const anonymous = await start(pk, {});
    const res = await send("POST", "/v1/conversations", pk, bodies[0], browser(anonymous.token));
    expect(res.status).toBe(401);
  });

  it("answers 400 for claims that cannot be checked, and leaves secret keys as they were", async () => {
    const t = await chatTenant({ allowed_origins: [ORIGIN] });
    const pk = (await createKey(t.id, "publishable")).key;
    const hash = "a".repeat(64);
    const cases: [string, Record<string, unknown>, string][] = [
      [pk, { user_id: "u-1", user_hash: hash }, "the tenant has no identity secret"],
      [pk, { user_id: "u-1" }, "user_id and user_hash go together"],
      [pk, { user_hash: hash }, "user_id and user_hash go together"],
      [pk, { user_id: "u-1", user_hash: "xyz" }, "not a hex HMAC-SHA256"],
      [pk, { user_id: "", user_hash: hash }, "user_id"],
      [pk, { user_id: "u".repeat(257), user_hash: hash }, "user_id"],
      [t.key, { user_id: "u-1", user_hash: hash }, "a secret key names the end user with user"],
    ];
    for (const [key, body, message] of cases) {
      const res = await send("POST", "/v1/conversations", key, body, browser());
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect((await envelope(res)).message).toContain(message);
    }
    // Servers go on naming the end user themselves.
    const byServer = await send("POST", "/v1/conversations", t.key, { user: "u-1" });
    expect(byServer.status).toBe(201);
    expect(((await byServer.json()) as StartedConversation).visitor_token).toBeUndefined();
  });

  it("refuses a token that claims a user without the platform's MAC", async () => {
    const { pk, secret } = await identityTenant();
    const mine = await start(pk, {
      user_id: "customer-42",
      user_hash: await hmacHex(secret, "customer-42"),
    });
    const anonymous = await start(pk, {});
    const [, , mac] = anonymous.token.split(".");
    const claimed = { ...payloadOf(anonymous.token), u: "customer-42" };
    const forged = `vt1.${b64url(JSON.stringify(claimed))}.${mac}`;
    const res = await read(pk, mine.id, forged);
    expect(res.status).toBe(401);
    // The same with the MAC of the real user's token.
    const [, , theirMac] = mine.token.split(".");
    expect((await read(pk, mine.id, `vt1.${b64url(JSON.stringify(claimed))}.${theirMac}`)).status).toBe(401);
    // Parts that are not base64url (a length one past a multiple of four) name no visitor either.
    for (const junk of ["vt1.A.AAAA", `vt1.${b64url(JSON.stringify(claimed))}.A`, "vt1.AAAAA.AAAA"]) {
      const res = await read(pk, mine.id, junk);
      expect(res.status, junk).toBe(401);
      expect(await envelope(res)).toMatchObject({ code: "UNAUTHORIZED" });
    }
  });

  it("keeps tokens without a user working: anonymous visitors as before", async () => {
    const { pk } = await identityTenant();
    const anonymous = await start(pk, {});
    expect(Object.keys(payloadOf(anonymous.token)).sort()).toEqual(["e", "t", "v"]);
    expect((await read(pk, anonymous.id, anonymous.token)).status).toBe(200);
    // A token as issued before user ids existed (the same format), carried into a new start.
    const tenantId = payloadOf(anonymous.token).t as string;
    const { token } = await issueVisitorToken(env, tenantId, "old-visitor");
    const again = await start(pk, {}, token);
    expect(payloadOf(again.token).v).toBe("old-visitor");
    expect((await read(pk, again.id, token)).status).toBe(200);
  });
});
