/**
 * The ingestion queue: one message per source version. The consumer reads the source (by the
 * tenant AND the id the message names, so a message can never index one tenant's source under
 * another), extracts its text (fetching a URL source), chunks it and writes the chunks in batches
 * that a redelivery cannot duplicate (unique source, version, ordinal). The new version answers
 * once all its chunks landed; the old version's chunks go in the same transaction. Each message
 * stands alone: one source failing is recorded on that source and never holds up the others.
 * The same queue carries re-embedding messages (reembed.ts), one per source, after a model change.
 */
import { and, eq, ne, sql } from "drizzle-orm";
import { z } from "zod";
import { retryDelaySeconds } from "../analytics/consumer";
import { consumeInBackground } from "../background";
import { countTextTokens } from "../chat/tokens";
import type { Db } from "../db/client";
import { type KnowledgeSourceRow, knowledgeChunks, knowledgeSources } from "../db/schema";
import type { Env, RawEnv } from "../env";
import { errorSummary } from "../errors";
import { readCapped } from "../http-body";
import { strictWebhookTargets, webhookTargetProblem } from "../notify/webhook-target";
import type { Services } from "../services";
import { type Chunk, chunkText } from "./chunk";
import { type EmbeddingConfig, EmbeddingError, embeddingText, embedTexts, modelTag } from "./embed";
import { extractText, formatOfContentType, hasHeadings } from "./extract";
import { MAX_CHUNKS_PER_SOURCE, MAX_FETCH_BYTES } from "./limits";
import { EmbedMessage, embedSource, requeueIfModelChanged } from "./reembed";
import { invalidateKnowledge } from "./retrieve";
import { readKnowledgeConfig } from "./service";

/** Deliveries tried before a source is recorded as failed (max_retries + 1 in wrangler.jsonc). */
export const MAX_ATTEMPTS = 5;
/** Rows per INSERT: large sources land in several statements, each idempotent. */
export const INSERT_BATCH = 200;
/** How long a URL source's fetch may take, redirects included. */
const FETCH_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 3;

const IngestMessage = z.object({
  tenantId: z.string().min(1).max(64),
  sourceId: z.uuid(),
  version: z.number().int().min(1),
});

/** A failure that retrying cannot fix (bad content, a page that is not there): recorded at once. */
class SourceProblem extends Error {}

/** Fetches a URL source's page; every redirect hop is checked like the URL itself. */
async function fetchPage(env: Env, start: string): Promise<{ text: string; contentType: string | null }> {
  const strict = strictWebhookTargets(env);
  const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
  let url = start;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const problem = webhookTargetProblem(url, strict);
    if (problem) throw new SourceProblem(`url ${problem}`);
    const res = await fetch(url, {
      redirect: "manual",
      signal,
      headers: { accept: "text/html, text/markdown, text/plain" },
    });
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url).toString();
      continue;
    }
    if (res.status >= 500) throw new Error(`fetching the page answered ${res.status}`);
    if (!res.ok) {
      await res.body?.cancel();
      throw new SourceProblem(`fetching the page answered ${res.status}`);
    }
    const text = await readCapped(res, MAX_FETCH_BYTES);
    if (text === null) throw new SourceProblem(`the page is larger than ${MAX_FETCH_BYTES} bytes`);
    return { text, contentType: res.headers.get("content-type") };
  }
  throw new SourceProblem(`more than ${MAX_REDIRECTS} redirects`);
}

/** The chunks of a source's content. */
export async function chunksOf(env: Env, row: KnowledgeSourceRow): Promise<Chunk[]> {
  if (row.kind === "qa") {
    return (row.pairs ?? []).map((p) => {
      const content = `Q: ${p.question}\nA: ${p.answer}`;
      return { heading: p.question, content, tokens: countTextTokens(content) };
    });
  }
  let text: string;
  let headings: boolean;
  if (row.kind === "url") {
    const page = await fetchPage(env, row.url ?? "");
    const format = formatOfContentType(page.contentType);
    if (!format) throw new SourceProblem(`the page is ${page.contentType}, not text or HTML`);
    text = extractText(page.text, format);
    headings = hasHeadings(format);
  } else {
    const format = row.format ?? "text";
    text = extractText(row.content ?? "", format);
    headings = hasHeadings(format);
  }
  return chunkText(text, headings);
}

