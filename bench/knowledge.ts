/**
 * Knowledge at scale, as a module for bench/run.ts or on its own: `node bench/knowledge.ts`.
 *
 * Ingestion and quality, through the real worker (bundled, under Miniflare, its queue consumer on,
 * the local embedder of local/embedder.ts over HTTP): docs/*.md added as sources through the admin
 * API, timed until every one is ready, keyword-only and with embeddings, beside a plain multi-row
 * insert of the same chunks; then recall@5 of bench/knowledge-questions.json over the docs indexed
 * once (bench/knowledge-recall.ts), keyword and hybrid.
 *
 * Latency at 100,000 chunks: two tenants are seeded into the same fresh database,
 * chatedge_bench_knowledge: "repeated", 80-word windows of our own docs/*.md (real prose, but each
 * passage ~250 times, so a question matches tens of thousands of chunks: the adversarial case), and
 * "diverse", 80-word random walks over the docs' word pairs (the same vocabulary and word
 * frequencies, every passage new), which also carry 384-dimension vectors. The worker's own searches
 * (src/knowledge/search.ts, over node-postgres under drizzle in place of the Neon driver) answer
 * 6-word questions, beside the cheapest query on the request path (one row by primary key) on the
 * same connection.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { DIMENSIONS, LOCAL_EMBEDDING_MODEL, localEmbedding, startEmbedder } from "../local/embedder.ts";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { insertKey, insertTenants } from "../local/seed-tenants.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import { MAX_SCANNED_VECTORS, relevantHits, searchChunks, searchSemantic } from "../src/knowledge/search.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import { loadQuestions, type Recall, recallAt5 } from "./knowledge-recall.ts";
import { bulkInsert, pct, round } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const CHUNKS = 100_000;
const WORDS_PER_CHUNK = 80;
const QUESTIONS = 120;
const TENANT = "bench-knowledge";
const SOURCE = "00000000-0000-4000-8000-000000000001";
const DIVERSE_TENANT = "bench-knowledge-diverse";
const DIVERSE_SOURCE = "00000000-0000-4000-8000-000000000002";
/** The diverse tenant's chunks carry vectors of this (made-up) model; the scan's cost does not depend on their values. */
const BENCH_MODEL = "bench";
/** Hybrid questions timed (the first 5 warm up): fewer than keyword, each scans up to 5,000 vectors in SQL. */
const HYBRID_QUESTIONS = 40;
/** Each doc is added this many times per ingestion tenant, so the timing spans many queue batches. */
const INGEST_COPIES = 3;
/** The knowledge settings the ingestion and recall tenants use: the defaults, and a floor for the local embedder's cosine. */
const MIN_SCORE = 0.1;
const MIN_SIMILARITY = 0.15;

/** docs/*.md, by file name. */
function docs(): { name: string; text: string }[] {
  const dir = fileURLToPath(new URL("../docs", import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), "utf8") }));
}

/** The words of docs/*.md, in order. */
function docWords(): string[] {
  const text = docs()
    .map((d) => d.text)
    .join("\n");
  return text.split(/\s+/).filter((w) => /[A-Za-z]/.test(w));
}

/** A deterministic generator in [0, 1), so runs compare. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** `n` consecutive words from a random place. */
function windows(words: readonly string[], n: number, count: number, seed: number): string[] {
  const next = random(seed);
  return Array.from({ length: count }, () => {
    const at = Math.floor(next() * (words.length - n));
    return words.slice(at, at + n).join(" ");
  });
}

/** `n`-word random walks over the word pairs of `words`: real vocabulary, passages never repeated. */
function walks(words: readonly string[], n: number, count: number, seed: number): string[] {
  const after = new Map<string, string[]>();
  for (let i = 0; i + 1 < words.length; i++) {
    const w = words[i] ?? "";
    const list = after.get(w) ?? [];
    list.push(words[i + 1] ?? "");
    after.set(w, list);
  }
  const next = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  return Array.from({ length: count }, () => {
    const out = [pick(words)];
    while (out.length < n) {
      const followers = after.get(out[out.length - 1] ?? "");
      out.push(followers ? pick(followers) : pick(words));
    }
    return out.join(" ");
  });
}

