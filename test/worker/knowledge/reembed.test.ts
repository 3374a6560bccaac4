import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../../src/analytics/consumer";
import { DEFAULT_QUEUE_NAMES } from "../../../src/env";
import { MAX_ATTEMPTS } from "../../../src/knowledge/consumer";
import { modelTag } from "../../../src/knowledge/embed";
import {
  MAX_EMBEDDED_PER_MESSAGE,
  queueEmbedding,
  requeueIfModelChanged,
} from "../../../src/knowledge/reembed";
import { DEFAULT_UNKNOWN_ANSWER, groundMessage, invalidateKnowledge } from "../../../src/knowledge/retrieve";
import type { SettingsView } from "../../../src/knowledge/schemas";
import { batchOf, deliver } from "../analytics/helpers";
import { chatTenant, FAKE } from "../chat/helpers";
import { eventually } from "../eventually";
import { query, send, sql, uniqueId } from "../helpers";
import {
  addSource,
  BASE_URL,
  converse,
  embeddingCalls,
  MODEL,
  SHIPPING,
  services,
  setEmbedding,
  settled,
  TAG,
  TYPO,
} from "./helpers";

const MODEL_2 = "local-hash-384-v2";
const TAG_2 = modelTag({ provider: "openai", model: MODEL_2, baseUrl: BASE_URL, apiKey: null });
const SHIPPING_REPLY =
  "Shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies. [S1]";

const embedBatch = (bodies: unknown[], attempts = 1) =>
  batchOf(bodies, { queue: DEFAULT_QUEUE_NAMES.KNOWLEDGE_QUEUE_NAME, attempts });

type ChunkRow = { id: string; version: number; model: string | null; vector: string | null };

/** A source's chunks: id, version, the model of its vector and the vector itself, by ordinal. */
const chunksOf = (sourceId: string) =>
  query<ChunkRow>(
    sql`select id, version, embedding_model as model, embedding::text as vector
        from knowledge_chunks where source_id = ${sourceId} order by ordinal`,
  );

async function progress(key: string) {
  const res = await send("GET", "/v1/knowledge/settings", key);
  expect(res.status).toBe(200);
  return ((await res.json()) as SettingsView).embedding_progress;
}

/** Points the tenant at the local embedder straight in Postgres: no queue message races the test's own deliveries. */
async function configureInDb(tenantId: string, model: string, apiKey: string) {
  await query(
    sql`insert into knowledge_settings (tenant_id, embedding_provider, embedding_model, embedding_base_url, embedding_api_key, min_similarity)
        values (${tenantId}, 'openai', ${model}, ${BASE_URL}, ${apiKey}, 0.2)
        on conflict (tenant_id) do update set embedding_provider = 'openai', embedding_model = ${model},
          embedding_base_url = ${BASE_URL}, embedding_api_key = ${apiKey}, min_similarity = 0.15`,
  );
  const svc = services();
  try {
    await invalidateKnowledge(svc, tenantId);
  } finally {
    await svc.dbh.close();
  }
}

/** Faults the fake server answers the next embedding calls made with `apiKey`, one per call. */
async function failEmbeddings(apiKey: string, faults: string[]) {
  const res = await fetch(`${FAKE}/__control`, {
    method: "POST",
    body: JSON.stringify({ key: apiKey, faults }),
  });
  expect(res.status).toBe(200);
}

async function grounding(tenantId: string, question: string) {
  const svc = services();
  try {
    return await groundMessage(svc, tenantId, question);
  } finally {
    await svc.dbh.close();
  }
}

/** A tenant whose shipping policy was indexed before it had any model: keyword only. */
async function keywordShop() {
  const t = await chatTenant();
  const source = await addSource(t.key, {
    type: "markdown",
    title: "Shipping policy",
    content: SHIPPING,
    url: "https://shop.example/shipping",
  });
  expect((await settled(t.key, source.id)).status).toBe("ready");
  return { ...t, source };
}

