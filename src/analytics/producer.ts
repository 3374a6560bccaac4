import { Batcher, PartialWrite } from "../batcher";
import type { RefusalReason } from "../db/schema";
import type { Env } from "../env";
import type { AnalyticsEvent, RefusalEvent } from "./events";
import { packEvents } from "./pack";

/** Up to this many events leave together, packed into one queue message (src/analytics/pack.ts). */
const MAX_BATCH = 100;
/** How long an event waits for company before its batch is sent: each send costs CPU, so fewer, fuller batches. */
const BATCH_DELAY_MS = 250;

// One batcher per queue binding, isolate-wide: events of many requests leave in one message.
// Bounded: a batcher holds at most MAX_BATCH events before it sends them.
const batchers = new WeakMap<object, Batcher<AnalyticsEvent>>();

/**
 * Sends a batch of events as packs (src/analytics/pack.ts): usually one queue message for all. A
 * pack the queue refuses does not hold back the others (they may be other tenants' events); only
 * its events are tried again.
 */
export async function sendPacked(queue: Queue, events: readonly AnalyticsEvent[]): Promise<void> {
  const rest: AnalyticsEvent[] = [];
  let cause: unknown;
  // One pack a call: a pack may weigh up to 100 KB, and a sendBatch holds 256 KB in all.
  for (const body of packEvents(events)) {
    try {
      await queue.send(body, { contentType: "json" });
    } catch (err) {
      cause ??= err;
      rest.push(...body.events);
    }
  }
  if (rest.length > 0) throw new PartialWrite(rest, cause);
}

/**
 * Queues an analytics event without delaying the response: it joins this isolate's next batch,
 * and the request's `waitUntil` keeps the isolate alive until that batch is sent.
 */
export function sendAnalytics(env: Env, ctx: ExecutionContext, event: AnalyticsEvent): void {
  const queue = env.ANALYTICS_QUEUE;
  let batcher = batchers.get(queue);
  if (!batcher) {
    batcher = new Batcher<AnalyticsEvent>(
      async (events) => {
        await sendPacked(queue, events);
      },
      { maxItems: MAX_BATCH, delayMs: BATCH_DELAY_MS, name: "analytics producer" },
    );
    batchers.set(queue, batcher);
  }
  batcher.add(event, (p) => ctx.waitUntil(p));
}

/** One refused message, before its flush adds it up with the others. */
interface Refusal {
  tenantId: string;
  reason: RefusalReason;
  at: number;
  /** How many refusals this one stands for: an event of a flush tried again carries its count. */
  count?: number;
}

/** A flush of refusals as events: one per tenant and reason, dated by the first refusal it covers. */
export function refusalEvents(items: readonly Refusal[]): RefusalEvent[] {
  const byKey = new Map<string, RefusalEvent>();
  for (const r of items) {
    const key = `${r.tenantId}\u0000${r.reason}`;
    const e = byKey.get(key);
    if (e) {
      e.count += r.count ?? 1;
      e.at = Math.min(e.at, r.at);
    } else {
      byKey.set(key, {
        type: "refusal",
        id: crypto.randomUUID(),
        tenantId: r.tenantId,
        reason: r.reason,
        at: r.at,
        count: r.count ?? 1,
      });
    }
  }
  return [...byKey.values()];
}

/** Refusals held before a flush: plain counts, so a flood of 429s costs memory of a few numbers. */
const MAX_REFUSALS = 10_000;
const REFUSAL_DELAY_MS = 1_000;
const refusalBatchers = new WeakMap<object, Batcher<Refusal>>();

/**
 * Counts a message admission refused, by the rate level or budget that refused it. Refusals of one
 * isolate are added up per tenant and reason and leave as one event each per second, not one per
 * refused request: an attacker hammering a limit must not become a flood of queue messages.
 */
export function countRefusal(env: Env, ctx: ExecutionContext, tenantId: string, reason: RefusalReason): void {
  const queue = env.ANALYTICS_QUEUE;
  let batcher = refusalBatchers.get(queue);
  if (!batcher) {
    batcher = new Batcher<Refusal>(
      // Packed by size alone: one pack holds every tenant and reason of the flush that fits it. A
      // pack the queue refused comes back as its events, each with its count (PartialWrite).
      (items) => sendPacked(queue, refusalEvents(items)),
      { maxItems: MAX_REFUSALS, delayMs: REFUSAL_DELAY_MS, name: "refusal counter" },
    );
    refusalBatchers.set(queue, batcher);
  }
  batcher.add({ tenantId, reason, at: Date.now() }, (p) => ctx.waitUntil(p));
}
