/**
 * The worker side of the analytics queues: hands each batch to its consumer (one database pool per
 * batch, see background.ts) and logs what went wrong. `src/consumers.ts` dispatches here by the
 * queue names the environment configures (ANALYTICS_QUEUE_NAME, ANALYTICS_DLQ_NAME).
 */
import { consumeInBackground } from "../background";
import type { RawEnv } from "../env";
import { consumeAnalyticsBatch } from "./consumer";
import { consumeDeadLetterBatch } from "./dlq";

/** The analytics consumer's `max_retries` in wrangler.jsonc, quoted in dead letters. */
export const ANALYTICS_MAX_RETRIES = 10;

/** Queue handler of the analytics queue. */
export function analyticsQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  return consumeInBackground(batch, raw, ctx, async ({ dbh }) => {
    const report = await consumeAnalyticsBatch(batch.messages, dbh.db, { queue: batch.queue });
    if (report.retried > 0 || report.invalid > 0 || report.rejected > 0) {
      console.warn(JSON.stringify({ msg: "analytics batch", queue: batch.queue, ...report }));
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
    const report = await consumeDeadLetterBatch(batch.messages, dbh.db, {
      source: env.ANALYTICS_QUEUE_NAME,
      maxRetries: ANALYTICS_MAX_RETRIES,
    });
    console.warn(JSON.stringify({ msg: "analytics dead letters", queue: batch.queue, ...report }));
  });
}