describe("re-embedding when the model changes", () => {
  it("embeds the chunks indexed before a model was configured, through the queue, without re-chunking", async () => {
    const t = await keywordShop();
    const faq = await addSource(t.key, {
      type: "qa",
      title: "Returns FAQ",
      pairs: [{ question: "Can I return an item?", answer: "Yes, within 30 days of delivery." }],
    });
    await settled(t.key, faq.id);
    const before = await chunksOf(t.source.id);
    expect(before.map((c) => c.model)).toEqual([null, null]);
    expect(await progress(t.key)).toEqual({ chunks: 3, embedded: 0 });
    expect((await converse(t.key, TYPO)).message?.content).toBe(DEFAULT_UNKNOWN_ANSWER);

    const apiKey = `sk-emb-${uniqueId()}`;
    await setEmbedding(t.key, apiKey);
    await eventually(async () => expect(await progress(t.key)).toEqual({ chunks: 3, embedded: 3 }));
    const after = await chunksOf(t.source.id);
    // The same rows (ids, version), now with vectors of the model; one call per source.
    expect(after.map((c) => [c.id, c.version, c.model])).toEqual(before.map((c) => [c.id, 1, TAG]));
    expect(await embeddingCalls(apiKey)).toBe(2);
    const source = (await (await send("GET", `/v1/knowledge/sources/${t.source.id}`, t.key)).json()) as {
      status: string;
      version: number;
    };
    expect([source.status, source.version]).toEqual(["ready", 1]);

    const reply = await converse(t.key, TYPO);
    expect(reply.message?.content).toBe(SHIPPING_REPLY);
    expect(reply.sources.map((s) => s.id)).toEqual([t.source.id]);

    // A key rotation alone queues nothing: every chunk has the model's vector already.
    await setEmbedding(t.key, `sk-emb-${uniqueId()}`);
    const svc = services();
    try {
      expect(await queueEmbedding(svc.env, svc.dbh.db, t.id)).toBe(0);
    } finally {
      await svc.dbh.close();
    }
    // Switched off: nothing is deleted, semantic search stops.
    expect(
      (await send("PATCH", "/v1/knowledge/settings", t.key, { embedding: { provider: "none" } })).status,
    ).toBe(200);
    expect(await progress(t.key)).toEqual({ chunks: 3, embedded: 0 });
    expect((await chunksOf(t.source.id)).map((c) => c.vector)).toEqual(after.map((c) => c.vector));
    expect((await converse(t.key, TYPO)).message?.content).toBe(DEFAULT_UNKNOWN_ANSWER);
  });

  it("never ranks the old model's vectors, and a stale or redelivered message writes nothing", async () => {
    const t = await keywordShop();
    const faq = await addSource(t.key, {
      type: "qa",
      title: "Returns FAQ",
      pairs: [{ question: "Can I return an item?", answer: "Yes, within 30 days of delivery." }],
    });
    await settled(t.key, faq.id);
    const apiKey = `sk-emb-${uniqueId()}`;
    await configureInDb(t.id, MODEL, apiKey);
    const msg = { kind: "embed", tenantId: t.id, sourceId: t.source.id, model: TAG };
    expect((await deliver(embedBatch([msg]))).explicitAcks).toHaveLength(1);
    expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([TAG, TAG]);
    expect((await grounding(t.id, TYPO)).kind).toBe("grounded");

    // The model changed; its messages have not run yet: the old vectors do not count.
    await configureInDb(t.id, MODEL_2, apiKey);
    const waiting = await grounding(t.id, TYPO);
    expect([waiting.kind, waiting.kind !== "off" && waiting.retrieval]).toEqual(["unknown", "hybrid"]);
    expect(await progress(t.key)).toEqual({ chunks: 3, embedded: 0 });

    // A message of the first model arriving late (for the FAQ, which has no vector of it) embeds nothing.
    const calls = await embeddingCalls(apiKey);
    const late = { ...msg, sourceId: faq.id };
    expect((await deliver(embedBatch([late]))).explicitAcks).toHaveLength(1);
    expect((await chunksOf(faq.id)).map((c) => [c.model, c.vector])).toEqual([[null, null]]);
    expect(await embeddingCalls(apiKey)).toBe(calls);

    const current = [
      { ...msg, model: TAG_2 },
      { ...late, model: TAG_2 },
    ];
    expect((await deliver(embedBatch(current))).explicitAcks).toHaveLength(2);
    const v1 = await chunksOf(t.source.id);
    expect(await embeddingCalls(apiKey)).toBe(calls + 2);
    expect([...v1, ...(await chunksOf(faq.id))].map((c) => c.model)).toEqual([TAG_2, TAG_2, TAG_2]);
    expect(await progress(t.key)).toEqual({ chunks: 3, embedded: 3 });
    const found = await grounding(t.id, TYPO);
    expect(found.kind === "grounded" && found.hits.map((h) => h.heading)).toContain(
      "Shipping policy > Shipping costs",
    );

    // Delivered again: nothing is missing, so no call and no write.
    expect((await deliver(embedBatch(current, 2))).explicitAcks).toHaveLength(2);
    expect(await embeddingCalls(apiKey)).toBe(calls + 2);
    expect(await chunksOf(t.source.id)).toEqual(v1);

    // Invalid messages are dropped.
    const junk = await deliver(embedBatch([{ ...msg, sourceId: "x" }, { kind: "embed" }]));
    expect(junk.explicitAcks).toHaveLength(2);
  });

  it("touches nothing of a tenant when another tenant changes its model", async () => {
    const a = await keywordShop();
    const b = await keywordShop();
    const aKey = `sk-emb-${uniqueId()}`;
    const bKey = `sk-emb-${uniqueId()}`;
    await setEmbedding(a.key, aKey);
    await setEmbedding(b.key, bKey);
    await eventually(async () => expect(await progress(a.key)).toEqual({ chunks: 2, embedded: 2 }));
    await eventually(async () => expect(await progress(b.key)).toEqual({ chunks: 2, embedded: 2 }));
    const aBefore = await chunksOf(a.source.id);
    const aCalls = await embeddingCalls(aKey);

    await setEmbedding(b.key, bKey, {
      embedding: { provider: "openai", model: MODEL_2, base_url: BASE_URL, api_key: bKey },
    });
    await eventually(async () =>
      expect((await chunksOf(b.source.id)).map((c) => c.model)).toEqual([TAG_2, TAG_2]),
    );
    // A message naming A's source under B's id finds nothing of A's.
    const forged = { kind: "embed", tenantId: b.id, sourceId: a.source.id, model: TAG_2 };
    expect((await deliver(embedBatch([forged]))).explicitAcks).toHaveLength(1);

    expect(await chunksOf(a.source.id)).toEqual(aBefore);
    expect(await embeddingCalls(aKey)).toBe(aCalls);
    expect(await progress(a.key)).toEqual({ chunks: 2, embedded: 2 });
    expect((await converse(a.key, TYPO)).message?.content).toBe(SHIPPING_REPLY);
  });

  it("keeps keyword answers while the embedder fails, retries with backoff, and a fixed key re-queues", async () => {
    const t = await keywordShop();
    const apiKey = `sk-emb-${uniqueId()}`;
    await configureInDb(t.id, MODEL, apiKey);
    const msg = { kind: "embed", tenantId: t.id, sourceId: t.source.id, model: TAG };

    await failEmbeddings(apiKey, ["503"]);
    const first = await deliver(embedBatch([msg], 1));
    expect(first.retryMessages).toHaveLength(1);
    expect(Object.values(first.delays)).toEqual([retryDelaySeconds(1)]);
    expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([null, null]);
    const keyword = await converse(t.key, "Is shipping free?");
    expect(keyword.sources.map((s) => s.id)).toEqual([t.source.id]);

    await failEmbeddings(apiKey, ["500"]);
    const last = await deliver(embedBatch([msg], MAX_ATTEMPTS));
    expect([last.explicitAcks.length, last.retryMessages.length]).toEqual([1, 0]);
    expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([null, null]);

    const retried = await deliver(embedBatch([msg], 2));
    expect(retried.explicitAcks).toHaveLength(1);
    expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([TAG, TAG]);
    expect((await converse(t.key, TYPO)).message?.content).toBe(SHIPPING_REPLY);

    // A key the provider refuses is permanent: no retry, the chunks keep no vector of the new model.
    const bad = `sk-bad-${uniqueId()}`;
    await configureInDb(t.id, MODEL_2, bad);
    const refused = await deliver(embedBatch([{ ...msg, model: TAG_2 }], 1));
    expect([refused.explicitAcks.length, refused.retryMessages.length]).toEqual([1, 0]);
    expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([TAG, TAG]);
    const fallback = await grounding(t.id, "Is shipping free?");
    expect(fallback.kind !== "off" && fallback.retrieval).toBe("keyword_fallback");
    expect(fallback.kind).toBe("grounded");

    // The tenant fixes the key (same model): what is missing is queued and embedded.
    const good = `sk-emb-${uniqueId()}`;
    await setEmbedding(t.key, good, {
      embedding: { provider: "openai", model: MODEL_2, base_url: BASE_URL, api_key: good },
    });
    await eventually(async () => expect(await progress(t.key)).toEqual({ chunks: 2, embedded: 2 }));
    expect(await embeddingCalls(good)).toBe(1);
  });

  it("the same embedding sent again re-queues what lacks a vector once in the cooldown, not on every PATCH", async () => {
    const t = await keywordShop();
    // A key the embeddings API refuses: nothing is ever embedded, so everything always lacks a vector.
    const bad = `sk-bad-${uniqueId()}`;
    await setEmbedding(t.key, bad);
    await eventually(async () => expect(await embeddingCalls(bad)).toBe(1));
    // Sent again: queued again (a retry after failures), and from then on not within the cooldown.
    for (let i = 0; i < 4; i++) await setEmbedding(t.key, bad);
    await eventually(async () => expect(await embeddingCalls(bad)).toBe(2));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await embeddingCalls(bad)).toBe(2);
    // A new key is a change: queued at once.
    const other = `sk-bad-${uniqueId()}`;
    await setEmbedding(t.key, other);
    await eventually(async () => expect(await embeddingCalls(other)).toBe(1));
  });

  it("queues a source again when the model changed while its new version was being embedded", async () => {
    const t = await keywordShop();
    const apiKey = `sk-emb-${uniqueId()}`;
    await configureInDb(t.id, MODEL_2, apiKey);
    const svc = services();
    try {
      // What the consumer does after indexing a version with the model it read before embedding.
      await requeueIfModelChanged(svc, t.id, t.source.id, TAG_2);
      expect(await embeddingCalls(apiKey)).toBe(0);
      await requeueIfModelChanged(svc, t.id, t.source.id, TAG);
    } finally {
      await svc.dbh.close();
    }
    await eventually(async () =>
      expect((await chunksOf(t.source.id)).map((c) => c.model)).toEqual([TAG_2, TAG_2]),
    );
    expect(await embeddingCalls(apiKey)).toBe(1);
  });

  it("embeds a large source in batches over several messages", async () => {
    const t = await chatTenant();
    const sections = MAX_EMBEDDED_PER_MESSAGE + 8;
    const content = Array.from({ length: sections }, (_, i) => `## Item ${i}\n\nPart ${i} ships.`).join(
      "\n\n",
    );
    const s = await addSource(t.key, { type: "markdown", title: "Catalogue", content });
    expect(await settled(t.key, s.id)).toMatchObject({ status: "ready", chunk_count: sections });
    const apiKey = `sk-emb-${uniqueId()}`;
    await configureInDb(t.id, MODEL, apiKey);
    const msg = { kind: "embed", tenantId: t.id, sourceId: s.id, model: TAG };
    // One message embeds its share in calls of 64 and hands the rest to a message of its own.
    expect((await deliver(embedBatch([msg]))).explicitAcks).toHaveLength(1);
    const counted = () =>
      query<{ n: string }>(
        sql`select count(*) as n from knowledge_chunks where source_id = ${s.id} and embedding_model = ${TAG}`,
      );
    expect(Number((await counted())[0]?.n)).toBeGreaterThanOrEqual(MAX_EMBEDDED_PER_MESSAGE);
    await eventually(async () => expect(Number((await counted())[0]?.n)).toBe(sections));
    expect(await embeddingCalls(apiKey)).toBe(MAX_EMBEDDED_PER_MESSAGE / 64 + 1);
  });
});
