/**
 * The notifications queue: escalation transcripts and alerts delivered by email through
 * the `send_email` binding or by a signed webhook, off the request path. Every notice lands in the
 * `notifications` outbox with how delivery went, so nothing is lost silently: a notice that keeps
 * failing is retried with backoff and, after MAX_ATTEMPTS, recorded as failed.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { retryDelaySeconds } from "../analytics/consumer";
import type { Db } from "../db/client";
import { openDb } from "../db/client";
import { notifications } from "../db/schema";
import { type Env, loadEnv, type RawEnv } from "../env";
import { Notice, render } from "./messages";

export const NOTIFY_QUEUE_NAME = "chatedge-notify";
/** Deliveries tried before a notice is recorded as failed (matches max_retries + 1 in wrangler.jsonc). */
export const MAX_ATTEMPTS = 5;

type Channel = "email" | "webhook" | "none";
type Outcome = { status: "sent" | "failed" | "skipped"; channel: Channel; error: string | null };

async function hmacHex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sendEmail(env: Env, to: string, subject: string, text: string): Promise<Outcome> {
  if (!env.SEND_EMAIL || !env.EMAIL_FROM) {
    return { status: "skipped", channel: "none", error: "email is not configured (SEND_EMAIL + EMAIL_FROM)" };
  }
  try {
    await env.SEND_EMAIL.send({ from: env.EMAIL_FROM, to, subject, text });
    return { status: "sent", channel: "email", error: null };
  } catch (err) {
    return { status: "failed", channel: "email", error: err instanceof Error ? err.message : String(err) };
  }
}

/** POSTs a notice as JSON, signed with NOTIFY_WEBHOOK_SECRET when set. */
async function postWebhook(
  env: Env,
  url: string,
  n: Notice,
  subject: string,
  text: string,
): Promise<Outcome> {
  const body = JSON.stringify({
    kind: n.type,
    id: n.id,
    tenant_id: n.tenantId,
    to: n.to,
    subject,
    text,
    notice: n,
  });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (env.NOTIFY_WEBHOOK_SECRET)
    headers["x-chatedge-signature"] = `sha256=${await hmacHex(env.NOTIFY_WEBHOOK_SECRET, body)}`;
  try {
    const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
    if (res.ok) return { status: "sent", channel: "webhook", error: null };
    return { status: "failed", channel: "webhook", error: `webhook answered ${res.status}` };
  } catch (err) {
    return { status: "failed", channel: "webhook", error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Delivers one notice. An alert goes by its own channel (one notice per channel); an escalation by
 * the first configured one: email, then the platform webhook.
 */
export async function deliver(env: Env, n: Notice): Promise<Outcome> {
  const { subject, text } = render(n);
  if (n.type === "alert") {
    return n.channel === "email"
      ? sendEmail(env, n.to, subject, text)
      : postWebhook(env, n.to, n, subject, text);
  }
  if (env.SEND_EMAIL && env.EMAIL_FROM) return sendEmail(env, n.to, subject, text);
  if (env.NOTIFY_WEBHOOK_URL) return postWebhook(env, env.NOTIFY_WEBHOOK_URL, n, subject, text);
  return {
    status: "skipped",
    channel: "none",
    error: "no delivery configured (SEND_EMAIL + EMAIL_FROM, or NOTIFY_WEBHOOK_URL)",
  };
}

/** Who a notice went to, for the outbox: a webhook URL may hold a token (Slack's do), so only its origin. */
function recipientOf(n: Notice): string {
  if (n.type !== "alert" || n.channel !== "webhook") return n.to;
  try {
    return new URL(n.to).origin;
  } catch {
    return "webhook";
  }
}

/** Records delivery outcomes in the outbox, one statement for the batch, idempotent by notice id. */
async function recordOutcomes(db: Db, rows: { n: Notice; o: Outcome; attempts: number }[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insert(notifications)
    .values(
      rows.map(({ n, o, attempts }) => {
        const { subject, text } = render(n);
        return {
          id: n.id,
          tenantId: n.tenantId,
          kind: n.type,
          channel: o.channel,
          recipient: recipientOf(n),
          subject,
          body: text,
          status: o.status,
          attempts,
          error: o.error,
          sentAt: o.status === "sent" ? new Date() : null,
        };
      }),
    )
    .onConflictDoUpdate({
      target: notifications.id,
      set: {
        channel: sql`excluded.channel`,
        status: sql`excluded.status`,
        attempts: sql`excluded.attempts`,
        error: sql`excluded.error`,
        sentAt: sql`excluded.sent_at`,
      },
      // A notice already sent stays sent: a redelivered message must not mail twice or un-send.
      setWhere: sql`${notifications.status} <> 'sent'`,
    });
}

/** Which notices of a batch were already sent (a redelivery must not send them again). */
async function alreadySent(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .select({ id: notifications.id })
    .from(notifications)
    .where(and(eq(notifications.status, "sent"), inArray(notifications.id, ids)));
  return new Set(rows.map((r) => r.id));
}

/** Delivers a batch: acks what was sent, skipped or finally failed; retries the rest with backoff. */
export async function consumeNotifyBatch(
  messages: readonly Message<unknown>[],
  env: Env,
  db: Db,
): Promise<void> {
  const valid: { m: Message<unknown>; n: Notice }[] = [];
  for (const m of messages) {
    const parsed = Notice.safeParse(m.body);
    if (parsed.success) valid.push({ m, n: parsed.data });
    else {
      console.error(
        JSON.stringify({
          msg: "notify: invalid notice dropped",
          id: m.id,
          issues: parsed.error.issues.length,
        }),
      );
      m.ack();
    }
  }
  const sent = await alreadySent(
    db,
    valid.map((v) => v.n.id),
  );
  const outcomes: { m: Message<unknown>; n: Notice; o: Outcome; attempts: number }[] = [];
  for (const { m, n } of valid) {
    if (sent.has(n.id)) {
      m.ack();
      continue;
    }
    outcomes.push({ m, n, o: await deliver(env, n), attempts: m.attempts });
  }
  // Failed deliveries that will be retried are recorded too, so the console shows what is pending.
  await recordOutcomes(db, outcomes);
  for (const { m, o } of outcomes) {
    if (o.status === "failed" && m.attempts < MAX_ATTEMPTS)
      m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    else m.ack();
  }
}

/** Queue handler of the notifications queue. */
export async function notifyQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  const loaded = loadEnv(raw);
  if (!loaded.ok) {
    console.error(
      JSON.stringify({ msg: "environment invalid; notify batch retried", problems: loaded.problems }),
    );
    batch.retryAll({ delaySeconds: 30 });
    return;
  }
  const h = openDb(loaded.env);
  try {
    await consumeNotifyBatch(batch.messages, loaded.env, h.db);
  } catch (err) {
    // Postgres unreachable: nothing was acked yet, so the whole batch comes back later.
    console.error(JSON.stringify({ msg: "notify batch failed; retried", error: String(err) }));
    for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
  } finally {
    ctx.waitUntil(h.close());
  }
}
