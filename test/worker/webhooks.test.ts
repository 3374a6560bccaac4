/**
 * Tenant webhooks (issue #14): a tenant-set URL is https on a public host in production (every
 * class of private target is refused, at the API and again before delivery), each webhook signs
 * with its own secret that is shown once and rotatable, and an escalation without an escalation
 * email goes to the tenant's webhook or the platform's. Tests run with ENVIRONMENT=test, which
 * lets the local fake receive webhooks over http; production is exercised by handing the worker
 * the same environment with ENVIRONMENT=production.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RawEnv } from "../../src/env";
import worker from "../../src/index";
import type { AlertNotice, EscalationNotice } from "../../src/notify/messages";
import { webhookTargetProblem } from "../../src/notify/webhook-target";
import { TEST_ADMIN_TOKEN } from "../local-services";
import { chatTenant, escalatedConversation, FAKE } from "./chat/helpers";
import { eventually } from "./eventually";
import { admin, BASE, createKey, createTenant, hmacHex, query, send, sql } from "./helpers";

const HOOK = `${FAKE}/__webhook`;

/** The worker's fetch with the test environment switched to production. */
async function production(method: string, path: string, body?: unknown) {
  return worker.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    { ...env, ENVIRONMENT: "production" },
    createExecutionContext(),
  );
}

/** Runs the worker's queue handler on notices, with env overrides. */
async function consume(bodies: unknown[], overrides: Partial<RawEnv> = {}) {
  const batch = createMessageBatch(
    "chatedge-notify",
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...overrides }, ctx);
  return getQueueResult(batch, ctx);
}

type Call = { raw: string; headers: { signature?: string } };
async function webhookCalls(containing: string): Promise<Call[]> {
  const res = await fetch(`${FAKE}/__requests?key=webhook`);
  return ((await res.json()) as { requests: Call[] }).requests.filter((c) => c.raw.includes(containing));
}

type Outbox = { status: string; channel: string; recipient: string; error: string | null };
function outbox(tenantId: string): Promise<Outbox[]> {
  return query<Outbox>(
    sql`select status, channel, recipient, error from notifications where tenant_id = ${tenantId} order by created_at`,
  );
}

/** Sets the tenant's webhook; answers the secret shown once. */
async function setHook(tenantId: string, url = HOOK): Promise<string> {
  const res = await admin("PUT", `/tenants/${tenantId}/alert-settings`, { webhook_url: url });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { webhook_secret?: string };
  expect(body.webhook_secret).toMatch(/^whsec_[0-9a-f]{64}$/);
  return body.webhook_secret ?? "";
}

function escalation(tenantId: string, to = ""): EscalationNotice {
  return {
    type: "escalation",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "conv_hook",
    userId: "user:bob",
    to,
    reason: "visitor asked for a human",
    at: Date.now(),
    transcript: [{ role: "user", content: "a human please", at: Date.now() }],
  };
}

function alert(tenantId: string, to: string): AlertNotice {
  return {
    type: "alert",
    id: crypto.randomUUID(),
    tenantId,
    channel: "webhook",
    to,
    alertId: crypto.randomUUID(),
    rule: "error_rate",
    metric: "error_rate_pct",
    description: "Error rate above the threshold",
    state: "firing",
    value: 12,
    threshold: 5,
    op: "gt",
    unit: "pct",
    windowHours: 1,
    events: 40,
    firedAt: Date.now(),
    at: Date.now(),
  };
}

