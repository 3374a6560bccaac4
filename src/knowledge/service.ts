/** A tenant's knowledge sources and settings in Postgres: every write audited in its transaction. */
import { and, count, desc, eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import {
  type KnowledgeSourceRow,
  knowledgeSettings,
  knowledgeSources,
  knowledgeUnanswered,
} from "../db/schema";
import type { Env } from "../env";
import { AppError, errorSummary } from "../errors";
import { strictWebhookTargets, webhookTargetProblem } from "../notify/webhook-target";
import { type Actor, audit } from "../tenants/service";
import type { EmbeddingConfig } from "./embed";
import { MAX_SOURCES_PER_TENANT } from "./limits";
import type { EmbeddingInput, Settings, SettingsPatch, Source, SourceInput } from "./schemas";

/** What the ingestion queue carries: which version of which tenant's source to index. */
export interface IngestMessage {
  tenantId: string;
  sourceId: string;
  version: number;
}

/** The settings of a tenant without a row. */
export const DEFAULT_SETTINGS: Settings = {
  enabled: true,
  unknown_answer_message: "",
  min_score: 0.1,
  max_context_tokens: 1500,
  min_similarity: 0.3,
  embedding: { provider: "none", model: null, base_url: null, api_key_set: false },
};

/** A source as the API shows it: its content stays in the database. */
export function sourceOut(r: KnowledgeSourceRow): Source {
  return {
    id: r.id,
    type: r.kind === "document" ? (r.format ?? "text") : r.kind,
    title: r.title,
    url: r.url,
    status: r.status,
    error: r.error,
    version: r.version,
    chunk_count: r.chunkCount,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    indexed_at: r.indexedAt?.toISOString() ?? null,
  };
}

/** Refuses a URL source the platform may not fetch (production: https on a public host). */
function checkUrl(env: Env, input: SourceInput): void {
  if (input.type !== "url") return;
  const problem = webhookTargetProblem(input.url, strictWebhookTargets(env));
  if (problem) {
    throw new AppError("VALIDATION_FAILED", `url ${problem}`, {
      details: [{ path: "url", message: problem }],
    });
  }
}

/** The columns an input sets; the other kinds' columns are cleared so an update can change kind. */
function columnsOf(input: SourceInput) {
  switch (input.type) {
    case "qa":
      return {
        kind: "qa" as const,
        format: null,
        title: input.title,
        url: input.url ?? null,
        content: null,
        pairs: input.pairs,
      };
    case "url":
      return {
        kind: "url" as const,
        format: null,
        title: input.title ?? input.url,
        url: input.url,
        content: null,
        pairs: null,
      };
    default:
      return {
        kind: "document" as const,
        format: input.type,
        title: input.title,
        url: input.url ?? null,
        content: input.content,
        pairs: null,
      };
  }
}

/** Queues a source version for indexing; when the queue refuses, the source says so instead of waiting forever. */
async function enqueue(env: Env, db: Db, row: KnowledgeSourceRow): Promise<KnowledgeSourceRow> {
  const message: IngestMessage = { tenantId: row.tenantId, sourceId: row.id, version: row.version };
  try {
    await env.KNOWLEDGE_QUEUE.send(message, { contentType: "json" });
    return row;
  } catch (err) {
    console.error(
      JSON.stringify({ msg: "knowledge: enqueue failed", sourceId: row.id, ...errorSummary(err) }),
    );
    const [failed] = await db
      .update(knowledgeSources)
      .set({ status: "failed", error: "could not be queued for indexing; update the source to retry" })
      .where(and(eq(knowledgeSources.id, row.id), eq(knowledgeSources.version, row.version)))
      .returning();
    return failed ?? row;
  }
}

/** Creates a source (status queued) and queues its indexing. */
export async function createSource(
  env: Env,
  db: Db,
  who: Actor,
  tenantId: string,
  input: SourceInput,
): Promise<KnowledgeSourceRow> {
  checkUrl(env, input);
  const row = await db.transaction(async (tx) => {
    // Serializes a tenant's creations, so concurrent requests cannot pass the limit together.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`knowledge:${tenantId}`}))`);
    const [n] = await tx
      .select({ n: count() })
      .from(knowledgeSources)
      .where(eq(knowledgeSources.tenantId, tenantId));
    if ((n?.n ?? 0) >= MAX_SOURCES_PER_TENANT) {
      throw new AppError("CONFLICT", `a tenant has at most ${MAX_SOURCES_PER_TENANT} knowledge sources`);
    }
    const [created] = await tx
      .insert(knowledgeSources)
      .values({ id: crypto.randomUUID(), tenantId, ...columnsOf(input) })
      .returning();
    if (!created) throw new Error("insert returned no row");
    await audit(tx, who, tenantId, "knowledge.source.create", created.id, {
      type: input.type,
      title: created.title,
    });
    return created;
  });
  return enqueue(env, db, row);
}

/** Replaces a source's content: a new version, queued; the old chunks answer until it is indexed. */
export async function updateSource(
  env: Env,
  db: Db,
  who: Actor,
  tenantId: string,
  id: string,
  input: SourceInput,
): Promise<KnowledgeSourceRow> {
  checkUrl(env, input);
  const row = await db.transaction(async (tx) => {
    const [updated] = await tx
      .update(knowledgeSources)
      .set({
        ...columnsOf(input),
        status: "queued",
        error: null,
        version: sql`${knowledgeSources.version} + 1`,
        updatedAt: new Date(),
      })
      .where(and(eq(knowledgeSources.tenantId, tenantId), eq(knowledgeSources.id, id)))
      .returning();
    if (!updated) throw new AppError("NOT_FOUND", `no knowledge source ${id}`);
    await audit(tx, who, tenantId, "knowledge.source.update", id, {
      type: input.type,
      version: updated.version,
    });
    return updated;
  });
  return enqueue(env, db, row);
}

/** Deletes a source and, in the same statement (ON DELETE CASCADE), every chunk of it. */
export async function deleteSource(
  db: Db,
  who: Actor,
  tenantId: string,
  id: string,
): Promise<KnowledgeSourceRow> {
  return db.transaction(async (tx) => {
    const [deleted] = await tx
      .delete(knowledgeSources)
      .where(and(eq(knowledgeSources.tenantId, tenantId), eq(knowledgeSources.id, id)))
      .returning();
    if (!deleted) throw new AppError("NOT_FOUND", `no knowledge source ${id}`);
    await audit(tx, who, tenantId, "knowledge.source.delete", id, { title: deleted.title });
    return deleted;
  });
}

/** One source of the tenant; 404 for another tenant's id too. */
export async function getSource(db: Db, tenantId: string, id: string): Promise<KnowledgeSourceRow> {
  const [row] = await db
    .select()
    .from(knowledgeSources)
    .where(and(eq(knowledgeSources.tenantId, tenantId), eq(knowledgeSources.id, id)));
  if (!row) throw new AppError("NOT_FOUND", `no knowledge source ${id}`);
  return row;
}

/** The tenant's sources, newest first. */
export function listSources(db: Db, tenantId: string): Promise<KnowledgeSourceRow[]> {
  return db
    .select()
    .from(knowledgeSources)
    .where(eq(knowledgeSources.tenantId, tenantId))
    .orderBy(desc(knowledgeSources.createdAt), desc(knowledgeSources.id));
}

type SettingsRow = typeof knowledgeSettings.$inferSelect;

/** The model a settings row configures; null when semantic search is off. */
function embeddingOf(row: SettingsRow | undefined): EmbeddingConfig | null {
  if (!row?.embeddingModel) return null;
  if (row.embeddingProvider === "workers-ai") return { provider: "workers-ai", model: row.embeddingModel };
  if (row.embeddingProvider === "openai" && row.embeddingBaseUrl)
    return {
      provider: "openai",
      model: row.embeddingModel,
      baseUrl: row.embeddingBaseUrl,
      apiKey: row.embeddingApiKey,
    };
  return null;
}

function settingsOf(row: SettingsRow | undefined): Settings {
  if (!row) return DEFAULT_SETTINGS;
  return {
    enabled: row.enabled,
    unknown_answer_message: row.unknownAnswerMessage,
    min_score: row.minScore,
    max_context_tokens: row.maxContextTokens,
    min_similarity: row.minSimilarity,
    embedding: {
      provider: row.embeddingProvider,
      model: row.embeddingModel,
      base_url: row.embeddingBaseUrl,
      api_key_set: row.embeddingApiKey !== null,
    },
  };
}

/** The tenant's settings (the defaults when it never set any) and its embedding model, key included. */
export async function readKnowledgeConfig(
  db: Db,
  tenantId: string,
): Promise<{ settings: Settings; embedding: EmbeddingConfig | null }> {
  const [row] = await db.select().from(knowledgeSettings).where(eq(knowledgeSettings.tenantId, tenantId));
  return { settings: settingsOf(row), embedding: embeddingOf(row) };
}

/** The embedding columns of an input: the whole configuration is replaced (an omitted key is no key). */
function embeddingColumns(env: Env, input: EmbeddingInput) {
  switch (input.provider) {
    case "none":
      return {
        embeddingProvider: "none" as const,
        embeddingModel: null,
        embeddingBaseUrl: null,
        embeddingApiKey: null,
      };
    case "workers-ai":
      return {
        embeddingProvider: "workers-ai" as const,
        embeddingModel: input.model,
        embeddingBaseUrl: null,
        embeddingApiKey: null,
      };
    case "openai": {
      const problem = webhookTargetProblem(input.base_url, strictWebhookTargets(env));
      if (problem) {
        throw new AppError("VALIDATION_FAILED", `embedding.base_url ${problem}`, {
          details: [{ path: "embedding.base_url", message: problem }],
        });
      }
      return {
        embeddingProvider: "openai" as const,
        embeddingModel: input.model,
        embeddingBaseUrl: input.base_url,
        embeddingApiKey: input.api_key ?? null,
      };
    }
  }
}

/**
 * Changes the given settings, audited (an embedding key is recorded as set, never its value).
 * Answers them, and whether the embedding model, URL or key is another than before.
 */
export async function writeSettings(
  env: Env,
  db: Db,
  who: Actor,
  tenantId: string,
  patch: SettingsPatch,
): Promise<{ settings: Settings; embeddingChanged: boolean }> {
  const [row] = await db.select().from(knowledgeSettings).where(eq(knowledgeSettings.tenantId, tenantId));
  const current = settingsOf(row);
  const values = {
    enabled: patch.enabled ?? current.enabled,
    unknownAnswerMessage: patch.unknown_answer_message ?? current.unknown_answer_message,
    minScore: patch.min_score ?? current.min_score,
    maxContextTokens: patch.max_context_tokens ?? current.max_context_tokens,
    minSimilarity: patch.min_similarity ?? current.min_similarity,
    ...(patch.embedding ? embeddingColumns(env, patch.embedding) : {}),
    updatedAt: new Date(),
  };
  const logged =
    patch.embedding?.provider === "openai" && patch.embedding.api_key
      ? { ...patch, embedding: { ...patch.embedding, api_key: "(set)" } }
      : patch;
  const written = await db.transaction(async (tx) => {
    const [out] = await tx
      .insert(knowledgeSettings)
      .values({ tenantId, ...values })
      .onConflictDoUpdate({ target: knowledgeSettings.tenantId, set: values })
      .returning();
    await audit(tx, who, tenantId, "knowledge.settings.update", tenantId, logged);
    return out;
  });
  return {
    settings: settingsOf(written),
    embeddingChanged: JSON.stringify(embeddingOf(row)) !== JSON.stringify(embeddingOf(written)),
  };
}

/** Unanswered questions grouped by their normalized text, most asked first. */
export async function unansweredQuestions(db: Db, tenantId: string, limit = 100) {
  const rows = await db
    .select({
      normalized: knowledgeUnanswered.normalized,
      count: count(),
      question: sql<string>`(array_agg(${knowledgeUnanswered.question} order by ${knowledgeUnanswered.at} desc))[1]`,
      last: sql<string>`max(${knowledgeUnanswered.at})`,
    })
    .from(knowledgeUnanswered)
    .where(eq(knowledgeUnanswered.tenantId, tenantId))
    .groupBy(knowledgeUnanswered.normalized)
    .orderBy(desc(count()), desc(sql`max(${knowledgeUnanswered.at})`))
    .limit(limit);
  return rows.map((r) => ({
    question: r.question,
    normalized: r.normalized,
    count: Number(r.count),
    last_asked_at: new Date(r.last).toISOString(),
  }));
}