/**
 * Seeds a tenant's source with CHUNKS chunks of `texts` in one statement (the caller drops the GIN
 * index first and builds it once after: a bulk build is several times faster than 100,000 inserts
 * into it). With `vectors`, each chunk gets a random DIMENSIONS-vector of BENCH_MODEL, made in SQL.
 */
async function seed(
  pool: pg.Pool,
  db: AnalyticsDb,
  tenant: string,
  source: string,
  texts: string[],
  vectors: boolean,
) {
  await insertTenants(pool, [{ id: tenant, name: tenant, systemPrompt: "You help." }]);
  await db.execute(sql`insert into knowledge_sources (id, tenant_id, kind, format, title, status, indexed_version)
    values (${source}, ${tenant}, 'document', 'markdown', 'Docs', 'ready', 1)`);
  const rows = texts.map((content, ordinal) => ({ ordinal, content }));
  const computed = {
    tenant_id: sql`${tenant}`,
    source_id: sql`${source}::uuid`,
    version: sql`1`,
    heading: sql`''`,
    tokens: sql`100`,
    // r.ordinal keeps the subquery per row (uncorrelated, Postgres would run it once).
    ...(vectors
      ? {
          embedding: sql`(select array_agg(random()::real) from generate_series(1, ${DIMENSIONS}) where r.ordinal >= 0)`,
          embedding_model: sql`${BENCH_MODEL}`,
        }
      : {}),
  };
  await bulkInsert(db, "knowledge_chunks", { ordinal: "int", content: "text" }, rows, computed);
}

/** Times `questions` against `tenant`, interleaved with the primary-key lookup; the first `warm` warm up. */
async function timeSearches(
  db: AnalyticsDb,
  tenant: string,
  questions: readonly string[],
  search: (q: string) => Promise<unknown[]> = (q) => searchChunks(db, tenant, q),
  warm = 20,
) {
  const times: number[] = [];
  const floor: number[] = [];
  let found = 0;
  // Interleaved, so both sides see the same machine.
  for (let i = 0; i < questions.length; i++) {
    const t0 = performance.now();
    const hits = await search(questions[i] ?? "");
    const t1 = performance.now();
    await db.execute(sql`select id, title from knowledge_sources where id = ${SOURCE}`);
    const t2 = performance.now();
    if (i < warm) continue;
    times.push(t1 - t0);
    floor.push(t2 - t1);
    if (hits.length > 0) found++;
  }
  return { search: times, floor, found };
}

/** Hybrid retrieval as the chat path does it with a cached question vector: keyword, semantic, fused. */
function hybridSearch(db: AnalyticsDb, tenant: string) {
  return async (q: string) => {
    const v = localEmbedding(q);
    const [k, sem] = [await searchChunks(db, tenant, q), await searchSemantic(db, tenant, BENCH_MODEL, v)];
    return relevantHits(k, sem, 0, -1);
  };
}

interface Ingestion {
  chunks: number;
  seconds: number;
}

/**
 * Ingestion and recall through the real worker: docs/*.md added through the admin API to a
 * keyword-only tenant and to one with the local embedder (INGEST_COPIES times each), timed from the
 * first request until every source is ready; the same chunks written by a plain multi-row insert;
 * then the docs once to a third tenant, and recall@5 over it.
 */