describe("webhook targets in production", () => {
  const refused: [string, string][] = [
    ["http://hooks.example.com/x", "plain http"],
    ["https://localhost/x", "localhost"],
    ["https://api.localhost/x", "*.localhost"],
    ["https://printer.local/x", "*.local"],
    ["https://metadata.google.internal/x", "*.internal"],
    ["https://intranet/x", "single-label host"],
    ["https://127.0.0.1/x", "loopback"],
    ["https://127.8.9.10:8443/x", "loopback /8"],
    ["https://2130706433/x", "loopback, decimal"],
    ["https://0x7f000001/x", "loopback, hex"],
    ["https://0x7f.1/x", "loopback, short hex"],
    ["https://017700000001/x", "loopback, octal"],
    ["https://0.0.0.0/x", "this network"],
    ["https://10.1.2.3/x", "RFC1918 10/8"],
    ["https://172.16.0.1/x", "RFC1918 172.16/12"],
    ["https://172.31.255.255/x", "RFC1918 172.16/12 top"],
    ["https://192.168.1.1/x", "RFC1918 192.168/16"],
    ["https://3232235777/x", "RFC1918, decimal"],
    ["https://100.64.0.1/x", "CGNAT"],
    ["https://100.127.255.254/x", "CGNAT top"],
    ["https://169.254.169.254/latest/meta-data", "link-local (cloud metadata)"],
    ["https://224.0.0.1/x", "multicast"],
    ["https://255.255.255.255/x", "broadcast"],
    ["https://[::1]/x", "IPv6 loopback"],
    ["https://[::]/x", "IPv6 unspecified"],
    ["https://[fe80::1]/x", "IPv6 link-local"],
    ["https://[fd12:3456::1]/x", "IPv6 ULA"],
    ["https://[fc00::1]/x", "IPv6 ULA fc"],
    ["https://[ff02::1]/x", "IPv6 multicast"],
    ["https://[::ffff:127.0.0.1]/x", "IPv4-mapped loopback"],
    ["https://[::ffff:a9fe:a9fe]/x", "IPv4-mapped link-local"],
    ["https://[64:ff9b::10.0.0.1]/x", "NAT64 of a private address"],
    ["https://[2002:c0a8:101::1]/x", "6to4 of a private address"],
    ["https://[2001:db8::1]/x", "IPv6 documentation"],
    ["ftp://hooks.example.com/x", "not http(s)"],
    ["javascript:alert(1)", "not a URL to POST to"],
  ];

  it.each(refused)("refuses %s (%s)", (url) => {
    expect(webhookTargetProblem(url, true)).not.toBeNull();
  });

  it("accepts https on public hosts and addresses", () => {
    for (const url of [
      "https://hooks.slack.com/services/T0/B0/abc",
      "https://example.com:8443/hook?x=1",
      "https://8.8.8.8/hook",
      "https://172.32.0.1/hook",
      "https://100.128.0.1/hook",
      "https://[2606:4700:4700::1111]/hook",
      "https://[::ffff:8.8.8.8]/hook",
    ]) {
      expect(webhookTargetProblem(url, true), url).toBeNull();
    }
  });

  it("outside production only the scheme is checked, so local fakes receive webhooks", () => {
    expect(webhookTargetProblem("http://127.0.0.1:9999/__webhook", false)).toBeNull();
    expect(webhookTargetProblem("ftp://127.0.0.1/x", false)).not.toBeNull();
  });

  it("the alert-settings API refuses every class with 400 naming webhook_url, and stores nothing", async () => {
    const t = (await createTenant()).tenant_id;
    for (const [url, what] of refused) {
      const res = await production("PUT", `/admin/tenants/${t}/alert-settings`, { webhook_url: url });
      expect(res.status, what).toBe(400);
      const e = (await res.json()) as { error: { code: string; details: { path: string }[] } };
      expect(e.error.code).toBe("VALIDATION_FAILED");
      expect(e.error.details.map((d) => d.path)).toContain("webhook_url");
    }
    const rows = await query(sql`select * from alert_settings where tenant_id = ${t}`);
    expect(rows).toEqual([]);
    const ok = await production("PUT", `/admin/tenants/${t}/alert-settings`, {
      webhook_url: "https://hooks.example.com/ok",
    });
    expect(ok.status).toBe(200);
  });

  it("the tenant's own secret key is refused the same way", async () => {
    const t = (await createTenant()).tenant_id;
    const { key } = await createKey(t, "secret");
    const raw = { ...env, ENVIRONMENT: "production" };
    const res = await worker.fetch(
      new Request(`${BASE}/v1/alert-settings`, {
        method: "PUT",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ webhook_url: "https://169.254.169.254/latest/meta-data" }),
      }),
      raw,
      createExecutionContext(),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("webhook_url");
  });

  it("a private webhook stored earlier is not POSTed to in production", async () => {
    const { id } = await chatTenant();
    await setHook(id); // http://127.0.0.1:<port>: fine in test, refused in production
    const n = escalation(id);
    const result = await consume([n], { ENVIRONMENT: "production", EMAIL_FROM: undefined });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(await webhookCalls(n.id)).toEqual([]);
    expect((await outbox(id))[0]).toMatchObject({
      status: "skipped",
      channel: "none",
      error: "webhook_url must be an https URL (plain http is refused)",
    });
  });
});

