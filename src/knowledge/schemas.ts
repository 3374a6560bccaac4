import { z } from "@hono/zod-openapi";
import { MAX_DOCUMENT_CHARS, MAX_PAIRS } from "./limits";

// What a chat path's app needs too lives apart (chat-schemas.ts, limits.ts); the rest gets it here.
export { AnswerSource } from "./chat-schemas";
export {
  MAX_CHUNKS_PER_SOURCE,
  MAX_DOCUMENT_CHARS,
  MAX_FETCH_BYTES,
  MAX_PAIRS,
  MAX_SOURCES_PER_TENANT,
} from "./limits";

const Title = z.string().trim().min(1).max(200);

const DocumentInput = z
  .object({
    type: z.enum(["markdown", "text", "html", "pdf_text"]).openapi({
      description:
        "How content is written; pdf_text is text already extracted from a PDF (no PDF parsing here)",
    }),
    title: Title,
    content: z.string().min(1).max(MAX_DOCUMENT_CHARS),
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .openapi({ description: "Shown as the source's link" }),
  })
  .strict();

const Pair = z
  .object({ question: z.string().trim().min(1).max(500), answer: z.string().trim().min(1).max(4_000) })
  .strict();

const QaInput = z
  .object({
    type: z.literal("qa"),
    title: Title,
    pairs: z.array(Pair).min(1).max(MAX_PAIRS),
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
  })
  .strict();

const UrlInput = z
  .object({
    type: z.literal("url"),
    url: z.url({ protocol: /^https?$/ }).max(2048),
    title: Title.optional(),
  })
  .strict();

/** A new source, or the whole new content of one (an update re-indexes it). */
export const SourceInput = z
  .discriminatedUnion("type", [DocumentInput, QaInput, UrlInput])
  .openapi("KnowledgeSourceInput");
export type SourceInput = z.infer<typeof SourceInput>;

export const Source = z
  .object({
    id: z.uuid(),
    type: z.enum(["markdown", "text", "html", "pdf_text", "qa", "url"]),
    title: z.string(),
    url: z.string().nullable(),
    status: z.enum(["queued", "indexing", "ready", "failed"]),
    error: z.string().nullable(),
    version: z.number().int(),
    chunk_count: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
    indexed_at: z.string().nullable(),
  })
  .openapi("KnowledgeSource");
export type Source = z.infer<typeof Source>;

export const SourceList = z.object({ sources: z.array(Source) }).openapi("KnowledgeSourceList");

export const SourceIdParam = z.object({
  sourceId: z.uuid("not a source id").openapi({ param: { name: "sourceId", in: "path" } }),
});

/** The embedding model as the API shows it: the key is write-only (only whether one is set). */
export const EmbeddingOut = z
  .object({
    provider: z.enum(["none", "workers-ai", "openai"]),
    model: z.string().nullable(),
    base_url: z.string().nullable(),
    api_key_set: z.boolean(),
  })
  .openapi("KnowledgeEmbedding");

const EmbeddingModelName = z.string().trim().min(1).max(200);

/** Semantic search off, or the model that embeds chunks and questions. */
export const EmbeddingInput = z
  .discriminatedUnion("provider", [
    z.object({ provider: z.literal("none") }).strict(),
    z
      .object({
        provider: z.literal("workers-ai"),
        model: EmbeddingModelName.regex(/^@(cf|hf)\//, "a Workers AI model id (@cf/...)"),
      })
      .strict(),
    z
      .object({
        provider: z.literal("openai"),
        model: EmbeddingModelName,
        base_url: z
          .url({ protocol: /^https?$/ })
          .max(2048)
          .openapi({ description: "An OpenAI-compatible API's base URL, e.g. https://api.openai.com/v1" }),
        api_key: z
          .string()
          .min(1)
          .max(500)
          .optional()
          .openapi({ description: "Sent as a bearer token; never returned" }),
      })
      .strict(),
  ])
  .openapi("KnowledgeEmbeddingInput");
export type EmbeddingInput = z.infer<typeof EmbeddingInput>;

const SettingsFields = {
  enabled: z.boolean(),
  unknown_answer_message: z.string().max(1_000),
  min_score: z.number().min(0).max(1),
  max_context_tokens: z.number().int().min(100).max(8_000),
  min_similarity: z.number().min(-1).max(1).openapi({
    description: "The lowest cosine similarity a chunk needs on the semantic side (depends on the model)",
  }),
};

export const Settings = z.object({ ...SettingsFields, embedding: EmbeddingOut }).openapi("KnowledgeSettings");
export type Settings = z.infer<typeof Settings>;

/** The settings as GET shows them, with how far re-embedding has come (src/knowledge/reembed.ts). */
export const SettingsView = Settings.extend({
  embedding_progress: z
    .object({
      chunks: z
        .number()
        .int()
        .openapi({ description: "Chunks of the indexed versions of the tenant's sources" }),
      embedded: z
        .number()
        .int()
        .openapi({ description: "Those with a vector of the configured model (0 without one)" }),
    })
    .openapi({
      description:
        "After the model changes, embedded grows to chunks as sources are re-embedded in the background; until then the others are found by keyword only",
    }),
}).openapi("KnowledgeSettingsView");
export type SettingsView = z.infer<typeof SettingsView>;

export const SettingsPatch = z
  .object({ ...SettingsFields, embedding: EmbeddingInput })
  .partial()
  .strict()
  .openapi("KnowledgeSettingsPatch");
export type SettingsPatch = z.infer<typeof SettingsPatch>;

export const Unanswered = z
  .object({
    questions: z.array(
      z.object({
        question: z.string().openapi({ description: "The latest wording of the question" }),
        normalized: z.string(),
        count: z.number().int(),
        last_asked_at: z.string(),
      }),
    ),
  })
  .openapi("KnowledgeUnanswered");
