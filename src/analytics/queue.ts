/**
 * The worker side of the analytics queues: hands each batch to its consumer (one database pool per
 * batch, see background.ts) and logs what went wrong. `src/consumers.ts` dispatches here by the
 * queue names the environment configures (ANALYTICS_QUEUE_NAME, ANALYTICS_DLQ_NAME).
 */
import { consumeInBackground } from "../background";
import type { RawEnv } from "../env";
import { consumeAnalyticsBatch } from "./consumer";
import { consumeDeadLetterBatch } from "./dlq";
import { unpackMessages } from "./pack";

/** The analytics consumer's `max_retries` in wrangler.jsonc, quoted in dead letters. */
export const ANALYTICS_MAX_RETRIES = 10;

/** At most this many events share one transaction: a batch of full packs holds up to 10,000. */
export const EVENTS_PER_TRANSACTION = 500;

/** Queue handler of the analytics queue: packs opened (src/analytics/pack.ts), then consumed. */
export function analyticsQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  return consumeInBackground(batch, raw, ctx, async ({ dbh }) => {
    const events = unpackMessages(batch.messages);
    try {
      for (let i = 0; i < events.messages.length; i += EVENTS_PER_TRANSACTION) {
        const part = events.messages.slice(i, i + EVENTS_PER_TRANSACTION);
        const report = await consumeAnalyticsBatch(part, dbh.db, { queue: batch.queue });
        if (report.retried > 0 || report.invalid > 0 || report.rejected > 0) {
          console.warn(JSON.stringify({ msg: "analytics batch", queue: batch.queue, ...report }));
        }
      }
    } finally {
      events.settle();
    }
  });
}

/** Queue handler of the analytics dead-letter queue. */
export function analyticsDeadLetterQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  return consumeInBackground(batch, raw, ctx, async ({ env, dbh }) => {
    // A pack that ran out of retries becomes one dead letter per event, each replayable alone.
    const events = unpackMessages(batch.messages);
    try {
      const report = await consumeDeadLetterBatch(events.messages, dbh.db, {
        source: env.ANALYTICS_QUEUE_NAME,
        maxRetries: ANALYTICS_MAX_RETRIES,
      });
      console.warn(JSON.stringify({ msg: "analytics dead letters", queue: batch.queue, ...report }));
    } finally {
      events.settle();
    }
  });
}
