/**
 * The worker side of the analytics queues: validates the environment, opens one database pool per
 * batch, hands the batch to its consumer and logs what went wrong. `src/index.ts` dispatches here
 * by queue name.
 */
import { openDb } from "../db/client";
import { loadEnv, type RawEnv } from "../env";
import { consumeAnalyticsBatch, retryDelaySeconds } from "./consumer";
import { consumeDeadLetterBatch } from "./dlq";

/** The queue analytics events are produced to (wrangler.jsonc `queues`). */
export const ANALYTICS_QUEUE_NAME = "chatedge-analytics";
/** Where the analytics queue moves messages whose retries ran out. */
export const ANALYTICS_DLQ_NAME = "chatedge-analytics-dlq";
/** The analytics consumer's `max_retries` in wrangler.jsonc, quoted in dead letters. */
export const ANALYTICS_MAX_RETRIES = 10;

function envOrRetry(batch: MessageBatch<unknown>, raw: RawEnv) {
  const loaded = loadEnv(raw);
  if (loaded.ok) return loaded.env;
  console.error(
    JSON.stringify({
      msg: "environment invalid; batch retried",
      queue: batch.queue,
      problems: loaded.problems,
    }),
  );
  for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
  return undefined;
}

/** Queue handler of the analytics queue. */
export async function analyticsQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  const env = envOrRetry(batch, raw);
  if (!env) return;
  const h = openDb(env);
  try {
    const report = await consumeAnalyticsBatch(batch.messages, h.db, { queue: batch.queue });
    if (report.retried > 0 || report.invalid > 0 || report.rejected > 0) {
      console.warn(JSON.stringify({ msg: "analytics batch", queue: batch.queue, ...report }));
    }
  } finally {
    ctx.waitUntil(h.close());
  }
}

/** Queue handler of the analytics dead-letter queue. */
export async function analyticsDeadLetterQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  const env = envOrRetry(batch, raw);
  if (!env) return;
  const h = openDb(env);
  try {
    const report = await consumeDeadLetterBatch(batch.messages, h.db, {
      source: ANALYTICS_QUEUE_NAME,
      maxRetries: ANALYTICS_MAX_RETRIES,
    });
    console.warn(JSON.stringify({ msg: "analytics dead letters", queue: batch.queue, ...report }));
  } finally {
    ctx.waitUntil(h.close());
  }
}
