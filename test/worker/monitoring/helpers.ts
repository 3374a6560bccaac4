import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { AnalyticsEvent, ConversationEvent, InboxEvent, TurnEvent } from "../../../src/analytics/events";
import { openDb } from "../../../src/db/client";
import { loadEnv } from "../../../src/env";
import { type EvaluationReport, evaluateAlerts } from "../../../src/monitoring/evaluate";
import { batchOf, conversationEvent, deliver, HOUR, turnEvent } from "../analytics/helpers";
import { eventually } from "../eventually";
import { createTenant, query, sql } from "../helpers";

export { HOUR };
export const MINUTE = 60_000;

/** A tenant that alerts go to: an escalation address, and (optionally) its own webhook. */
export async function alertTenant(overrides: Record<string, unknown> = {}) {
  const t = await createTenant({ escalation_email: "oncall@shop.example", ...overrides });
  return t.tenant_id;
}

/** Writes events through the worker's real queue handler, at most 100 a batch as the queue would. */
export async function ingest(events: AnalyticsEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 100) {
    const r = await deliver(batchOf(events.slice(i, i + 100)));
    if (r.explicitAcks.length !== Math.min(100, events.length - i)) {
      throw new Error(`ingest: not every message was acked: ${JSON.stringify(r)}`);
    }
  }
}

/** `n` answered turns, `at` ms before `now` (default 10 minutes), each with its own user. */
export function turns(
  tenantId: string,
  n: number,
  now: number,
  o: Partial<TurnEvent> = {},
  agoMs = 10 * MINUTE,
) {
  return Array.from({ length: n }, (_, i) =>
    turnEvent(tenantId, { at: now - agoMs, userId: `u-${i}`, conversationId: `c-${i}`, ...o }),
  );
}

/** `n` conversations that ended `agoMs` before `now`. */
export function conversations(
  tenantId: string,
  n: number,
  now: number,
  o: (i: number) => Partial<ConversationEvent> = () => ({}),
  agoMs = 10 * MINUTE,
) {
  return Array.from({ length: n }, (_, i) =>
    conversationEvent(tenantId, {
      conversationId: `conv-${i}-${crypto.randomUUID().slice(0, 8)}`,
      userId: `u-${i}`,
      startedAt: now - agoMs - 5 * MINUTE,
      endedAt: now - agoMs,
      at: now - agoMs,
      ...o(i),
    }),
  );
}

/**
 * A conversation's inbox event (docs/handoff.md) as its object emits it: `waiting` since
 * `waitingSince`, or another status with no wait.
 */
export function inboxEvent(
  tenantId: string,
  conversationId: string,
  o: Partial<InboxEvent> & Pick<InboxEvent, "status" | "at">,
): InboxEvent {
  return {
    type: "inbox",
    id: crypto.randomUUID(),
    tenantId,
    conversationId,
    userId: `u-${conversationId}`,
    version: 1,
    channel: "web",
    experiment: null,
    variant: null,
    csat: null,
    totalCostUsd: 0.001,
    totalTokens: 200,
    turnCount: 2,
    startedAt: o.at - 5 * MINUTE,
    lastActivityAt: o.at,
    waitingSince: null,
    holder: null,
    entries: [],
    ...o,
  };
}

/** Runs the evaluation the cron trigger runs, for one tenant, against the test database. */
export async function evaluate(tenantId: string, now: number, origin?: string): Promise<EvaluationReport> {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const h = openDb(loaded.env);
  try {
    return await evaluateAlerts(loaded.env, h.db, now, { tenantId, origin });
  } finally {
    await h.close();
  }
}

export const ruleNames = (alerts: { rule: string }[]) => alerts.map((a) => a.rule).sort();

export async function alertRows(tenantId: string) {
  return query<{ rule: string; state: string; value: number; first_value: number }>(
    sql`select rule, state, value, first_value from alerts where tenant_id = ${tenantId} order by fired_at, rule`,
  );
}

type OutboxRow = { kind: string; channel: string; recipient: string; status: string; subject: string };

/** The tenant's alert notifications in the outbox, waiting until there are at least `n`. */
export function alertOutbox(tenantId: string, n: number): Promise<OutboxRow[]> {
  return eventually(async () => {
    const rows = await query<OutboxRow>(
      sql`select kind, channel, recipient, status, subject from notifications
          where tenant_id = ${tenantId} and kind = 'alert' order by created_at, channel`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(n);
    return rows;
  });
}
