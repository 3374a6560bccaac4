import { Batcher } from "../batcher";
import type { Env } from "../env";
import type { AnalyticsEvent } from "./events";

/** Up to this many events share one sendBatch (Queues allows 100 messages per batch). */
const MAX_BATCH = 100;
/** How long an event waits for company before its batch is sent: each sendBatch costs CPU, so fewer, fuller batches. */
const BATCH_DELAY_MS = 250;

// One batcher per queue binding, isolate-wide: events of many requests leave in one sendBatch.
// Bounded: a batcher holds at most MAX_BATCH events before it sends them.
const batchers = new WeakMap<object, Batcher<AnalyticsEvent>>();

/**
 * Queues an analytics event without delaying the response: it joins this isolate's next batch,
 * and the request's `waitUntil` keeps the isolate alive until that batch is sent.
 */
export function sendAnalytics(env: Env, ctx: ExecutionContext, event: AnalyticsEvent): void {
  const queue = env.ANALYTICS_QUEUE;
  if (!queue) {
    console.warn(
      JSON.stringify({ msg: "no ANALYTICS_QUEUE binding; analytics event dropped", type: event.type }),
    );
    return;
  }
  let batcher = batchers.get(queue);
  if (!batcher) {
    batcher = new Batcher<AnalyticsEvent>(
      async (events) => {
        await queue.sendBatch(events.map((body) => ({ body, contentType: "json" as const })));
      },
      { maxItems: MAX_BATCH, delayMs: BATCH_DELAY_MS, name: "analytics producer" },
    );
    batchers.set(queue, batcher);
  }
  batcher.add(event, (p) => ctx.waitUntil(p));
}
