/**
 * The local embedding model for `npm run dev`, the tests and the bench: deterministic, offline,
 * no weights. It speaks the OpenAI embeddings wire protocol (`POST /v1/embeddings {model, input}` ->
 * `{object: "list", data: [{object: "embedding", embedding, index}], model, usage}`), served by the
 * fake LLM server (local/fake-llm.ts) and on its own (`node local/embedder.ts --port 8791`).
 *
 * Its vectors are hashed features, not a learned model: word stems (stop words dropped), pairs of
 * neighbouring stems, and character trigrams of each word, weighted 1 + log(count), hashed
 * (FNV-1a, a second bit giving the sign) into DIMENSIONS and L2-normalised. Texts sharing words or word pieces come out close;
 * synonyms ("refund" and "money back") do not. Its quality is lexical, not semantic
 * (docs/knowledge.md says what the hybrid recall measured with it means).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { listen } from "./ports.ts";

/** The vector size: bge-small-en-v1.5's, so storage and the SQL scan cost what the real model's would. */
export const DIMENSIONS = 384;
/** The model name it answers to (any name is accepted and echoed back). */
export const LOCAL_EMBEDDING_MODEL = "local-hash-384";
const MAX_INPUTS = 2_048;
const MAX_INPUT_CHARS = 32_000;

const STOP = new Set(
  "a an and are as at be but by can do does for from has have how i if in is it its me my no not of on or our so that the their then there these this to was we what when where which who why will with you your".split(
    " ",
  ),
);

/** A crude English stem: enough that "refunds", "refunded" and "refunding" meet. */
function stem(w: string): string {
  for (const suffix of ["ing", "ed", "es", "ly", "s"]) {
    if (w.length > suffix.length + 3 && w.endsWith(suffix)) return w.slice(0, -suffix.length);
  }
  return w;
}

/** FNV-1a, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The feature counts of a text, by feature name. */
function features(text: string): Map<string, number> {
  const words = text
    .toLowerCase()
    .normalize("NFKC")
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== "");
  const out = new Map<string, number>();
  const add = (f: string, w: number) => out.set(f, (out.get(f) ?? 0) + w);
  let prev: string | undefined;
  for (const word of words) {
    if (STOP.has(word)) {
      prev = undefined;
      continue;
    }
    const s = stem(word);
    add(`w:${s}`, 1);
    if (prev) add(`b:${prev} ${s}`, 0.5);
    prev = s;
    const padded = `^${word}$`;
    for (let i = 0; i + 3 <= padded.length; i++) add(`c:${padded.slice(i, i + 3)}`, 0.5);
  }
  return out;
}

/** The vector of one text: deterministic, L2-normalised (zero for a text without words). */
export function localEmbedding(text: string): number[] {
  const v = new Array<number>(DIMENSIONS).fill(0);
  for (const [f, count] of features(text)) {
    // Signed (a second bit of the hash picks the sign): colliding features cancel on average, so
    // unrelated texts score near 0 and a similarity floor can tell them from related ones.
    const h = fnv1a(f);
    const i = h % DIMENSIONS;
    v[i] = (v[i] ?? 0) + (h & 0x80000000 ? -1 : 1) * (1 + Math.log(count));
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return norm === 0 ? v : v.map((x) => x / norm);
}

type Answer = { status: number; body: unknown };

const error = (status: number, message: string, type = "invalid_request_error"): Answer => ({
  status,
  body: { error: { message, type, param: null, code: null } },
});

/**
 * Answers one `POST /v1/embeddings` as OpenAI does, errors included (a missing model or input is a
 * 400; keys starting with "sk-bad" get a 401, so callers' failure paths can be exercised).
 */
export function embeddingsResponse(authorization: string | undefined, raw: string): Answer {
  const key = (authorization ?? "").replace(/^Bearer\s+/i, "");
  if (key.startsWith("sk-bad")) return error(401, "Incorrect API key provided.", "invalid_api_key");
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return error(400, "We could not parse the JSON body of your request.");
  }
  const { model, input } = (body ?? {}) as { model?: unknown; input?: unknown };
  if (typeof model !== "string" || model === "") return error(400, "you must provide a model parameter");
  const inputs = typeof input === "string" ? [input] : input;
  if (
    !Array.isArray(inputs) ||
    inputs.length === 0 ||
    inputs.length > MAX_INPUTS ||
    !inputs.every((t): t is string => typeof t === "string" && t.length <= MAX_INPUT_CHARS)
  ) {
    return error(400, `input must be a string or an array of 1 to ${MAX_INPUTS} strings`);
  }
  const tokens = inputs.reduce((n, t) => n + t.split(/\s+/).filter(Boolean).length, 0);
  return {
    status: 200,
    body: {
      object: "list",
      data: inputs.map((t, index) => ({ object: "embedding", embedding: localEmbedding(t), index })),
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    },
  };
}

/** Serves `res` the answer to an embeddings request whose body is `raw`. */
export function serveEmbeddings(req: IncomingMessage, res: ServerResponse, raw: string): void {
  const { status, body } = embeddingsResponse(req.headers.authorization, raw);
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Starts the embedder alone; resolves once it listens (port 0 picks a free port). */
export async function startEmbedder(opts: { port?: number; host?: string } = {}) {
  const host = opts.host ?? "127.0.0.1";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && new URL(req.url ?? "/", "http://x").pathname === "/v1/embeddings")
        return serveEmbeddings(req, res, Buffer.concat(chunks).toString("utf8"));
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
    });
  });
  const port = await listen(server, opts.port ?? 0, host);
  return {
    port,
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8791" } } });
  const e = await startEmbedder({ port: Number(values.port) });
  process.stdout.write(`local embedder on ${e.url} (OpenAI embeddings base ${e.url}/v1)\n`);
}
