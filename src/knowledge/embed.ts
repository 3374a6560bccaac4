/**
 * Embeddings for semantic search, from the model the tenant configured: Workers AI through the AI
 * binding (`@cf/baai/bge-small-en-v1.5`, ...) or an OpenAI-compatible embeddings API (`POST
 * {base}/embeddings {model, input}`). Vectors are L2-normalised here, so cosine is a dot product
 * in SQL. A question's vector is cached in Redis under the tenant, the model and the text's hash.
 */
import { z } from "zod";
import { fromBase64Url, toBase64Url } from "../auth/base64url";
import type { AiBinding } from "../chat/providers/workers-ai";
import type { Env } from "../env";
import { readCapped } from "../http-body";
import { strictWebhookTargets, webhookTargetProblem } from "../notify/webhook-target";
import type { Services } from "../services";

/** The embedding model a tenant configured. */
export type EmbeddingConfig =
  | { provider: "workers-ai"; model: string }
  | { provider: "openai"; model: string; baseUrl: string; apiKey: string | null };

/** What embedding needs of the environment: the AI binding when the worker has one. */
export type EmbedEnv = Pick<Env, "ENVIRONMENT"> & { AI?: AiBinding };

/** Texts per call: the consumer embeds a source's chunks this many at a time. */
export const EMBED_BATCH = 64;
/** How long one embeddings call may take; past it the message retries, the question goes keyword only. */
const EMBED_TIMEOUT_MS = 10_000;
/** Larger vectors are refused: a real[] of them is stored per chunk. */
export const MAX_DIMENSIONS = 4_096;
/** A question's vector stays cached this long (the same question asked again costs no call). */
const QUESTION_CACHE_SECONDS = 86_400;
/** Characters of a question embedded, as keyword search reads. */
const MAX_QUESTION_CHARS = 1_000;

/**
 * Embedding failed (the provider, its answer, or the configuration); callers fall back to keyword
 * search. `permanent`: retrying cannot help (a 4xx, a refused URL, a malformed answer).
 */
export class EmbeddingError extends Error {
  constructor(
    message: string,
    readonly permanent = true,
  ) {
    super(message);
  }
}

/**
 * Names the vectors a configuration makes: stored beside each chunk's vector, so a chunk embedded
 * by another model (or another API serving a model of the same name) is never compared.
 */
export function modelTag(cfg: EmbeddingConfig): string {
  return cfg.provider === "workers-ai" ? `workers-ai:${cfg.model}` : `openai:${cfg.baseUrl}#${cfg.model}`;
}

const OpenAiEmbeddings = z.object({
  data: z
    .array(z.object({ embedding: z.array(z.number()).min(1).max(MAX_DIMENSIONS), index: z.number().int() }))
    .min(1)
    .max(EMBED_BATCH),
});
const WorkersAiEmbeddings = z.object({
  data: z.array(z.array(z.number()).min(1).max(MAX_DIMENSIONS)).min(1),
});

/** The text a chunk is embedded as: its headings say what it is about. */
export function embeddingText(c: { heading: string; content: string }): string {
  return c.heading ? `${c.heading}\n${c.content}` : c.content;
}

/** `v` scaled to length 1; a zero vector stays zero (it matches nothing). */
export function normalize(v: readonly number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const n = Math.sqrt(sum);
  return n === 0 ? v.map(() => 0) : v.map((x) => x / n);
}

