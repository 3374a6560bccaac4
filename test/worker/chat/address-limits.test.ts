/**
 * The abuse case of issue #14: one script with a tenant's publishable key, forging an allowed Origin
 * and collecting a fresh visitor token for every conversation, from one address. Per-address windows
 * in the tenant's gate bound it to ADDRESS_CONVERSATIONS_PER_HOUR new conversations and
 * ADDRESS_MESSAGES_PER_MINUTE messages (blocked ones, live tickets, feedback and ends included) and twice that in
 * transcript reads, while another address, and the tenant's servers, are not affected.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import type { StartedConversation } from "../../../src/api-types";
import {
  ADDRESS_CONVERSATIONS_PER_HOUR,
  ADDRESS_MESSAGES_PER_MINUTE,
  ADDRESS_READS_PER_MESSAGE,
} from "../../../src/chat/address-limits";
import { admin, createKey, envelope, send, uniqueId } from "../helpers";
import { chatTenant } from "./helpers";

const ORIGIN = "https://shop.example";
/** A fresh address per test, so no other test's hits count. */
const address = () => `203.0.113.7-${uniqueId("ip")}`;

async function browserTenant(overrides: Record<string, unknown> = {}) {
  // Tenant and per-user limits far above the per-address ones, so only the address binds.
  const t = await chatTenant({
    allowed_origins: [ORIGIN],
    rate_limit_per_minute: 10_000,
    user_rate_limit_per_minute: 10_000,
    ...overrides,
  });
  return { ...t, pk: (await createKey(t.id, "publishable")).key };
}

const from = (ip: string, token?: string) => ({
  origin: ORIGIN,
  "cf-connecting-ip": ip,
  ...(token ? { "x-visitor-token": token } : {}),
});

/** A visitor on a fresh address with one conversation: its headers and the conversation's path. */
async function visitorOn(pk: string) {
  const ip = address();
  const res = await send("POST", "/v1/conversations", pk, {}, from(ip));
  const started = (await res.json()) as StartedConversation;
  return { ip, started, as: from(ip, started.visitor_token), path: `/v1/conversations/${started.id}` };
}

