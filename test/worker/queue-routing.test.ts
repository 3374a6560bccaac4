import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../src/analytics/consumer";
import { loadEnv, type RawEnv } from "../../src/env";
import worker from "../../src/index";
import {
  ANALYTICS_QUEUE_NAME,
  batchOf,
  conversationEvent,
  countRows,
  deliver,
  turnEvent,
} from "./analytics/helpers";
import { query, sql, uniqueId } from "./helpers";

/** wrangler.jsonc `env.staging`'s queue vars: the same worker, other queue names. */
const STAGING = {
  ANALYTICS_QUEUE_NAME: "chatedge-analytics-staging",
  ANALYTICS_DLQ_NAME: "chatedge-analytics-dlq-staging",
  NOTIFY_QUEUE_NAME: "chatedge-notify-staging",
  KNOWLEDGE_QUEUE_NAME: "chatedge-knowledge-staging",
} satisfies Partial<RawEnv>;

const deadLetters = (tenantId: string) =>
  query<{ queue: string; error: string }>(
    sql`select queue, error from dead_letters where tenant_id = ${tenantId} order by id`,
  );

describe("queue routing by the environment's queue names", () => {
  it("consumes a staging analytics batch when the env names the staging queues", async () => {
    const t = uniqueId("qr");
    const batch = batchOf([turnEvent(t), conversationEvent(t)], { queue: STAGING.ANALYTICS_QUEUE_NAME });
    const res = await deliver(batch, STAGING);
    expect(res.retryMessages).toEqual([]);
    expect(res.explicitAcks.sort()).toEqual(batch.messages.map((m) => m.id).sort());
    expect(await countRows("turns", t)).toBe(1);
    expect(await countRows("conversations", t)).toBe(1);
  });

  it("stores a staging dead letter under the staging analytics queue", async () => {
    const t = uniqueId("qr");
    const res = await deliver(batchOf([turnEvent(t)], { queue: STAGING.ANALYTICS_DLQ_NAME }), STAGING);
    expect(res.explicitAcks).toHaveLength(1);
    expect(await deadLetters(t)).toEqual([
      {
        queue: "chatedge-analytics-staging",
        error: "delivery to chatedge-analytics-staging failed 11 times",
      },
    ]);
  });

  it("consumes the production queue with the default names", async () => {
    const t = uniqueId("qr");
    const res = await deliver(batchOf([turnEvent(t)], { queue: ANALYTICS_QUEUE_NAME }));
    expect(res.explicitAcks).toHaveLength(1);
    expect(await countRows("turns", t)).toBe(1);
  });

  it("retries, with backoff, a batch from a queue the environment does not name", async () => {
    const t = uniqueId("qr");
    // Production's worker handed staging's batch: nothing may be written, nothing lost.
    const batch = batchOf([turnEvent(t), turnEvent(t)], { queue: STAGING.ANALYTICS_QUEUE_NAME });
    const res = await deliver(batch);
    expect(res.explicitAcks).toEqual([]);
    expect(res.retryMessages.map((r) => r.msgId).sort()).toEqual(batch.messages.map((m) => m.id).sort());
    expect(Object.values(res.delays)).toEqual([retryDelaySeconds(1), retryDelaySeconds(1)]);
    expect(await countRows("turns", t)).toBe(0);
    // And the other way round: staging's worker does not consume production's queue.
    const other = await deliver(batchOf([turnEvent(t)], { queue: ANALYTICS_QUEUE_NAME }), STAGING);
    expect(other.retryMessages).toHaveLength(1);
    expect(await countRows("turns", t)).toBe(0);
  });

  it("retries the batch when a queue-name var is malformed, naming it", async () => {
    const bad = { ...env, NOTIFY_QUEUE_NAME: "Chatedge_Notify" };
    const loaded = loadEnv(bad);
    expect(loaded.ok ? [] : loaded.problems).toEqual([
      "NOTIFY_QUEUE_NAME: queue names are [a-z0-9-], at most 63 characters",
    ]);
    const batch = createMessageBatch("chatedge-notify", [
      { id: "m0", timestamp: new Date(), attempts: 1, body: {} },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, bad, ctx);
    const res = await getQueueResult(batch, ctx);
    expect(res.explicitAcks).toEqual([]);
    expect(res.retryMessages.map((r) => r.msgId)).toEqual(["m0"]);
  });
});
