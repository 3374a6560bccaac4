import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Reply } from "../../../src/api-types";
import { loadEnv } from "../../../src/env";
import { modelTag } from "../../../src/knowledge/embed";
import { newServices } from "../../../src/services";
import { FAKE } from "../chat/helpers";
import { eventually } from "../eventually";
import { send } from "../helpers";

/** The local embedder (local/embedder.ts) inside the fake LLM server: any model name is served. */
export const MODEL = "local-hash-384";
export const BASE_URL = `${FAKE}/v1`;
export const TAG = modelTag({ provider: "openai", model: MODEL, baseUrl: BASE_URL, apiKey: null });
/** A misspelt question: no stem of it is in the shipping policy, its character trigrams are. */
export const TYPO = "Is shiping fre?";

/** Embedding requests the local embedder (in the fake LLM server) answered for `apiKey`. */
export async function embeddingCalls(apiKey: string): Promise<number> {
  const res = await fetch(`${FAKE}/__stats?key=${encodeURIComponent(apiKey)}`);
  const stats = (await res.json()) as { requests: Record<string, number> };
  return stats.requests["/v1/embeddings"] ?? 0;
}

/** Configures the local embedder as the tenant's model through the API (`model` defaults to MODEL). */
export async function setEmbedding(key: string, apiKey: string, extra: Record<string, unknown> = {}) {
  const res = await send("PATCH", "/v1/knowledge/settings", key, {
    embedding: { provider: "openai", model: MODEL, base_url: BASE_URL, api_key: apiKey },
    min_similarity: 0.15,
    ...extra,
  });
  expect(res.status).toBe(200);
}

/** The worker's services over the test environment; the caller closes `dbh`. */
export function services() {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return newServices(loaded.env);
}

/** One visitor message through the conversation API. */
export async function converse(key: string, content: string): Promise<Reply> {
  const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
  const res = await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content });
  expect(res.status).toBe(200);
  return (await res.json()) as Reply;
}

export type SourceOut = {
  id: string;
  type: string;
  title: string;
  url: string | null;
  status: string;
  error: string | null;
  version: number;
  chunk_count: number;
};

/** Adds a source with a secret key and answers the created source. */
export async function addSource(key: string, body: unknown): Promise<SourceOut> {
  const res = await send("POST", "/v1/knowledge/sources", key, body);
  if (res.status !== 201) throw new Error(`addSource: ${res.status} ${await res.text()}`);
  return (await res.json()) as SourceOut;
}

/** Waits until the consumer has settled the source (ready or failed) at `version`. */
export function settled(key: string, id: string, version = 1): Promise<SourceOut> {
  return eventually(async () => {
    const res = await send("GET", `/v1/knowledge/sources/${id}`, key);
    const s = (await res.json()) as SourceOut;
    if (s.version !== version || (s.status !== "ready" && s.status !== "failed"))
      throw new Error(`source ${id} is ${s.status} at version ${s.version}`);
    return s;
  });
}

export const SHIPPING = `# Shipping policy

## Delivery times

Orders ship within two business days. Standard delivery takes 3 to 5 business days inside the EU.

## Shipping costs

Shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies.
`;

export const RETURNS_HTML = `<html><head><title>x</title><style>.a{color:red}</style><script>alert("returns")</script></head>
<body><h1>Returns FAQ</h1><p>You can return any item within <b>30 days</b> of delivery &amp; get a full refund.</p>
<h2>Damaged items</h2><p>Send us a photo of the damaged parcel and we replace it for free.</p></body></html>`;
