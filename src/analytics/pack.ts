/**
 * Analytics events travel packed: the worker's batch of events (up to 100, src/analytics/producer.ts)
 * leaves as one queue message, not one message per event. Every message is a queue operation to
 * write, read and delete (billed per message), and delivering it is work for the queue and the
 * consumer; one pack per batch made that work per batch (bench/chat.ts: it was about a fifth of the
 * OpenAI path's CPU). The consumer unpacks a pack into one message per event, each with its own id
 * and the pack's attempts, so validation, idempotency, dead letters and retries stay per event;
 * the pack itself is acked once every event in it was, and retried (whole: what already landed
 * lands as a duplicate, which writes nothing) when any was. Single events (the Conversation
 * object's, and any sent before packing existed) are still taken as they are.
 */
import type { QueueMessage } from "./consumer.ts";
import type { AnalyticsEvent } from "./events.ts";

/** A queue message holding several events. */
export interface EventPack {
  pack: 1;
  events: AnalyticsEvent[];
}

/**
 * The most a pack's JSON may weigh: a queue message holds at most 128 KB, and the events of one
 * batch are split into as many packs as that takes. An event heavier than this travels alone.
 */
export const PACK_MAX_BYTES = 100 * 1024;

/** Packs `events` into as few packs as fit PACK_MAX_BYTES each (JSON, as the queue sends them). */
export function packEvents(events: readonly AnalyticsEvent[], maxBytes = PACK_MAX_BYTES): EventPack[] {
  if (events.length === 0) return [];
  if (events.length === 1 || jsonBytes(events, maxBytes) <= maxBytes)
    return [{ pack: 1, events: [...events] }];
  const half = Math.ceil(events.length / 2);
  return [...packEvents(events.slice(0, half), maxBytes), ...packEvents(events.slice(half), maxBytes)];
}

/** The UTF-8 size of `value`'s JSON; only counted exactly when it could be over `max`. */
function jsonBytes(value: unknown, max: number): number {
  const text = JSON.stringify(value);
  // A UTF-16 unit is at most 3 UTF-8 bytes: a short text needs no encoding to be known small.
  return text.length * 3 <= max ? text.length : encoder.encode(text).length;
}

const encoder = new TextEncoder();

export function isPack(body: unknown): body is EventPack {
  return (
    typeof body === "object" &&
    body !== null &&
    (body as EventPack).pack === 1 &&
    Array.isArray((body as EventPack).events)
  );
}

/** What the consumer did with one event of a pack: nothing yet, acked it, or retried it. */
type Answer = undefined | "ack" | { delaySeconds: number | undefined };

/**
 * A batch's messages with every pack opened: one message per event (id `<pack id>:<index>`),
 * answered to the pack by `settle()` once the consumer is done with them.
 */
export function unpackMessages(messages: readonly QueueMessage[]): {
  messages: QueueMessage[];
  /** Acks or retries each pack by what its events got; call once the consumer returned. */
  settle(): void;
} {
  const out: QueueMessage[] = [];
  const packs: { msg: QueueMessage; answers: Answer[] }[] = [];
  for (const msg of messages) {
    if (!isPack(msg.body)) {
      out.push(msg);
      continue;
    }
    const answers: Answer[] = msg.body.events.map(() => undefined);
    packs.push({ msg, answers });
    msg.body.events.forEach((body, i) => {
      out.push({
        id: `${msg.id}:${i}`,
        body,
        attempts: msg.attempts,
        timestamp: msg.timestamp,
        ack() {
          answers[i] ??= "ack";
        },
        retry(options) {
          answers[i] = { delaySeconds: options?.delaySeconds };
        },
      });
    });
  }
  return {
    messages: out,
    settle() {
      for (const { msg, answers } of packs) {
        const retries = answers.filter((a): a is Exclude<Answer, "ack" | undefined> => typeof a === "object");
        if (retries.length > 0) {
          const delays = retries.flatMap((r) => (r.delaySeconds === undefined ? [] : [r.delaySeconds]));
          msg.retry(delays.length > 0 ? { delaySeconds: Math.max(...delays) } : undefined);
        }
        // An event nobody answered leaves the pack to the queue's own rule (acked when the handler
        // returns), as an unanswered message would be.
        else if (answers.every((a) => a === "ack")) msg.ack();
      }
    },
  };
}