async function ingestAndRecall(
  url: string,
  pool: pg.Pool,
  db: AnalyticsDb,
  log: (m: string) => void,
): Promise<{
  keywordOnly: Ingestion;
  embedded: Ingestion;
  plain: Ingestion;
  recall: Recall;
  turns: Record<TurnKind, number[]>;
}> {
  const embedder = await startEmbedder();
  const worker = await startBenchWorker(url, {
    consumers: true,
    bindings: { MAX_BODY_BYTES: String(1 << 20) },
  });
  try {
    const admin = async (tenant: string, method: string, path: string, body: unknown) => {
      const res = await fetch(`${worker.url}/admin/tenants/${tenant}${path}`, {
        method,
        headers: { authorization: `Bearer ${worker.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    };
    const tenants = ["bench-ingest-keyword", "bench-ingest-embedded", "bench-recall", "bench-turn-plain"];
    await insertTenants(
      pool,
      tenants.map((id) => ({
        id,
        name: id,
        systemPrompt: "You help.",
        model: "mock",
        monthlyTokenBudget: 10_000_000_000_000,
        rateLimitPerMinute: 1_000_000,
        userRateLimitPerMinute: 100_000,
      })),
    );
    const semantic = {
      embedding: { provider: "openai", model: LOCAL_EMBEDDING_MODEL, base_url: `${embedder.url}/v1` },
      min_similarity: MIN_SIMILARITY,
    };
    await admin("bench-ingest-embedded", "PATCH", "/knowledge/settings", semantic);
    await admin("bench-recall", "PATCH", "/knowledge/settings", semantic);
    const ingest = async (tenant: string, copies: number): Promise<Ingestion> => {
      const started = performance.now();
      for (let c = 0; c < copies; c++) {
        for (const d of docs()) {
          const title = c === 0 ? d.name : `${d.name} (${c + 1})`;
          await admin(tenant, "POST", "/knowledge/sources", { type: "markdown", title, content: d.text });
        }
      }
      const n = copies * docs().length;
      for (;;) {
        const r = await db.execute(sql`select count(*) filter (where status = 'ready') as ready,
            count(*) filter (where status = 'failed') as failed, coalesce(sum(chunk_count), 0) as chunks
          from knowledge_sources where tenant_id = ${tenant}`);
        const row = r.rows[0] as { ready: string; failed: string; chunks: string };
        if (Number(row.failed) > 0) throw new Error(`${tenant}: ${row.failed} sources failed`);
        if (Number(row.ready) === n) {
          const seconds = (performance.now() - started) / 1000;
          return { chunks: Number(row.chunks), seconds };
        }
        if (performance.now() - started > 600_000) throw new Error(`${tenant}: ingestion timed out`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const keywordOnly = await ingest("bench-ingest-keyword", INGEST_COPIES);
    log(`ingested ${keywordOnly.chunks} chunks keyword-only in ${round(keywordOnly.seconds, 1)} s`);
    const embedded = await ingest("bench-ingest-embedded", INGEST_COPIES);
    log(`ingested ${embedded.chunks} chunks with embeddings in ${round(embedded.seconds, 1)} s`);
    const plain = await plainInsert(pool, db, "bench-ingest-keyword", log);
    await ingest("bench-recall", 1);
    const recall = await recallAt5(db, "bench-recall", loadQuestions(), {
      minScore: MIN_SCORE,
      minSimilarity: MIN_SIMILARITY,
      semantic: { model: `openai:${embedder.url}/v1#${LOCAL_EMBEDDING_MODEL}`, embed: localEmbedding },
    });
    if (recall.stale.length > 0) log(`stale labels (no such chunk): ${JSON.stringify(recall.stale)}`);
    log(`missed by hybrid: ${JSON.stringify(recall.missed)}`);
    const turns = await timeTurns(worker.url, pool, {
      plain: "bench-turn-plain",
      keyword: "bench-ingest-keyword",
      hybrid: "bench-recall",
    });
    return { keywordOnly, embedded, plain, recall, turns };
  } finally {
    await worker.stop();
    await embedder.close();
  }
}

type TurnKind = "plain" | "keyword" | "hybrid";
/** Turns timed per tenant (the first 5 warm up), interleaved. */
const TURNS = 45;

/**
 * Whole chat turns through the worker (OpenAI route, the mock model, a secret key), interleaved
 * across a tenant without knowledge, one whose docs are keyword-only and one with the local
 * embedder; questions from the labelled set. No Redis: every hybrid turn embeds its question over
 * HTTP (the cache-miss cost).
 */
async function timeTurns(
  url: string,
  pool: pg.Pool,
  tenants: Record<TurnKind, string>,
): Promise<Record<TurnKind, number[]>> {
  const keys = {} as Record<TurnKind, string>;
  for (const kind of Object.keys(tenants) as TurnKind[])
    keys[kind] = (await insertKey(pool, tenants[kind], "secret", "bench")).key;
  const questions = loadQuestions().map((q) => q.question);
  const out: Record<TurnKind, number[]> = { plain: [], keyword: [], hybrid: [] };
  for (let i = 0; i < TURNS; i++) {
    for (const kind of Object.keys(tenants) as TurnKind[]) {
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${keys[kind]}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "mock",
          messages: [{ role: "user", content: questions[i % questions.length] }],
        }),
      });
      await res.text();
      if (!res.ok) throw new Error(`${kind} turn: ${res.status}`);
      if (i >= 5) out[kind].push(performance.now() - t0);
    }
  }
  return out;
}

