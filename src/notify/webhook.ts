/**
 * Webhook delivery: which URL a notice goes to, the secret that signs it, and the signed POST.
 * A tenant's own webhook (alert settings) is signed with that webhook's own secret, never with
 * the platform's; the platform's NOTIFY_WEBHOOK_URL with NOTIFY_WEBHOOK_SECRET. The signature is
 * `X-Chatedge-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (docs/monitoring.md).
 */
import { inArray } from "drizzle-orm";
import { hmacSha256Hex, toHex } from "../auth/keys.ts";
import type { Db } from "../db/client.ts";
import { alertSettings } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { type Notice, noticeLinks } from "./messages.ts";
import { strictWebhookTargets, webhookTargetProblem } from "./webhook-target.ts";

/** How one delivery went; `recipient` is what the outbox records when it is not the notice's `to`. */
export type Delivery = {
  status: "sent" | "failed" | "skipped";
  channel: "email" | "webhook" | "none";
  error: string | null;
  recipient?: string;
};

/** A tenant's webhook as delivery needs it. */
export interface TenantHook {
  url: string;
  secret: string | null;
}

/** The webhooks of the tenants of a batch, one query. */
export async function tenantHooks(db: Db, tenantIds: string[]): Promise<Map<string, TenantHook>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db
    .select({
      id: alertSettings.tenantId,
      url: alertSettings.webhookUrl,
      secret: alertSettings.webhookSecret,
    })
    .from(alertSettings)
    .where(inArray(alertSettings.tenantId, [...new Set(tenantIds)]));
  return new Map(rows.flatMap((r) => (r.url ? [[r.id, { url: r.url, secret: r.secret }]] : [])));
}

/** Where a notice's webhook goes and what signs it; or why it goes nowhere. */
type Target = { url: string; secret: string | undefined; tenant: boolean } | { skip: string };

/**
 * The webhook of a notice. An alert names its URL; it still goes only to the tenant's current
 * webhook (a URL changed since it was queued gets nothing) or to the platform's. An escalation
 * goes to the tenant's webhook, else the platform's.
 */
export function webhookTarget(env: Env, n: Notice, hook: TenantHook | undefined): Target {
  const platform = env.NOTIFY_WEBHOOK_URL;
  let t: Target;
  if (n.type === "alert") {
    if (hook && hook.url === n.to) t = { url: hook.url, secret: hook.secret ?? undefined, tenant: true };
    else if (platform && platform === n.to)
      t = { url: platform, secret: env.NOTIFY_WEBHOOK_SECRET, tenant: false };
    else return { skip: "the tenant's webhook changed after this notice was queued" };
  } else if (hook) t = { url: hook.url, secret: hook.secret ?? undefined, tenant: true };
  else if (platform) t = { url: platform, secret: env.NOTIFY_WEBHOOK_SECRET, tenant: false };
  else return { skip: "no delivery configured (escalation email, tenant webhook or NOTIFY_WEBHOOK_URL)" };
  if (!t.tenant) return t;
  // Stored before today's rules, or by hand: a tenant's URL is checked again before every POST.
  const problem = webhookTargetProblem(t.url, strictWebhookTargets(env));
  if (problem) return { skip: `webhook_url ${problem}` };
  if (!t.secret) return { skip: "the tenant's webhook has no signing secret; rotate it" };
  return t;
}

/** A webhook URL for the outbox: it may hold a token (Slack's do), so only its origin. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "webhook";
  }
}

/** POSTs a notice as JSON to its webhook, signed with that webhook's secret. */
export async function postWebhook(
  env: Env,
  n: Notice,
  hook: TenantHook | undefined,
  subject: string,
  text: string,
): Promise<Delivery> {
  const target = webhookTarget(env, n, hook);
  if ("skip" in target) return { status: "skipped", channel: "none", error: target.skip };
  const body = JSON.stringify({
    kind: n.type,
    id: n.id,
    tenant_id: n.tenantId,
    to: n.to,
    subject,
    text,
    // The console pages of the conversations the notice is about (docs/handoff.md).
    links: noticeLinks(n, env.PUBLIC_BASE_URL),
    notice: n,
  });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.secret) headers["x-chatedge-signature"] = `sha256=${await hmacSha256Hex(target.secret, body)}`;
  const recipient = originOf(target.url);
  try {
    // No redirects: a public URL must not bounce the POST to a private one.
    const res = await fetch(target.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    });
    await res.body?.cancel();
    if (res.ok) return { status: "sent", channel: "webhook", error: null, recipient };
    return { status: "failed", channel: "webhook", error: `webhook answered ${res.status}`, recipient };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { status: "failed", channel: "webhook", error, recipient };
  }
}

/** A new webhook signing secret: 32 random bytes, hex, with a prefix that says what it is. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${toHex(bytes)}`;
}