describe("per-address limits on publishable-key traffic", () => {
  it("a script rotating visitor identities from one address gets the hourly number of new conversations", async () => {
    const { pk, key } = await browserTenant();
    const ip = address();
    const tokens = new Set<string>();
    for (let i = 0; i < ADDRESS_CONVERSATIONS_PER_HOUR; i++) {
      const res = await send("POST", "/v1/conversations", pk, {}, from(ip));
      expect(res.status, `start ${i + 1}`).toBe(201);
      tokens.add(((await res.json()) as StartedConversation).visitor_token ?? "");
    }
    expect(tokens.size).toBe(ADDRESS_CONVERSATIONS_PER_HOUR);
    const over = await send("POST", "/v1/conversations", pk, {}, from(ip));
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(3000);
    const err = await envelope(over);
    expect(err.code).toBe("RATE_LIMITED");
    expect(err.message).toContain("new conversations from this address");
    // A known visitor from the same address is refused too: it is the address that is spent.
    const known = [...tokens][0];
    expect((await send("POST", "/v1/conversations", pk, {}, from(ip, known))).status).toBe(429);
    // Another address, and the tenant's own servers, are not affected.
    expect((await send("POST", "/v1/conversations", pk, {}, from(address()))).status).toBe(201);
    expect((await send("POST", "/v1/conversations", key, {}, { "cf-connecting-ip": ip })).status).toBe(201);
  });

  it("counts every message of every visitor from one address, blocked ones, tickets, feedback and ends included", async () => {
    const { pk } = await browserTenant({ blocked_topics: ["crypto"] });
    const ip = address();
    const start = async () =>
      (await (await send("POST", "/v1/conversations", pk, {}, from(ip))).json()) as StartedConversation;
    const [a, b] = [await start(), await start()];
    const as = from(ip, a.visitor_token);
    const bs = from(ip, b.visitor_token);
    let sent = 0;
    // Visitor A: ordinary messages; visitor B: messages on a blocked topic, then feedback.
    for (; sent < 10; sent++) {
      const res = await send(
        "POST",
        `/v1/conversations/${a.id}/messages`,
        pk,
        { content: `hello ${sent}` },
        as,
      );
      expect(res.status).toBe(200);
    }
    for (; sent < ADDRESS_MESSAGES_PER_MINUTE - 3; sent++) {
      const res = await send(
        "POST",
        `/v1/conversations/${b.id}/messages`,
        pk,
        { content: "tell me about crypto" },
        bs,
      );
      expect(res.status).toBe(200);
      expect(((await res.json()) as { blocked: boolean }).blocked).toBe(true);
    }
    // A live ticket (one socket) counts as a message.
    expect((await send("POST", `/v1/conversations/${b.id}/live`, pk, undefined, bs)).status).toBe(200);
    expect((await send("POST", `/v1/conversations/${b.id}/feedback`, pk, { csat: 1 }, bs)).status).toBe(200);
    expect((await send("POST", `/v1/conversations/${b.id}/end`, pk, { resolved: false }, bs)).status).toBe(
      200,
    );
    sent += 3;
    expect(sent).toBe(ADDRESS_MESSAGES_PER_MINUTE);
    const over = await send("POST", `/v1/conversations/${a.id}/messages`, pk, { content: "one more" }, as);
    expect(over.status).toBe(429);
    expect((await envelope(over)).message).toContain("messages from this address");
    const feedback = await send("POST", `/v1/conversations/${a.id}/feedback`, pk, { csat: 5 }, as);
    expect(feedback.status).toBe(429);
    // The refused message was not stored: A's transcript holds its 10 messages and their answers.
    const transcript = await send("GET", `/v1/conversations/${a.id}`, pk, undefined, as);
    expect(((await transcript.json()) as { messages: unknown[] }).messages).toHaveLength(20);
    // The same visitor from another address goes on.
    const elsewhere = from(address(), a.visitor_token);
    expect(
      (await send("POST", `/v1/conversations/${a.id}/messages`, pk, { content: "from my phone" }, elsewhere))
        .status,
    ).toBe(200);
  });

  it("follows the tenant's address settings, and a change takes effect at once", async () => {
    const { pk, id } = await browserTenant({
      address_conversations_per_hour: 2,
      address_messages_per_minute: 3,
    });
    const ip = address();
    const start = () => send("POST", "/v1/conversations", pk, {}, from(ip));
    const first = (await (await start()).json()) as StartedConversation;
    expect((await start()).status).toBe(201);
    const third = await start();
    expect(third.status).toBe(429);
    expect((await envelope(third)).details).toMatchObject({ level: "address", limit: 2 });
    // Starts and messages have windows of their own: three messages fit, the fourth does not.
    const say = (content: string) =>
      send("POST", `/v1/conversations/${first.id}/messages`, pk, { content }, from(ip, first.visitor_token));
    for (let i = 0; i < 3; i++) expect((await say(`hello ${i}`)).status).toBe(200);
    const over = await say("one more");
    expect(over.status).toBe(429);
    expect((await envelope(over)).details).toMatchObject({ level: "address", limit: 3 });
    // Raised by the tenant: the same address goes on at once.
    const patched = await admin("PATCH", `/tenants/${id}`, {
      address_conversations_per_hour: 3,
      address_messages_per_minute: 4,
    });
    expect(patched.status).toBe(200);
    expect((await start()).status).toBe(201);
    expect((await start()).status).toBe(429);
    expect((await say("after the change")).status).toBe(200);
    expect((await say("and no more")).status).toBe(429);
  });

  it("a visitor token shared among many addresses starts as one visitor: the hourly number, in all", async () => {
    const { pk } = await browserTenant({ address_conversations_per_hour: 3 });
    const first = (await (
      await send("POST", "/v1/conversations", pk, {}, from(address()))
    ).json()) as StartedConversation;
    const token = first.visitor_token;
    // The token (which would spare its holder a bot check) from fresh addresses, each under its own
    // limit: the visitor's own starts with it (its first start made it) count on its id.
    for (let i = 0; i < 3; i++)
      expect((await send("POST", "/v1/conversations", pk, {}, from(address(), token))).status).toBe(201);
    const over = await send("POST", "/v1/conversations", pk, {}, from(address(), token));
    expect(over.status).toBe(429);
    const refused = await envelope(over);
    expect(refused.message).toMatch(/^too many new conversations by this visitor; retry in \d+ s$/);
    expect(refused.details).toMatchObject({ level: "visitor", limit: 3 });
    expect(over.headers.get("ratelimit-policy")).toContain("visitor-conversations");
    // Without the token, the same address is a new visitor, under its own limit.
    expect((await send("POST", "/v1/conversations", pk, {}, from(address()))).status).toBe(201);
  });

  it("a script reading its own transcript in a loop gets twice the address's messages a minute", async () => {
    const { pk, key } = await browserTenant({ address_messages_per_minute: 3 });
    const { ip, started, as, path } = await visitorOn(pk);
    expect((await send("POST", `${path}/messages`, pk, { content: "hello" }, as)).status).toBe(200);
    const reads = 3 * ADDRESS_READS_PER_MESSAGE;
    for (let i = 0; i < reads; i++)
      expect((await send("GET", path, pk, undefined, as)).status, `read ${i + 1}`).toBe(200);
    const over = await send("GET", path, pk, undefined, as);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    const err = await envelope(over);
    expect(err.message).toContain("transcript reads from this address");
    expect(err.details).toMatchObject({ level: "address", limit: reads });
    // Reads have a window of their own: the address's messages are not spent by them.
    expect((await send("POST", `${path}/messages`, pk, { content: "still here" }, as)).status).toBe(200);
    // Another address, and the tenant's server, read on.
    expect((await send("GET", path, pk, undefined, from(address(), started.visitor_token))).status).toBe(200);
    expect((await send("GET", path, key, undefined, { "cf-connecting-ip": ip })).status).toBe(200);
  });

  it("an address past its window is refused by the worker, without asking the tenant's gate again", async () => {
    const { pk, id } = await browserTenant({ address_messages_per_minute: 3 });
    const { as, path } = await visitorOn(pk);
    const say = (content: string) => send("POST", `${path}/messages`, pk, { content }, as);
    for (let i = 0; i < 3; i++) expect((await say(`hello ${i}`)).status).toBe(200);
    expect((await say("one more")).status).toBe(429);
    for (let i = 0; i < 6; i++) expect((await send("GET", path, pk, undefined, as)).status).toBe(200);
    expect((await send("GET", path, pk, undefined, as)).status).toBe(429);
    // The gate's minute passes (its clock only): asked, it would take both again. The worker,
    // whose minute has not passed, refuses them itself, with the time left on its own clock.
    const gate = env.TENANT_GATE.getByName(id);
    await runInDurableObject(gate, (g: TenantGate) => g.clock.advance(61_000));
    try {
      const message = await say("and again");
      expect(message.status).toBe(429);
      expect(Number(message.headers.get("retry-after"))).toBeGreaterThan(50);
      expect((await envelope(message)).details).toMatchObject({ level: "address", limit: 3 });
      expect((await send("GET", path, pk, undefined, as)).status).toBe(429);
      // A tenant that raises the limit is asked again at once: the gate, past its minute, takes it.
      expect((await admin("PATCH", `/tenants/${id}`, { address_messages_per_minute: 4 })).status).toBe(200);
      expect((await say("after the change")).status).toBe(200);
      expect((await send("GET", path, pk, undefined, as)).status).toBe(200);
    } finally {
      await runInDurableObject(gate, (g: TenantGate) => g.clock.release());
    }
  });

  it("scripts on many addresses get the tenant's new conversations a minute between them, and servers are not counted", async () => {
    const { pk, key, id } = await browserTenant({
      conversations_per_minute: 3,
      address_conversations_per_hour: 1,
    });
    // One address's second start is refused by its own hour, and takes nothing from the tenant's minute.
    const first = address();
    expect((await send("POST", "/v1/conversations", pk, {}, from(first))).status).toBe(201);
    const spent = await send("POST", "/v1/conversations", pk, {}, from(first));
    expect((await envelope(spent)).details).toMatchObject({ level: "address", limit: 1 });
    for (let i = 0; i < 2; i++)
      expect(
        (await send("POST", "/v1/conversations", pk, {}, from(address()))).status,
        `start ${i + 2}`,
      ).toBe(201);
    // A fourth address, under its own hour: the site's minute is full.
    const over = await send("POST", "/v1/conversations", pk, {}, from(address()));
    expect(over.status).toBe(429);
    const err = await envelope(over);
    expect(err.message).toMatch(/^too many new conversations on this site right now; retry in \d+ s$/);
    expect(err.details).toMatchObject({ level: "tenant", limit: 3 });
    const wait = Number(over.headers.get("retry-after"));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(over.headers.get("ratelimit-policy")).toContain('"tenant-conversations";q=3;w=60');
    // The refused address was not counted in its own hour either: once the minute passes it starts.
    const refusedAddress = address();
    expect((await send("POST", "/v1/conversations", pk, {}, from(refusedAddress))).status).toBe(429);
    // The tenant's servers start conversations whatever the browsers did.
    expect((await send("POST", "/v1/conversations", key, {}, { "cf-connecting-ip": first })).status).toBe(
      201,
    );
    const gate = env.TENANT_GATE.getByName(id);
    await runInDurableObject(gate, (g: TenantGate) => g.clock.advance(61_000));
    try {
      // This isolate remembers the full minute until its own clock passes it: a raised limit asks again.
      expect((await admin("PATCH", `/tenants/${id}`, { conversations_per_minute: 4 })).status).toBe(200);
      expect((await send("POST", "/v1/conversations", pk, {}, from(refusedAddress))).status).toBe(201);
    } finally {
      await runInDurableObject(gate, (g: TenantGate) => g.clock.release());
    }
  });

  it("without its own setting, the tenant's new conversations a minute are its messages a minute", async () => {
    const { pk } = await browserTenant({ rate_limit_per_minute: 2 });
    for (let i = 0; i < 2; i++)
      expect((await send("POST", "/v1/conversations", pk, {}, from(address()))).status).toBe(201);
    const over = await send("POST", "/v1/conversations", pk, {}, from(address()));
    expect(over.status).toBe(429);
    expect((await envelope(over)).details).toMatchObject({ level: "tenant", limit: 2 });
  });

  it("an IPv6 /64 is one address: rotating through its addresses gets no new windows", async () => {
    const { pk } = await browserTenant({ address_conversations_per_hour: 3 });
    const hex = () => Math.floor(Math.random() * 0xffff).toString(16);
    const net = `2001:db8:${hex()}:${hex()}`;
    // Three starts from three addresses of one /64, spelled the ways an address can be.
    for (const ip of [`${net}::1`, `${net}:0:0:0:2`, `${net.toUpperCase()}:ffff:ffff:ffff:ffff`]) {
      expect((await send("POST", "/v1/conversations", pk, {}, from(ip))).status, ip).toBe(201);
    }
    const over = await send("POST", "/v1/conversations", pk, {}, from(`${net}:1234::beef`));
    expect(over.status).toBe(429);
    expect((await envelope(over)).message).toContain("new conversations from this address");
    // The /64 next to it is another subscriber.
    expect((await send("POST", "/v1/conversations", pk, {}, from(`${net}1::1`))).status).toBe(201);
  });
});
