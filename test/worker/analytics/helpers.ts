import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import type { ConversationEvent, FeedbackEvent, SafetyEvent, TurnEvent } from "../../../src/analytics/events";
import type { AnalyticsDb } from "../../../src/analytics/sql";
import { openDb } from "../../../src/db/client";
import { DEFAULT_QUEUE_NAMES, loadEnv, type RawEnv } from "../../../src/env";
import worker from "../../../src/index";
import { query, sql } from "../helpers";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** Noon UTC `daysAgo` days before today, plus `offsetMs`: safely inside one UTC day. */
export function dayTime(daysAgo: number, offsetMs = 0): number {
  const midnight = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
  return midnight - daysAgo * DAY + 12 * HOUR + offsetMs;
}

export function turnEvent(tenantId: string, o: Partial<TurnEvent> = {}): TurnEvent {
  return {
    type: "turn",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "c-1",
    userId: "u-1",
    at: dayTime(0),
    turnIndex: 0,
    model: "gpt-4o-mini",
    calledModel: "gpt-4o-mini",
    experiment: null,
    variant: null,
    inputTokens: 100,
    outputTokens: 50,
    costUsd: 0.0001,
    latencyMs: 800,
    firstTokenMs: 200,
    outcome: "ok",
    error: null,
    toolsUsed: [],
    channel: "web",
    ...o,
  };
}

export function conversationEvent(tenantId: string, o: Partial<ConversationEvent> = {}): ConversationEvent {
  const startedAt = o.startedAt ?? dayTime(0);
  return {
    type: "conversation",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "c-1",
    userId: "u-1",
    at: startedAt + 60_000,
    startedAt,
    endedAt: startedAt + 60_000,
    turnCount: 2,
    resolved: true,
    escalated: false,
    csat: null,
    totalTokens: 300,
    totalCostUsd: 0.0002,
    avgResponseMs: 800,
    toolsUsed: ["lookup_order"],
    channel: "web",
    experiment: null,
    variant: null,
    errorCount: 0,
    ...o,
  };
}

export function feedbackEvent(tenantId: string, o: Partial<FeedbackEvent> = {}): FeedbackEvent {
  return {
    type: "feedback",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "c-1",
    userId: "u-1",
    at: dayTime(0, 120_000),
    csat: 5,
    comment: null,
    ...o,
  };
}

export function safetyEvent(tenantId: string, o: Partial<SafetyEvent> = {}): SafetyEvent {
  return {
    type: "safety",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "c-1",
    userId: "u-1",
    at: dayTime(0),
    direction: "input",
    topic: "medical advice",
    ...o,
  };
}

let msgSeq = 0;
/** A message batch as the queue would deliver it; each body gets its own message id. */
export function batchOf(bodies: unknown[], opts: { attempts?: number; queue?: string; ids?: string[] } = {}) {
  return createMessageBatch(
    opts.queue ?? ANALYTICS_QUEUE_NAME,
    bodies.map((body, i) => ({
      id: opts.ids?.[i] ?? `msg-${Date.now().toString(36)}-${++msgSeq}`,
      timestamp: new Date(),
      attempts: opts.attempts ?? 1,
      body,
    })),
  );
}

/**
 * Runs the worker's real queue handler on a batch and returns what it acked and retried, with the
 * delay asked for each retried message (getQueueResult does not report per-message delays).
 */
export async function deliver(batch: MessageBatch<unknown>, overrides: Partial<RawEnv> = {}) {
  const ctx = createExecutionContext();
  const delays: Record<string, number | undefined> = {};
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    (m as { retry: Message["retry"] }).retry = (o) => {
      delays[m.id] = o?.delaySeconds;
      retry(o);
    };
  }
  await worker.queue(batch, Object.keys(overrides).length ? { ...env, ...overrides } : env, ctx);
  return { ...(await getQueueResult(batch, ctx)), delays };
}

export const dlqBatch = (bodies: unknown[], opts: { attempts?: number; ids?: string[] } = {}) =>
  batchOf(bodies, { ...opts, queue: ANALYTICS_DLQ_NAME });

/** A database like the worker's, whose every statement is recorded. */
export function recordingDb() {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  openDb(loaded.env); // configures the Neon driver for the local relay
  const pool = new Pool({ connectionString: loaded.env.DATABASE_URL, max: 1 });
  pool.on("error", () => {});
  const statements: string[] = [];
  const db = drizzle({ client: pool, logger: { logQuery: (q: string) => statements.push(q) } });
  return { db: db as unknown as AnalyticsDb, statements, close: () => pool.end() };
}

/** The tenant's rollup rows (day as YYYY-MM-DD), without the bookkeeping columns. */
export async function dailyRows(tenantId: string) {
  const rows = await query<{ r: Record<string, unknown> }>(
    sql`select to_jsonb(t) - 'updated_at' - 'tenant_id' as r from tenant_daily t
        where tenant_id = ${tenantId} order by day`,
  );
  return rows.map((x) => x.r);
}

/** The tenant's latency histogram as {day: {bucket: count}}. */
export async function histogram(tenantId: string) {
  const rows = await query<{ day: string; bucket: number; count: number }>(
    sql`select day::text as day, bucket, count from tenant_latency_daily where tenant_id = ${tenantId}`,
  );
  const out: Record<string, Record<number, number>> = {};
  for (const r of rows) {
    out[r.day] ??= {};
    (out[r.day] as Record<number, number>)[r.bucket] = r.count;
  }
  return out;
}

/** How many rows a table holds for a tenant. */
export async function countRows(
  table:
    | "turns"
    | "conversations"
    | "feedback"
    | "safety_events"
    | "tenant_daily_users"
    | "tenant_latency_daily",
  tenantId: string,
): Promise<number> {
  const [r] = await query<{ n: string }>(
    sql`select count(*)::text as n from ${sql.identifier(table)} where tenant_id = ${tenantId}`,
  );
  return Number(r?.n);
}

export async function conversationCsat(tenantId: string, conversationId: string) {
  const [r] = await query<{ csat: number | null }>(
    sql`select csat from conversations where tenant_id = ${tenantId} and conversation_id = ${conversationId}`,
  );
  return r?.csat;
}

/** The queue names of the config the tests run (wrangler.jsonc's top level). */
export const { ANALYTICS_DLQ_NAME, ANALYTICS_QUEUE_NAME } = DEFAULT_QUEUE_NAMES;
