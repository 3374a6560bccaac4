/**
 * The notifications queue: escalation transcripts and alerts delivered by email through
 * the `send_email` binding or by a signed webhook, off the request path. Every notice lands in the
 * `notifications` outbox with how delivery went, so nothing is lost silently: a notice that keeps
 * failing is retried with backoff and, after MAX_ATTEMPTS, recorded as failed.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { retryDelaySeconds } from "../analytics/consumer";
import { consumeInBackground } from "../background";
import type { Db } from "../db/client";
import { notifications } from "../db/schema";
import type { Env, RawEnv } from "../env";
import { errorSummary } from "../errors";
import { purgedAmong } from "../privacy/erasure";
import { redact } from "../privacy/redact";
import { Notice, render } from "./messages";
import { type Delivery, originOf, postWebhook, type TenantHook, tenantHooks } from "./webhook";

/** Deliveries tried before a notice is recorded as failed (matches max_retries + 1 in wrangler.jsonc). */
export const MAX_ATTEMPTS = 5;

/** `capped`: not sent because the tenant had its hour's notices: the outbox keeps no body for it. */
type Outcome = Delivery & { capped?: true };

/** Sends one plain-text email through the `send_email` binding, from EMAIL_FROM. */
export async function sendEmail(env: Env, to: string, subject: string, text: string): Promise<Outcome> {
  if (!env.EMAIL_FROM) {
    return { status: "skipped", channel: "none", error: "email is not configured (EMAIL_FROM)" };
  }
  try {
    await env.SEND_EMAIL.send({ from: env.EMAIL_FROM, to, subject, text });
    return { status: "sent", channel: "email", error: null };
  } catch (err) {
    return { status: "failed", channel: "email", error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Delivers one notice. An alert goes by its own channel (one notice per channel); an escalation by
 * the first configured one: the escalation email, then the tenant's webhook, then the platform's.
 */
export async function deliver(env: Env, n: Notice, hook?: TenantHook): Promise<Outcome> {
  const { subject, text } = render(n, env.PUBLIC_BASE_URL);
  if (n.type === "alert") {
    return n.channel === "email"
      ? sendEmail(env, n.to, subject, text)
      : postWebhook(env, n, hook, subject, text);
  }
  if (n.to && env.EMAIL_FROM) return sendEmail(env, n.to, subject, text);
  return postWebhook(env, n, hook, subject, text);
}

/** Who a notice went to, for the outbox: a webhook URL may hold a token (Slack's do), so only its origin. */
function recipientOf(n: Notice): string {
  return n.type === "alert" && n.channel === "webhook" ? originOf(n.to) : n.to;
}

/** Records delivery outcomes in the outbox, one statement for the batch, idempotent by notice id. */
async function recordOutcomes(
  db: Db,
  rows: { n: Notice; o: Outcome; attempts: number }[],
  publicBaseUrl: string | undefined,
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insert(notifications)
    .values(
      rows.map(({ n, o, attempts }) => {
        const { subject, text } = render(n, publicBaseUrl);
        return {
          id: n.id,
          tenantId: n.tenantId,
          kind: n.type,
          channel: o.channel,
          recipient: o.recipient ?? recipientOf(n),
          subject,
          // The outbox keeps what was sent for inspection, not the personal data in it; a notice
          // over the tenant's hour was never meant to go, and keeps no transcript at all.
          body: o.capped ? "" : redact(text),
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

/**
 * How many escalation notices each tenant was sent (or is being sent) in the last hour. A script
 * that asks for a human in conversation after conversation would otherwise make the platform's
 * sender mail its words to the tenant's desk as fast as it can start conversations.
 */
async function escalationsLastHour(db: Db, tenantIds: string[]): Promise<Map<string, number>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db
    .select({ tenantId: notifications.tenantId, n: sql<number>`count(*)::int` })
    .from(notifications)
    .where(
      and(
        inArray(notifications.tenantId, [...new Set(tenantIds)]),
        eq(notifications.kind, "escalation"),
        sql`${notifications.createdAt} > now() - interval '1 hour'`,
        sql`${notifications.status} <> 'skipped'`,
      ),
    )
    .groupBy(notifications.tenantId);
  return new Map(rows.map((r) => [r.tenantId, Number(r.n)]));
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
  const hooks = await tenantHooks(
    db,
    valid.map((v) => v.n.tenantId),
  );
  const outcomes: { m: Message<unknown>; n: Notice; o: Outcome; attempts: number }[] = [];
  // A purged tenant's notices still queued go nowhere and leave no outbox row (src/privacy/purge.ts).
  const purged = await purgedAmong(
    db,
    valid.map((v) => v.n.tenantId),
  );
  const escalations = await escalationsLastHour(
    db,
    valid.filter(({ n }) => n.type === "escalation").map(({ n }) => n.tenantId),
  );
  for (const { m, n } of valid) {
    if (sent.has(n.id) || purged.has(n.tenantId)) {
      m.ack();
      continue;
    }
    // A first delivery counts against the tenant's hour; a retried notice was counted by its own row.
    const counted = n.type === "escalation" && m.attempts <= 1;
    const count = escalations.get(n.tenantId) ?? 0;
    let o: Outcome;
    if (counted && count >= env.ESCALATION_NOTICES_PER_HOUR)
      o = {
        status: "skipped",
        capped: true,
        channel: "none",
        error: `the tenant was sent ${env.ESCALATION_NOTICES_PER_HOUR} escalation notices in the last hour: this conversation waits in the inbox`,
      };
    else {
      if (counted) escalations.set(n.tenantId, count + 1);
      o = await deliver(env, n, hooks.get(n.tenantId));
    }
    outcomes.push({ m, n, o, attempts: m.attempts });
  }
  // Failed deliveries that will be retried are recorded too, so the console shows what is pending.
  await recordOutcomes(db, outcomes, env.PUBLIC_BASE_URL);
  for (const { m, o } of outcomes) {
    if (o.status === "failed" && m.attempts < MAX_ATTEMPTS)
      m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    else m.ack();
  }
}

/** Queue handler of the notifications queue. */
export function notifyQueue(batch: MessageBatch<unknown>, raw: RawEnv, ctx: ExecutionContext): Promise<void> {
  return consumeInBackground(batch, raw, ctx, async ({ env, dbh }) => {
    try {
      await consumeNotifyBatch(batch.messages, env, dbh.db);
    } catch (err) {
      // Postgres unreachable: nothing was acked yet, so the whole batch comes back later.
      console.error(JSON.stringify({ msg: "notify batch failed; retried", ...errorSummary(err) }));
      for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    }
  });
}