/** The baseline: `tenant`'s chunks written again as plain multi-row inserts, 200 rows a statement as the consumer writes. */
async function plainInsert(
  pool: pg.Pool,
  db: AnalyticsDb,
  tenant: string,
  log: (m: string) => void,
): Promise<Ingestion> {
  const r = await db.execute(
    sql`select heading, content, tokens from knowledge_chunks where tenant_id = ${tenant} order by id`,
  );
  const rows = (r.rows as { heading: string; content: string; tokens: number }[]).map((c, ordinal) => ({
    ...c,
    ordinal,
  }));
  const source = "00000000-0000-4000-8000-000000000003";
  await insertTenants(pool, [{ id: "bench-plain", name: "bench-plain", systemPrompt: "You help." }]);
  await db.execute(sql`insert into knowledge_sources (id, tenant_id, kind, format, title, status, indexed_version)
    values (${source}, 'bench-plain', 'document', 'markdown', 'Docs', 'ready', 1)`);
  const started = performance.now();
  for (let i = 0; i < rows.length; i += 200) {
    await bulkInsert(
      db,
      "knowledge_chunks",
      { ordinal: "int", heading: "text", content: "text", tokens: "int" },
      rows.slice(i, i + 200),
      { tenant_id: sql`'bench-plain'`, source_id: sql`${source}::uuid`, version: sql`1` },
    );
  }
  const seconds = (performance.now() - started) / 1000;
  log(`inserted the same ${rows.length} chunks plainly in ${round(seconds, 2)} s`);
  return { chunks: rows.length, seconds };
}

