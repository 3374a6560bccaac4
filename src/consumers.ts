import { analyticsDeadLetterQueue, analyticsQueue } from "./analytics/queue";
import { retryBatch } from "./background";
import { loadEnv, type RawEnv } from "./env";
import { knowledgeQueue } from "./knowledge/consumer";
import { notifyQueue } from "./notify/consumer";

/**
 * Hands a queue batch to the consumer of its queue. Queue names differ per environment
 * (wrangler.jsonc `env.staging`, `env.production`), so the batch's queue is compared with the names
 * this environment configures in its vars, not with literals.
 */
export async function consume(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  const loaded = loadEnv(raw);
  if (!loaded.ok) {
    console.error(
      JSON.stringify({
        msg: `environment invalid; batch of ${batch.queue} retried`,
        problems: loaded.problems,
      }),
    );
    return retryBatch(batch);
  }
  const env = loaded.env;
  switch (batch.queue) {
    case env.ANALYTICS_QUEUE_NAME:
      return analyticsQueue(batch, raw, ctx);
    case env.ANALYTICS_DLQ_NAME:
      return analyticsDeadLetterQueue(batch, raw, ctx);
    case env.NOTIFY_QUEUE_NAME:
      return notifyQueue(batch, raw, ctx);
    case env.KNOWLEDGE_QUEUE_NAME:
      return knowledgeQueue(batch, raw, ctx);
    default:
      // A queue this environment does not name (a var out of step with its `queues`): keep its
      // messages, retried with backoff, rather than lose them; the log names the vars to check.
      console.error(
        JSON.stringify({
          msg: "no consumer for queue; check ANALYTICS_QUEUE_NAME, ANALYTICS_DLQ_NAME, NOTIFY_QUEUE_NAME, KNOWLEDGE_QUEUE_NAME",
          queue: batch.queue,
        }),
      );
      retryBatch(batch);
  }
}