async function callOpenAi(
  env: EmbedEnv,
  cfg: Extract<EmbeddingConfig, { provider: "openai" }>,
  input: readonly string[],
): Promise<number[][]> {
  const url = `${cfg.baseUrl.replace(/\/+$/, "")}/embeddings`;
  // The base URL is the tenant's: checked like its webhooks, so it cannot reach internal hosts.
  const problem = webhookTargetProblem(url, strictWebhookTargets(env));
  if (problem) throw new EmbeddingError(`embedding base url ${problem}`);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (cfg.apiKey) headers.authorization = `Bearer ${cfg.apiKey}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: cfg.model, input }),
      redirect: "manual",
      signal: AbortSignal.timeout(EMBED_TIMEOUT_MS),
    });
  } catch (err) {
    throw new EmbeddingError(`embeddings call failed: ${err instanceof Error ? err.name : "error"}`, false);
  }
  if (!res.ok) {
    await res.body?.cancel();
    // The status only: an error body may quote the key.
    throw new EmbeddingError(
      `embeddings API answered ${res.status}`,
      res.status >= 400 && res.status < 500 && res.status !== 429,
    );
  }
  // Bounded like every body the platform reads from a tenant's choice of server: a vector's numbers
  // as JSON take at most about 25 bytes each.
  const text = await readCapped(res, 4_096 + input.length * MAX_DIMENSIONS * 25);
  if (text === null) throw new EmbeddingError("embeddings API answered a body larger than its vectors need");
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // As any unexpected body, below.
  }
  const parsed = OpenAiEmbeddings.safeParse(body);
  if (!parsed.success) throw new EmbeddingError("embeddings API answered an unexpected body");
  const out: number[][] = [];
  for (const d of parsed.data.data) {
    if (d.index >= 0 && d.index < input.length) out[d.index] = d.embedding;
  }
  return out;
}

async function callWorkersAi(env: EmbedEnv, model: string, input: readonly string[]): Promise<number[][]> {
  if (!env.AI) throw new EmbeddingError("Workers AI embeddings need the AI binding");
  let raw: unknown;
  try {
    raw = await env.AI.run(model, { text: input }, { signal: AbortSignal.timeout(EMBED_TIMEOUT_MS) });
  } catch (err) {
    throw new EmbeddingError(
      `Workers AI embeddings failed: ${err instanceof Error ? err.message : "error"}`,
      false,
    );
  }
  const parsed = WorkersAiEmbeddings.safeParse(raw);
  if (!parsed.success) throw new EmbeddingError("Workers AI answered an unexpected body");
  return parsed.data.data;
}

/** The normalised vectors of `texts`, in order, EMBED_BATCH per call; every vector has one dimension. */
export async function embedTexts(
  env: EmbedEnv,
  cfg: EmbeddingConfig,
  texts: readonly string[],
): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += EMBED_BATCH) {
    const batch = texts.slice(i, i + EMBED_BATCH);
    const vectors =
      cfg.provider === "openai"
        ? await callOpenAi(env, cfg, batch)
        : await callWorkersAi(env, cfg.model, batch);
    for (let j = 0; j < batch.length; j++) {
      const v = vectors[j];
      if (!v)
        throw new EmbeddingError(`the model returned ${vectors.length} vectors for ${batch.length} texts`);
      if (out[0] && v.length !== out[0].length)
        throw new EmbeddingError(`the model returned vectors of ${out[0].length} and ${v.length} dimensions`);
      out.push(normalize(v));
    }
  }
  return out;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The Redis key of a question's vector: the tenant first, so no tenant ever reads another's entry. */
export async function questionCacheKey(
  tenantId: string,
  cfg: EmbeddingConfig,
  text: string,
): Promise<string> {
  const [model, question] = await Promise.all([sha256(modelTag(cfg)), sha256(text)]);
  return `kq:${tenantId}:${model}:${question}`;
}

/**
 * A vector as Redis keeps it: its float32 bytes in base64url, about a quarter of its JSON (a
 * 1,536-dimension vector: 8 KiB against some 30). Float32 is what the chunks' vectors are stored as
 * (`real[]`), so nothing a search compares is lost.
 */
export function packVector(v: readonly number[]): string {
  return toBase64Url(new Uint8Array(Float32Array.from(v).buffer));
}

/** The vector `packVector` packed; undefined for anything else (an older JSON copy included). */
export function unpackVector(packed: unknown): number[] | undefined {
  if (typeof packed !== "string") return undefined;
  const bytes = fromBase64Url(packed);
  if (!bytes || bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return Array.from(floats);
}

/** A question's vector: from the tenant's cache, else from the model (then cached). */
export async function embedQuestion(
  svc: Pick<Services, "cache"> & { env: EmbedEnv },
  tenantId: string,
  cfg: EmbeddingConfig,
  question: string,
): Promise<number[]> {
  const text = question.slice(0, MAX_QUESTION_CHARS);
  const key = await questionCacheKey(tenantId, cfg, text);
  const cached = unpackVector(await svc.cache.getJson<unknown>(key));
  if (cached) return cached;
  const [v] = await embedTexts(svc.env, cfg, [text]);
  if (!v) throw new EmbeddingError("the model returned no vector");
  await svc.cache.setJson(key, packVector(v), QUESTION_CACHE_SECONDS);
  return v;
}