/** Sets a source's status for one version; a newer version's row is left alone. */
async function setStatus(
  db: Db,
  row: KnowledgeSourceRow,
  status: "indexing" | "failed",
  error: string | null,
) {
  await db
    .update(knowledgeSources)
    .set({ status, error })
    .where(and(eq(knowledgeSources.id, row.id), eq(knowledgeSources.version, row.version)));
}

/** The vectors of a source's chunks and the model that made them, when the tenant configured one. */
export interface ChunkVectors {
  model: string;
  vectors: number[][];
}

/**
 * Embeds the chunks with the tenant's model. A failure that a retry may cure (a 5xx, a timeout)
 * retries the message; one it cannot, or the last attempt, indexes the source for keyword search
 * only and says so in the log: the source answers either way.
 */
async function embedChunks(
  svc: Services,
  row: KnowledgeSourceRow,
  embedding: EmbeddingConfig | null,
  chunks: readonly Chunk[],
  attempts: number,
): Promise<ChunkVectors | undefined> {
  if (!embedding) return undefined;
  try {
    return {
      model: modelTag(embedding),
      vectors: await embedTexts(svc.env, embedding, chunks.map(embeddingText)),
    };
  } catch (err) {
    if (!(err instanceof EmbeddingError)) throw err;
    if (!err.permanent && attempts < MAX_ATTEMPTS) throw err;
    console.warn(
      JSON.stringify({
        msg: "knowledge: embedding failed, source indexed for keyword search only",
        tenantId: row.tenantId,
        sourceId: row.id,
        error: err.message,
      }),
    );
    return undefined;
  }
}

/** Writes a version's chunks and makes it the one that answers. Safe to run again for the same version. */
export async function indexChunks(
  db: Db,
  row: KnowledgeSourceRow,
  chunks: readonly Chunk[],
  vectors?: ChunkVectors,
): Promise<boolean> {
  for (let i = 0; i < chunks.length; i += INSERT_BATCH) {
    await db
      .insert(knowledgeChunks)
      .values(
        chunks.slice(i, i + INSERT_BATCH).map((c, j) => ({
          tenantId: row.tenantId,
          sourceId: row.id,
          version: row.version,
          ordinal: i + j,
          heading: c.heading,
          content: c.content,
          tokens: c.tokens,
          embedding: vectors?.vectors[i + j] ?? null,
          embeddingModel: vectors ? vectors.model : null,
        })),
      )
      .onConflictDoNothing();
  }
  return db.transaction(async (tx) => {
    const [done] = await tx
      .update(knowledgeSources)
      .set({
        status: "ready",
        error: null,
        indexedVersion: row.version,
        chunkCount: chunks.length,
        indexedAt: sql`now()`,
      })
      .where(and(eq(knowledgeSources.id, row.id), eq(knowledgeSources.version, row.version)))
      .returning({ id: knowledgeSources.id });
    // Updated meanwhile: this version will never answer, so its chunks go instead of the old ones.
    if (!done) {
      await tx
        .delete(knowledgeChunks)
        .where(and(eq(knowledgeChunks.sourceId, row.id), eq(knowledgeChunks.version, row.version)));
      return false;
    }
    await tx
      .delete(knowledgeChunks)
      .where(and(eq(knowledgeChunks.sourceId, row.id), ne(knowledgeChunks.version, row.version)));
    return true;
  });
}

