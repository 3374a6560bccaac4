/**
 * The analytics queue consumer. Per batch:
 * - each message is validated against the event contract; one that fails (or whose times are not
 *   plausible) is stored in `dead_letters` and acked, in the same transaction as the good events;
 * - the good events are written by `writeEvents` (one statement per table, idempotent by event id,
 *   rollups in the same transaction) and acked once that transaction commits;
 * - when Postgres rejects the data (SQLSTATE class 22 or 23), the batch is halved until the
 *   offending events stand alone; those go to `dead_letters` ("rejected") and everything else lands;
 * - any other failure (Postgres down, network, deadlock) retries the messages not yet written with
 *   exponential backoff by attempt; after max_retries the queue moves them to the dead-letter queue.
 * Node can import this module (bench, seeding), so it reaches no Workers API and no env.
 */
import { erasedAmong } from "../privacy/erasure.ts";
import { redactEvent } from "../privacy/events.ts";
import { AnalyticsEvent } from "./events.ts";
import { type DeadLetterInput, type WriteResult, writeEvents } from "./ingest.ts";
import type { QueueLag } from "./rollups.ts";
import { type AnalyticsDb, rootMessage, sqlState } from "./sql.ts";

/** The part of a Workers queue `Message` the consumer uses. */
export interface QueueMessage {
  readonly id: string;
  readonly body: unknown;
  readonly attempts: number;
  /** When the message was sent to the queue. */
  readonly timestamp?: Date;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

/** What one batch came to; logged, and asserted on by tests. */
export interface BatchReport extends WriteResult {
  messages: number;
  acked: number;
  retried: number;
  /** Messages that failed validation. */
  invalid: number;
  /** Events Postgres refused, isolated by halving the batch. */
  rejected: number;
  /** Transactions used: 1 unless rows were rejected or a write failed. */
  transactions: number;
  error?: string;
}

export const RETRY_BASE_SECONDS = 2;
export const RETRY_MAX_SECONDS = 600;

/** Backoff for a message on its `attempts`-th delivery: 2 s, 4 s, 8 s, ... capped at 10 minutes. */
export function retryDelaySeconds(attempts: number): number {
  const n = Math.max(1, Math.floor(attempts));
  return Math.min(RETRY_BASE_SECONDS * 2 ** (n - 1), RETRY_MAX_SECONDS);
}

// Events dated this far ahead of the consumer's clock are refused: they would sit in future rollups.
const MAX_FUTURE_MS = 24 * 60 * 60 * 1000;
// Before this (2000-01-01) a time is a unit mistake (seconds for milliseconds), not an event.
const MIN_TIME_MS = 946_684_800_000;

/** Serializes a body for `dead_letters`, whatever it is. */
export function bodyText(body: unknown): string {
  try {
    const text = JSON.stringify(body);
    if (text !== undefined) return text;
  } catch {
    // BigInt, cycles: fall through to a description.
  }
  return JSON.stringify({ unserializable: String(body) });
}

const plain = (v: unknown, max: number): string | null =>
  typeof v === "string" && v.length <= max && !v.includes("\u0000") ? v : null;

/** A dead letter for a message; tenant and event id are kept when the body shows them. */
export function deadLetterOf(
  msg: QueueMessage,
  queue: string,
  reason: DeadLetterInput["reason"],
  error: string,
): DeadLetterInput {
  const b = msg.body !== null && typeof msg.body === "object" ? (msg.body as Record<string, unknown>) : {};
  return {
    messageId: msg.id,
    queue,
    reason,
    error: error.replaceAll("\u0000", "").slice(0, 1000),
    body: bodyText(msg.body),
    tenantId: plain(b.tenantId, 63),
    eventId: plain(b.id, 64),
    attempts: msg.attempts,
  };
}

type Parsed = { ok: true; event: AnalyticsEvent } | { ok: false; error: string };

/** Validates a body against the event contract, plus time plausibility. */
export function parseEvent(body: unknown, now: number): Parsed {
  const r = AnalyticsEvent.safeParse(body);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`);
    return { ok: false, error: `invalid event: ${issues.join("; ")}` };
  }
  const e = r.data;
  const times = e.type === "conversation" ? [e.at, e.startedAt, e.endedAt] : [e.at];
  if (times.some((t) => t < MIN_TIME_MS || t > now + MAX_FUTURE_MS)) {
    return { ok: false, error: "invalid event: a time is before 2000 or more than a day in the future" };
  }
  return { ok: true, event: redactEvent(e) };
}

interface Item {
  msg: QueueMessage;
  event: AnalyticsEvent;
}

/** How long the group's messages waited: from being sent (else the event's time) to now. */
function lagOf(group: Item[], queue: string, now: number): QueueLag {
  let sum = 0;
  let max = 0;
  for (const { msg, event } of group) {
    const lag = Math.max(0, now - (msg.timestamp?.getTime() ?? event.at));
    sum += lag;
    max = Math.max(max, lag);
  }
  return { queue, at: now, messages: group.length, lag_sum_ms: sum, lag_max_ms: max };
}

/** A failure that belongs to the data (the same rows would fail again), not to the connection. */
export function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

function addInto(report: BatchReport, r: WriteResult): void {
  report.turns += r.turns;
  report.conversations += r.conversations;
  report.feedback += r.feedback;
  report.safety += r.safety;
  report.refusals += r.refusals;
  report.duplicates += r.duplicates;
  report.csatUpdates += r.csatUpdates;
  report.deadLetters += r.deadLetters;
  report.inbox += r.inbox;
}

/**
 * Consumes one batch from the analytics queue: every message ends acked (written, duplicate, or
 * dead-lettered) or retried with backoff. Never throws.
 */
export async function consumeAnalyticsBatch(
  messages: readonly QueueMessage[],
  db: AnalyticsDb,
  opts: { queue: string; now?: number },
): Promise<BatchReport> {
  const now = opts.now ?? Date.now();
  const report: BatchReport = {
    messages: messages.length,
    acked: 0,
    retried: 0,
    invalid: 0,
    rejected: 0,
    transactions: 0,
    turns: 0,
    conversations: 0,
    feedback: 0,
    safety: 0,
    refusals: 0,
    duplicates: 0,
    csatUpdates: 0,
    deadLetters: 0,
    inbox: 0,
  };
  const items: Item[] = [];
  const invalid: { msg: QueueMessage; letter: DeadLetterInput }[] = [];
  for (const msg of messages) {
    const parsed = parseEvent(msg.body, now);
    if (parsed.ok) items.push({ msg, event: parsed.event });
    else invalid.push({ msg, letter: deadLetterOf(msg, opts.queue, "invalid", parsed.error) });
  }
  report.invalid = invalid.length;

  const answered = new Set<string>();
  const ack = (ms: QueueMessage[]) => {
    for (const m of ms) {
      m.ack();
      answered.add(m.id);
    }
    report.acked += ms.length;
  };
  const retry = (ms: QueueMessage[], err: unknown) => {
    for (const m of ms) {
      m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
      answered.add(m.id);
    }
    report.retried += ms.length;
    report.error ??= rootMessage(err);
  };

  // Set by the first failure that is not the data's: the rest of the batch is retried untried.
  let down: unknown;

  /** Writes `group` (and `letters`); on a data error, halves it until the bad events stand alone. */
  const write = async (group: Item[], letters: typeof invalid): Promise<void> => {
    const all = [...group.map((i) => i.msg), ...letters.map((l) => l.msg)];
    if (down !== undefined) {
      retry(all, down);
      return;
    }
    report.transactions += 1;
    try {
      const r = await writeEvents(
        db,
        group.map((i) => i.event),
        letters.map((l) => l.letter),
        lagOf(group, opts.queue, now),
      );
      addInto(report, r);
      ack(all);
      return;
    } catch (err) {
      // Dead letters alone are plain text; if even they fail, only a retry is left.
      if (!isDataError(err) || group.length === 0) {
        down = err;
        retry(all, err);
        return;
      }
      if (letters.length > 0) {
        await write([], letters);
        await write(group, []);
        return;
      }
      const only = group.length === 1 ? group[0] : undefined;
      if (only) {
        report.rejected += 1;
        const letter = deadLetterOf(only.msg, opts.queue, "rejected", rootMessage(err));
        await write([], [{ msg: only.msg, letter }]);
        return;
      }
      const half = Math.ceil(group.length / 2);
      await write(group.slice(0, half), []);
      await write(group.slice(half), []);
    }
  };

  // Events of an erased visitor (src/privacy/erasure.ts) still in flight are dropped, not written.
  let kept = items;
  try {
    const erased = await erasedAmong(
      db,
      items.map((i) => i.event),
    );
    if (erased.size > 0) {
      kept = items.filter((i) => !erased.has(i.event));
      ack(items.filter((i) => erased.has(i.event)).map((i) => i.msg));
    }
  } catch (err) {
    down = err;
  }

  try {
    if (kept.length > 0 || invalid.length > 0) await write(kept, invalid);
  } catch (err) {
    // Only a bug gets here (write answers database errors itself); leave no message unanswered.
    retry(
      messages.filter((m) => !answered.has(m.id)),
      err,
    );
  }
  return report;
}
