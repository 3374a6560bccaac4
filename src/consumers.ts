import {
  ANALYTICS_DLQ_NAME,
  ANALYTICS_QUEUE_NAME,
  analyticsDeadLetterQueue,
  analyticsQueue,
} from "./analytics/queue";
import type { RawEnv } from "./env";
import { NOTIFY_QUEUE_NAME, notifyQueue } from "./notify/consumer";

/** Hands a queue batch to the consumer of its queue. */
export async function consume(
  batch: MessageBatch<unknown>,
  env: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  switch (batch.queue) {
    case ANALYTICS_QUEUE_NAME:
      return analyticsQueue(batch, env, ctx);
    case ANALYTICS_DLQ_NAME:
      return analyticsDeadLetterQueue(batch, env, ctx);
    case NOTIFY_QUEUE_NAME:
      return notifyQueue(batch, env, ctx);
    default:
      // A queue this worker does not know: keep its messages (retried) rather than lose them.
      console.error(JSON.stringify({ msg: "no consumer for queue", queue: batch.queue }));
      batch.retryAll();
  }
}