/** Indexes one message's source; what goes wrong is recorded on the source or retried. */
async function ingestOne(svc: Services, m: Message<unknown>): Promise<void> {
  const parsed = IngestMessage.safeParse(m.body);
  if (!parsed.success) {
    console.error(JSON.stringify({ msg: "knowledge: invalid message dropped", id: m.id }));
    return m.ack();
  }
  const { tenantId, sourceId, version } = parsed.data;
  const db = svc.dbh.db;
  let row: KnowledgeSourceRow | undefined;
  try {
    [row] = await db
      .select()
      .from(knowledgeSources)
      .where(and(eq(knowledgeSources.tenantId, tenantId), eq(knowledgeSources.id, sourceId)));
    // Deleted, another tenant's id, or superseded by a newer version with its own message.
    if (!row || row.version !== version || row.indexedVersion === version) return m.ack();
    await setStatus(db, row, "indexing", null);
    const chunks = await chunksOf(svc.env, row);
    if (chunks.length === 0) throw new SourceProblem("no text to index");
    if (chunks.length > MAX_CHUNKS_PER_SOURCE)
      throw new SourceProblem(`${chunks.length} chunks; a source may have at most ${MAX_CHUNKS_PER_SOURCE}`);
    const { embedding } = await readKnowledgeConfig(db, tenantId);
    const vectors = await embedChunks(svc, row, embedding, chunks, m.attempts);
    if (await indexChunks(db, row, chunks, vectors)) {
      await invalidateKnowledge(svc, tenantId);
      await requeueIfModelChanged(svc, tenantId, sourceId, embedding && modelTag(embedding));
    }
    m.ack();
  } catch (err) {
    const permanent = err instanceof SourceProblem;
    if (!permanent && m.attempts < MAX_ATTEMPTS) {
      console.warn(JSON.stringify({ msg: "knowledge: source retried", sourceId, ...errorSummary(err) }));
      return m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    }
    const message = err instanceof Error ? err.message : String(err);
    const reason = permanent ? message : `indexing failed: ${message}`;
    if (row) await setStatus(db, row, "failed", reason.slice(0, 500)).catch(() => undefined);
    m.ack();
  }
}

/**
 * Re-embeds one source's chunks (reembed.ts). Nothing here changes the source's status: a failure
 * that a retry may cure (the provider's 5xx or timeout, Postgres) retries with the usual backoff,
 * keeping what earlier attempts wrote; a permanent one, or the last attempt, leaves the chunks
 * without the model's vectors (found by keyword only) and says so in the log.
 */
async function reembedOne(svc: Services, m: Message<unknown>, msg: EmbedMessage): Promise<void> {
  const { tenantId, sourceId } = msg;
  try {
    await embedSource(svc, msg);
    m.ack();
  } catch (err) {
    const permanent = err instanceof EmbeddingError && err.permanent;
    // Its own messages name the status or the cause, never the key.
    const reason = err instanceof EmbeddingError ? { reason: err.message } : {};
    if (!permanent && m.attempts < MAX_ATTEMPTS) {
      console.warn(
        JSON.stringify({
          msg: "knowledge: re-embedding retried",
          tenantId,
          sourceId,
          ...reason,
          ...errorSummary(err),
        }),
      );
      return m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    }
    console.warn(
      JSON.stringify({
        msg: "knowledge: re-embedding failed, chunks stay keyword-only for this model",
        tenantId,
        sourceId,
        ...reason,
        ...errorSummary(err),
      }),
    );
    m.ack();
  }
}

/** Consumes a batch, message by message: source versions to index, and sources to re-embed. */
export async function consumeKnowledgeBatch(
  messages: readonly Message<unknown>[],
  svc: Services,
): Promise<void> {
  for (const m of messages) {
    const embed = EmbedMessage.safeParse(m.body);
    await (embed.success ? reembedOne(svc, m, embed.data) : ingestOne(svc, m));
  }
}

/** Queue handler of the knowledge ingestion queue. */
export function knowledgeQueue(
  batch: MessageBatch<unknown>,
  raw: RawEnv,
  ctx: ExecutionContext,
): Promise<void> {
  return consumeInBackground(batch, raw, ctx, (svc) => consumeKnowledgeBatch(batch.messages, svc));
}
