/**
 * Re-embedding when a tenant configures or changes its embedding model. Vectors are tagged with the
 * model that made them (modelTag) and retrieval compares only the configured model's, so a change
 * needs no cleanup: old vectors simply stop counting. What it needs is new vectors: every indexed
 * source with a chunk lacking one of the configured model is queued on the knowledge queue (one
 * message per source), and the consumer embeds those chunks in place, EMBED_BATCH per call, without
 * re-chunking and without touching the source's status: keyword search answers throughout.
 */
import { and, asc, eq, gt, isNotNull, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { knowledgeChunks, knowledgeSources } from "../db/schema";
import type { Env } from "../env";
import { errorSummary } from "../errors";
import type { Services } from "../services";
import { EMBED_BATCH, type EmbeddingConfig, embeddingText, embedTexts, modelTag } from "./embed";
import { readKnowledgeConfig } from "./service";

/** A source whose indexed chunks need vectors of `model` (a modelTag), on the knowledge queue. */
export const EmbedMessage = z.object({
  kind: z.literal("embed"),
  tenantId: z.string().min(1).max(64),
  sourceId: z.uuid(),
  model: z.string().min(1).max(4_096),
});
export type EmbedMessage = z.infer<typeof EmbedMessage>;

/**
 * Chunks one message embeds at most; a larger source goes on in a message of its own, so no
 * delivery runs long (a source may have 2,000 chunks, 32 calls) and a retry redoes little.
 */
export const MAX_EMBEDDED_PER_MESSAGE = 8 * EMBED_BATCH;
/** Queues allow 100 messages per sendBatch. */
const SEND_BATCH = 100;

/** Chunks of the source's indexed version without a vector of `model`. */
const lacking = (model: string) => sql`${knowledgeChunks.embeddingModel} is distinct from ${model}`;

/**
 * Queues re-embedding of the tenant's indexed sources that have chunks without a vector of its
 * configured model: after a model change that is every source; after a key rotation alone, only
 * those an earlier failure left without (none when all went well). Answers how many were queued.
 */
export async function queueEmbedding(env: Env, db: Db, tenantId: string): Promise<number> {
  const { embedding } = await readKnowledgeConfig(db, tenantId);
  if (!embedding) return 0;
  const model = modelTag(embedding);
  const sources = await db
    .select({ id: knowledgeSources.id })
    .from(knowledgeSources)
    .where(
      and(
        eq(knowledgeSources.tenantId, tenantId),
        isNotNull(knowledgeSources.indexedVersion),
        sql`exists (select 1 from ${knowledgeChunks} where ${knowledgeChunks.sourceId} = ${knowledgeSources.id}
          and ${knowledgeChunks.version} = ${knowledgeSources.indexedVersion} and ${lacking(model)})`,
      ),
    )
    .orderBy(asc(knowledgeSources.id));
  for (let i = 0; i < sources.length; i += SEND_BATCH) {
    await env.KNOWLEDGE_QUEUE.sendBatch(
      sources.slice(i, i + SEND_BATCH).map((s) => ({
        body: { kind: "embed", tenantId, sourceId: s.id, model } satisfies EmbedMessage,
        contentType: "json" as const,
      })),
    );
  }
  return sources.length;
}

/**
 * After a version is indexed with the model read before embedding (`used`, null for none): if the
 * tenant's model changed meanwhile, the settings' own messages may have run before these chunks
 * existed, so this source is queued again. A failure is logged; the next settings change heals it.
 */
export async function requeueIfModelChanged(
  svc: Services,
  tenantId: string,
  sourceId: string,
  used: string | null,
): Promise<void> {
  try {
    const { embedding } = await readKnowledgeConfig(svc.dbh.db, tenantId);
    if (!embedding || modelTag(embedding) === used) return;
    const body: EmbedMessage = { kind: "embed", tenantId, sourceId, model: modelTag(embedding) };
    await svc.env.KNOWLEDGE_QUEUE.send(body, { contentType: "json" });
  } catch (err) {
    console.error(
      JSON.stringify({ msg: "knowledge: re-embedding not queued", tenantId, sourceId, ...errorSummary(err) }),
    );
  }
}

/** Writes vectors of `model` to the tenant's chunks by id, in one statement. */
async function writeVectors(
  db: Db,
  msg: EmbedMessage,
  rows: readonly { id: number; embedding: number[] }[],
): Promise<void> {
  // drizzle expands a JS array into a parameter list, so the batch travels as one JSON document.
  await db.execute(sql`
    update ${knowledgeChunks} c set embedding = v.embedding, embedding_model = ${msg.model}
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(id bigint, embedding real[])
    where c.id = v.id and c.tenant_id = ${msg.tenantId} and c.source_id = ${msg.sourceId}
      and c.embedding_model is distinct from ${msg.model}`);
}

/** What one re-embedding message did. */
export type EmbedOutcome = "done" | "stale" | "continued";

/**
 * Embeds the source's indexed chunks that lack a vector of `msg.model`, EMBED_BATCH per call, each
 * batch written as it comes (a retry resumes where the last one stopped). `stale` when the tenant's
 * model is no longer `msg.model` (checked before every batch: the newer model's messages do the
 * work); `continued` when MAX_EMBEDDED_PER_MESSAGE were embedded and a follow-up message was sent.
 * Vectors are always written with the tag of the configuration that made them, so a change racing
 * a batch leaves only vectors that no longer count, never vectors filed under the wrong model.
 * Throws EmbeddingError (the provider) or a database error: the caller retries or gives up.
 */
export async function embedSource(svc: Services, msg: EmbedMessage): Promise<EmbedOutcome> {
  const db = svc.dbh.db;
  let after = 0;
  let embedded = 0;
  while (embedded < MAX_EMBEDDED_PER_MESSAGE) {
    const { embedding } = await readKnowledgeConfig(db, msg.tenantId);
    if (!embedding || modelTag(embedding) !== msg.model) return "stale";
    const chunks = await pendingChunks(db, msg, after);
    if (chunks.length === 0) return "done";
    const vectors = await embedTexts(svc.env, embedding, chunks.map(embeddingText));
    await writeVectors(
      db,
      msg,
      chunks.map((c, i) => ({ id: c.id, embedding: vectors[i] ?? [] })),
    );
    after = chunks[chunks.length - 1]?.id ?? after;
    embedded += chunks.length;
    if (chunks.length < EMBED_BATCH) return "done";
  }
  await svc.env.KNOWLEDGE_QUEUE.send(msg, { contentType: "json" });
  return "continued";
}

/** The next chunks (by id, after `after`) of the source's indexed version lacking a vector of the model. */
function pendingChunks(db: Db, msg: EmbedMessage, after: number) {
  return db
    .select({ id: knowledgeChunks.id, heading: knowledgeChunks.heading, content: knowledgeChunks.content })
    .from(knowledgeChunks)
    .innerJoin(
      knowledgeSources,
      and(
        eq(knowledgeSources.id, knowledgeChunks.sourceId),
        eq(knowledgeSources.indexedVersion, knowledgeChunks.version),
        eq(knowledgeSources.tenantId, msg.tenantId),
      ),
    )
    .where(
      and(
        eq(knowledgeChunks.tenantId, msg.tenantId),
        eq(knowledgeChunks.sourceId, msg.sourceId),
        gt(knowledgeChunks.id, after),
        lacking(msg.model),
      ),
    )
    .orderBy(asc(knowledgeChunks.id))
    .limit(EMBED_BATCH);
}

/** How far the tenant's indexed chunks are embedded by its configured model (the settings GET shows it). */
export async function embeddingProgress(
  db: Db,
  tenantId: string,
  embedding: EmbeddingConfig | null,
): Promise<{ chunks: number; embedded: number }> {
  const model = embedding ? modelTag(embedding) : null;
  const [row] = await db
    .select({
      chunks: sql<string>`count(*)`,
      embedded: sql<string>`count(*) filter (where ${knowledgeChunks.embeddingModel} = ${model})`,
    })
    .from(knowledgeChunks)
    .innerJoin(
      knowledgeSources,
      and(
        eq(knowledgeSources.id, knowledgeChunks.sourceId),
        eq(knowledgeSources.indexedVersion, knowledgeChunks.version),
        eq(knowledgeSources.tenantId, tenantId),
      ),
    )
    .where(eq(knowledgeChunks.tenantId, tenantId));
  return { chunks: Number(row?.chunks ?? 0), embedded: Number(row?.embedded ?? 0) };
}