export async function run(log: (m: string) => void = () => {}): Promise<BenchRow[]> {
  const url = `${process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432"}/chatedge_bench_knowledge`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => {});
  const db = drizzle({ client: pool }) as unknown as AnalyticsDb;
  try {
    const { keywordOnly, embedded, plain, recall, turns } = await ingestAndRecall(url, pool, db, log);
    const words = docWords();
    const seeded = performance.now();
    await db.execute(sql`drop index knowledge_chunks_tsv_idx`);
    await seed(pool, db, TENANT, SOURCE, windows(words, WORDS_PER_CHUNK, CHUNKS, 1), false);
    await seed(pool, db, DIVERSE_TENANT, DIVERSE_SOURCE, walks(words, WORDS_PER_CHUNK, CHUNKS, 1), true);
    await db.execute(sql`create index knowledge_chunks_tsv_idx on knowledge_chunks using gin (tsv)`);
    await db.execute(sql`vacuum analyze knowledge_chunks`);
    log(`seeded 2 x ${CHUNKS} chunks in ${round((performance.now() - seeded) / 1000, 1)} s`);
    const repeated = await timeSearches(db, TENANT, windows(words, 6, QUESTIONS, 42));
    // Questions a diverse chunk answers: 6-word windows of chunks of that tenant.
    const diverseQuestions = windows(
      walks(words, WORDS_PER_CHUNK, 5_000, 7).join(" ").split(" "),
      6,
      QUESTIONS,
      43,
    );
    const diverse = await timeSearches(db, DIVERSE_TENANT, diverseQuestions);
    const hybrid = await timeSearches(
      db,
      DIVERSE_TENANT,
      diverseQuestions.slice(0, HYBRID_QUESTIONS),
      hybridSearch(db, DIVERSE_TENANT),
      5,
    );
    log(`${repeated.found} and ${diverse.found} of ${repeated.search.length} questions found chunks`);
    const row = (name: string, metric: string, v: number, b: number | null, lower = true): BenchRow => ({
      name,
      metric,
      value: round(v, 2),
      baseline: b === null ? null : round(b, 2),
      ratio: b === null ? null : round(lower ? b / v : v / b, 3),
    });
    const rate = (i: Ingestion) => i.chunks / i.seconds;
    return [
      row(
        "knowledge keyword p50",
        `p50 ms, top 20 of ${CHUNKS} chunks of one tenant (repeated docs windows, 6-word questions) vs a row by primary key`,
        pct(repeated.search, 0.5),
        pct(repeated.floor, 0.5),
      ),
      row(
        "knowledge keyword p99",
        "p99 ms, the same searches vs the same lookup",
        pct(repeated.search, 0.99),
        pct(repeated.floor, 0.99),
      ),
      row(
        "knowledge keyword p50 (diverse)",
        `p50 ms, top 20 of ${CHUNKS} chunks of another tenant (random walks over the docs' word pairs) vs the same lookup`,
        pct(diverse.search, 0.5),
        pct(diverse.floor, 0.5),
      ),
      row(
        "knowledge keyword p99 (diverse)",
        "p99 ms, the same searches vs the same lookup",
        pct(diverse.search, 0.99),
        pct(diverse.floor, 0.99),
      ),
      row(
        "knowledge hybrid p50 (diverse)",
        `p50 ms, keyword + cosine in SQL (no pgvector) over the first ${MAX_SCANNED_VECTORS} of the tenant's ${CHUNKS} ${DIMENSIONS}-dim real[] vectors + fusion, ${HYBRID_QUESTIONS - 5} questions (vector cached) vs keyword p50 on the same tenant`,
        pct(hybrid.search, 0.5),
        pct(diverse.search, 0.5),
      ),
      row(
        "knowledge hybrid p99 (diverse)",
        "p99 ms, the same vs keyword p99",
        pct(hybrid.search, 0.99),
        pct(diverse.search, 0.99),
      ),
      row(
        "knowledge turn p50 (keyword)",
        `p50 ms, a whole turn through the worker (OpenAI route, mock model) for a tenant with docs/*.md x${INGEST_COPIES} keyword-only vs a tenant without knowledge`,
        pct(turns.keyword, 0.5),
        pct(turns.plain, 0.5),
      ),
      row(
        "knowledge turn p50 (hybrid)",
        "p50 ms, the same for a tenant with docs/*.md and the local embedder (question embedded over HTTP, no cache) vs without knowledge",
        pct(turns.hybrid, 0.5),
        pct(turns.plain, 0.5),
      ),
      row(
        "knowledge turn p99 (hybrid)",
        "p99 ms, the same vs the plain turn's p99",
        pct(turns.hybrid, 0.99),
        pct(turns.plain, 0.99),
      ),
      row(
        "knowledge ingestion",
        `chunks/s, docs/*.md x${INGEST_COPIES} through the admin API, the queue consumer and Postgres (keyword only) vs a plain multi-row insert of the same chunks`,
        rate(keywordOnly),
        rate(plain),
        false,
      ),
      row(
        "knowledge ingestion (embedded)",
        `chunks/s, the same with the local embedder over HTTP (${DIMENSIONS} dims) vs the same plain insert`,
        rate(embedded),
        rate(plain),
        false,
      ),
      row(
        "knowledge recall@5 keyword",
        `share of ${recall.questions} labelled questions over docs/*.md whose chunk is in the first 5 (min_score ${MIN_SCORE})`,
        recall.keyword,
        null,
      ),
      row(
        "knowledge recall@5 hybrid",
        `the same, keyword fused with the local (lexical) embedder (min_similarity ${MIN_SIMILARITY}) vs keyword`,
        recall.hybrid ?? Number.NaN,
        recall.keyword,
        false,
      ),
    ];
  } finally {
    await pool.end();
  }
}

export const knowledgeBench: Bench = {
  name: "knowledge",
  run: async (log) => ({
    rows: await run(log),
    notes: { chunks: CHUNKS, questions: QUESTIONS, hybridQuestions: HYBRID_QUESTIONS },
  }),
};

if (import.meta.main) {
  const rows = await run((m) => console.error(m));
  console.table(rows);
}
