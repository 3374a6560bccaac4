/**
 * Dead letters for operators: list them, and replay them onto the analytics queue. Replay sends
 * the stored bodies with the queue producer and marks the rows replayed in one transaction (rows
 * locked, SKIP LOCKED so two replays never send the same row). A send that fails rolls the marks
 * back; a commit that fails after the send only means a later replay sends again, which the
 * consumer's idempotency by event id absorbs.
 */
import { and, asc, count, eq, inArray, isNull, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type DeadLetterRow, deadLetters } from "../db/schema";

/** The API's view of a dead letter. */
export function deadLetterOut(r: DeadLetterRow) {
  return {
    id: r.id,
    message_id: r.messageId,
    queue: r.queue,
    reason: r.reason,
    error: r.error,
    body: r.body,
    tenant_id: r.tenantId,
    event_id: r.eventId,
    attempts: r.attempts,
    created_at: r.createdAt.toISOString(),
    replayed_at: r.replayedAt ? r.replayedAt.toISOString() : null,
    replays: r.replays,
  };
}

export interface DeadLetterFilter {
  /** The queue whose dead letters these are: the environment's ANALYTICS_QUEUE_NAME. */
  queue: string;
  reason?: DeadLetterRow["reason"];
  tenantId?: string;
  ids?: number[];
}

function pendingWhere(f: DeadLetterFilter): SQL | undefined {
  return and(
    isNull(deadLetters.replayedAt),
    eq(deadLetters.queue, f.queue),
    f.reason ? eq(deadLetters.reason, f.reason) : undefined,
    f.tenantId ? eq(deadLetters.tenantId, f.tenantId) : undefined,
    f.ids ? inArray(deadLetters.id, f.ids) : undefined,
  );
}

/** Dead letters not yet replayed, oldest first, and how many there are. */
export async function listDeadLetters(db: Db, f: DeadLetterFilter, limit: number) {
  const rows = await db
    .select()
    .from(deadLetters)
    .where(pendingWhere(f))
    .orderBy(asc(deadLetters.id))
    .limit(limit);
  const [total] = await db.select({ n: count() }).from(deadLetters).where(pendingWhere(f));
  return { rows, pending: total?.n ?? 0 };
}

// Cloudflare Queues limits: 100 messages and 256 KB per sendBatch.
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 250_000;

/** Groups bodies into sendBatch calls that stay within the queue's limits. */
export function chunkForSend(bodies: string[]): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const b of bodies) {
    const size = new TextEncoder().encode(b).length;
    if (current.length > 0 && (current.length >= MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(b);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

const parseBody = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/** Re-sends up to `limit` pending dead letters to the analytics queue and marks them replayed. */
export async function replayDeadLetters(db: Db, queue: Queue<unknown>, f: DeadLetterFilter, limit: number) {
  const ids = await db.transaction(async (tx) => {
    const rows = await tx
      .select({ id: deadLetters.id, body: deadLetters.body })
      .from(deadLetters)
      .where(pendingWhere(f))
      .orderBy(asc(deadLetters.id))
      .limit(limit)
      .for("update", { skipLocked: true });
    if (rows.length === 0) return [];
    for (const chunk of chunkForSend(rows.map((r) => r.body))) {
      await queue.sendBatch(chunk.map((b) => ({ body: parseBody(b), contentType: "json" as const })));
    }
    const picked = rows.map((r) => r.id);
    await tx
      .update(deadLetters)
      .set({ replayedAt: new Date(), replays: sql`${deadLetters.replays} + 1` })
      .where(inArray(deadLetters.id, picked));
    return picked;
  });
  const [left] = await db
    .select({ n: count() })
    .from(deadLetters)
    .where(pendingWhere({ ...f, ids: undefined }));
  return { replayed: ids.length, ids, remaining: left?.n ?? 0 };
}
