/**
 * The dead-letter queue consumer: messages the analytics consumer could not write within its
 * retries arrive here and are stored in `dead_letters` (reason "exhausted") with one multi-row
 * insert, idempotent by message id. Nothing here can be refused for its content (the body is kept
 * as text), so a failure is Postgres being away: the batch is retried with the same backoff.
 */
import { deadLetterOf, type QueueMessage, retryDelaySeconds } from "./consumer.ts";
import { insertDeadLetters } from "./ingest.ts";
import { rootMessage, type SqlExecutor } from "./sql.ts";

/** What one dead-letter batch came to. */
export interface DeadLetterReport {
  messages: number;
  stored: number;
  retried: number;
  error?: string;
}

/** Stores a batch of the dead-letter queue; `source` is the queue whose retries ran out. */
export async function consumeDeadLetterBatch(
  messages: readonly QueueMessage[],
  db: SqlExecutor,
  opts: { source: string; maxRetries?: number },
): Promise<DeadLetterReport> {
  const error =
    opts.maxRetries === undefined
      ? `delivery to ${opts.source} failed on every retry`
      : `delivery to ${opts.source} failed ${opts.maxRetries + 1} times`;
  const letters = messages.map((m) => deadLetterOf(m, opts.source, "exhausted", error));
  try {
    const stored = await insertDeadLetters(db, letters);
    for (const m of messages) m.ack();
    return { messages: messages.length, stored, retried: 0 };
  } catch (err) {
    for (const m of messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    return { messages: messages.length, stored: 0, retried: messages.length, error: rootMessage(err) };
  }
}