describe("webhook signing secrets", () => {
  it("are shown once when the webhook is set, never in a GET, and kept while the URL stays", async () => {
    const t = (await createTenant()).tenant_id;
    const secret = await setHook(t);
    const got = await admin("GET", `/tenants/${t}/alert-settings`);
    const text = await got.text();
    expect(text).not.toContain(secret);
    expect(JSON.parse(text)).not.toHaveProperty("webhook_secret");
    // A PUT that leaves the webhook alone (or repeats it) keeps the secret and does not show it.
    for (const body of [{ rules: { csat: { threshold: 3 } } }, { webhook_url: HOOK }]) {
      const again = await admin("PUT", `/tenants/${t}/alert-settings`, body);
      expect(await again.json()).not.toHaveProperty("webhook_secret");
    }
    const [row] = await query<{ webhook_secret: string }>(
      sql`select webhook_secret from alert_settings where tenant_id = ${t}`,
    );
    expect(row?.webhook_secret).toBe(secret);
    // The audit log records the change, not the secret.
    const audit = await query<{ data: unknown }>(sql`select data from audit_log where tenant_id = ${t}`);
    expect(JSON.stringify(audit)).not.toContain(secret);
  });

  it("differ per tenant, change with the URL and go with it", async () => {
    const a = (await createTenant()).tenant_id;
    const b = (await createTenant()).tenant_id;
    const sa = await setHook(a);
    const sb = await setHook(b);
    expect(sa).not.toBe(sb);
    const moved = await setHook(a, `${HOOK}?moved=1`);
    expect(moved).not.toBe(sa);
    await admin("PUT", `/tenants/${a}/alert-settings`, { webhook_url: null });
    const [row] = await query<{ webhook_secret: string | null }>(
      sql`select webhook_secret from alert_settings where tenant_id = ${a}`,
    );
    expect(row?.webhook_secret).toBeNull();
  });

  it("rotate: the tenant's secret key gets a new secret once, with no-store; the old one stops signing", async () => {
    const { id, key } = await chatTenant();
    const old = await setHook(id);
    const res = await send("POST", "/v1/alert-settings/webhook-secret", key);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { tenant_id: string; webhook_url: string; webhook_secret: string };
    expect(body).toMatchObject({ tenant_id: id, webhook_url: HOOK });
    expect(body.webhook_secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(body.webhook_secret).not.toBe(old);
    const n = alert(id, HOOK);
    await consume([n], { EMAIL_FROM: undefined });
    const [call] = await webhookCalls(n.id);
    expect(call?.headers.signature).toBe(`sha256=${await hmacHex(body.webhook_secret, call?.raw ?? "")}`);
    expect(call?.headers.signature).not.toBe(`sha256=${await hmacHex(old, call?.raw ?? "")}`);
    const audit = await query<{ action: string }>(
      sql`select action from audit_log where tenant_id = ${id} and action = 'alert_settings.rotate_webhook_secret'`,
    );
    expect(audit).toHaveLength(1);
  });

  it("rotate: the admin may; without a webhook it is 409; a publishable key and another tenant may not", async () => {
    const t = (await createTenant()).tenant_id;
    const none = await admin("POST", `/tenants/${t}/alert-settings/webhook-secret`);
    expect(none.status).toBe(409);
    await setHook(t);
    const ok = await admin("POST", `/tenants/${t}/alert-settings/webhook-secret`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    const pk = (await createKey(t, "publishable")).key;
    const byPk = await send("POST", "/v1/alert-settings/webhook-secret", pk, undefined, {
      origin: "https://shop.example",
      "x-visitor-id": "v-1",
    });
    expect([401, 403]).toContain(byPk.status);
    // Another tenant's key rotates its own (absent) webhook, never t's.
    const other = await chatTenant();
    const byOther = await send("POST", "/v1/alert-settings/webhook-secret", other.key);
    expect(byOther.status).toBe(409);
    const after = await query<{ webhook_secret: string }>(
      sql`select webhook_secret from alert_settings where tenant_id = ${t}`,
    );
    expect(after[0]?.webhook_secret).toBe(((await ok.json()) as { webhook_secret: string }).webhook_secret);
  });

  it("a tenant's alert is signed with its webhook's secret, not the platform's", async () => {
    const { id } = await chatTenant();
    const secret = await setHook(id);
    const platform = "platform-secret-0123456789";
    const n = alert(id, HOOK);
    const result = await consume([n], {
      NOTIFY_WEBHOOK_SECRET: platform,
      NOTIFY_WEBHOOK_URL: `${HOOK}?platform=1`,
    });
    expect(result.explicitAcks).toEqual(["m0"]);
    const [call] = await webhookCalls(n.id);
    expect(call?.headers.signature).toBe(`sha256=${await hmacHex(secret, call?.raw ?? "")}`);
    expect(call?.headers.signature).not.toBe(`sha256=${await hmacHex(platform, call?.raw ?? "")}`);
  });

  it("an alert queued for a webhook the tenant has since changed goes nowhere", async () => {
    const { id } = await chatTenant();
    await setHook(id, `${HOOK}?v=2`);
    const n = alert(id, `${HOOK}?v=1`);
    await consume([n], { NOTIFY_WEBHOOK_URL: undefined });
    expect(await webhookCalls(n.id)).toEqual([]);
    expect((await outbox(id))[0]).toMatchObject({ status: "skipped" });
  });
});

describe("escalation without an escalation email", () => {
  it("goes to the tenant's webhook, signed with its secret (end to end)", async () => {
    const { id, key } = await chatTenant({ escalation_email: "" });
    const secret = await setHook(id);
    const convId = await escalatedConversation(key);
    const rows = await eventually(async () => {
      const rows = await outbox(id);
      expect(rows).not.toHaveLength(0);
      return rows;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: "sent", channel: "webhook", recipient: new URL(HOOK).origin });
    const [call] = await webhookCalls(convId);
    expect(JSON.parse(call?.raw ?? "{}")).toMatchObject({ kind: "escalation", tenant_id: id, to: "" });
    expect(call?.headers.signature).toBe(`sha256=${await hmacHex(secret, call?.raw ?? "")}`);
  });

  it("goes to the platform's webhook when the tenant has none, signed with the platform secret", async () => {
    const { id } = await chatTenant({ escalation_email: "" });
    const platform = "platform-secret-0123456789";
    const n = escalation(id);
    await consume([n], { NOTIFY_WEBHOOK_URL: HOOK, NOTIFY_WEBHOOK_SECRET: platform });
    const [call] = await webhookCalls(n.id);
    expect(call?.headers.signature).toBe(`sha256=${await hmacHex(platform, call?.raw ?? "")}`);
    expect((await outbox(id))[0]).toMatchObject({ status: "sent", channel: "webhook" });
  });

  it("is recorded as skipped when nothing can receive it", async () => {
    const { id } = await chatTenant({ escalation_email: "" });
    const n = escalation(id);
    const result = await consume([n], { NOTIFY_WEBHOOK_URL: undefined });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect((await outbox(id))[0]).toMatchObject({ status: "skipped", channel: "none" });
  });

  it("an escalation email still goes by email first", async () => {
    const { id } = await chatTenant({ escalation_email: "desk@shop.example" });
    await setHook(id);
    const n = escalation(id, "desk@shop.example");
    await consume([n]);
    expect(await webhookCalls(n.id)).toEqual([]);
    expect((await outbox(id))[0]).toMatchObject({ status: "sent", channel: "email" });
  });
});
