/**
 * Knowledge retrieval at scale, as a module for bench/run.ts or on its own: `node bench/knowledge.ts`.
 * Two tenants with 100,000 chunks each are seeded into a fresh database, chatedge_bench_knowledge:
 * "repeated", 80-word windows of our own docs/*.md (real prose, but each passage ~250 times, so a
 * question matches tens of thousands of chunks: the adversarial case), and "diverse", 80-word random
 * walks over the docs' word pairs (the same vocabulary and word frequencies, every passage new).
 * The worker's own keyword search (src/knowledge/search.ts, over node-postgres under drizzle in place
 * of the Neon driver) answers 6-word questions (windows of the docs, or of the diverse tenant's own
 * chunks), beside the cheapest query on the request path (one row by primary key) on the same connection.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { insertTenants } from "../local/seed-tenants.ts";
import type { AnalyticsDb } from "../src/analytics/sql.ts";
import { searchChunks } from "../src/knowledge/search.ts";
import { pct, round } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const CHUNKS = 100_000;
const WORDS_PER_CHUNK = 80;
const QUESTIONS = 120;
const TENANT = "bench-knowledge";
const SOURCE = "00000000-0000-4000-8000-000000000001";
const DIVERSE_TENANT = "bench-knowledge-diverse";
const DIVERSE_SOURCE = "00000000-0000-4000-8000-000000000002";

/** The words of docs/*.md, in order. */
function docWords(): string[] {
  const dir = fileURLToPath(new URL("../docs", import.meta.url));
  const text = readdirSync(dir)
    .filter((f) => f.endsWith(".md"))
    .map((f) => readFileSync(join(dir, f), "utf8"))
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

/** Seeds a tenant's source with CHUNKS chunks, `texts(batch, seed)` at a time; answers chunks/s. */
async function seed(
  pool: pg.Pool,
  db: AnalyticsDb,
  tenant: string,
  source: string,
  texts: (n: number, seed: number) => string[],
  log: (m: string) => void,
) {
  await insertTenants(pool, [{ id: tenant, name: tenant, systemPrompt: "You help." }]);
  await db.execute(sql`insert into knowledge_sources (id, tenant_id, kind, format, title, status, indexed_version)
    values (${source}, ${tenant}, 'document', 'markdown', 'Docs', 'ready', 1)`);
  const started = performance.now();
  const batch = 5_000;
  for (let i = 0; i < CHUNKS; i += batch) {
    await db.execute(sql`insert into knowledge_chunks (tenant_id, source_id, version, ordinal, heading, content, tokens)
      select ${tenant}, ${source}::uuid, 1, ${i} + o - 1, '', c, 100
      from jsonb_array_elements_text(${JSON.stringify(texts(batch, i + 1))}::jsonb) with ordinality as t(c, o)`);
  }
  const seconds = (performance.now() - started) / 1000;
  await db.execute(sql`vacuum analyze knowledge_chunks`);
  log(`seeded ${CHUNKS} chunks for ${tenant} in ${round(seconds, 1)} s`);
  return CHUNKS / seconds;
}

/** Times `questions` against `tenant`, interleaved with the primary-key lookup; the first 20 warm up. */
async function timeSearches(db: AnalyticsDb, tenant: string, questions: readonly string[]) {
  const search: number[] = [];
  const floor: number[] = [];
  let found = 0;
  // Interleaved, so both sides see the same machine.
  for (let i = 0; i < questions.length; i++) {
    const t0 = performance.now();
    const hits = await searchChunks(db, tenant, questions[i] ?? "");
    const t1 = performance.now();
    await db.execute(sql`select id, title from knowledge_sources where id = ${SOURCE}`);
    const t2 = performance.now();
    if (i < 20) continue;
    search.push(t1 - t0);
    floor.push(t2 - t1);
    if (hits.length > 0) found++;
  }
  return { search, floor, found };
}

export async function run(log: (m: string) => void = () => {}): Promise<BenchRow[]> {
  const url = `${process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432"}/chatedge_bench_knowledge`;
  await recreateDatabase(url);
  await migrateDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => {});
  const db = drizzle({ client: pool }) as unknown as AnalyticsDb;
  try {
    const words = docWords();
    const insertRate = await seed(
      pool,
      db,
      TENANT,
      SOURCE,
      (n, s) => windows(words, WORDS_PER_CHUNK, n, s),
      log,
    );
    await seed(pool, db, DIVERSE_TENANT, DIVERSE_SOURCE, (n, s) => walks(words, WORDS_PER_CHUNK, n, s), log);
    const repeated = await timeSearches(db, TENANT, windows(words, 6, QUESTIONS, 42));
    // Questions a diverse chunk answers: 6-word windows of chunks of that tenant.
    const diverseQuestions = windows(
      walks(words, WORDS_PER_CHUNK, 5_000, 7).join(" ").split(" "),
      6,
      QUESTIONS,
      43,
    );
    const diverse = await timeSearches(db, DIVERSE_TENANT, diverseQuestions);
    log(`${repeated.found} and ${diverse.found} of ${repeated.search.length} questions found chunks`);
    const row = (name: string, metric: string, v: number, b: number | null, lower = true): BenchRow => ({
      name,
      metric,
      value: round(v, 2),
      baseline: b === null ? null : round(b, 2),
      ratio: b === null ? null : round(lower ? b / v : v / b, 3),
    });
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
        "knowledge chunk insert",
        `chunks/s inserted (tsvector generated, GIN index), ${WORDS_PER_CHUNK} words each, 5,000 per statement`,
        insertRate,
        null,
      ),
    ];
  } finally {
    await pool.end();
  }
}

export const knowledgeBench: Bench = {
  name: "knowledge",
  run: async (log) => ({ rows: await run(log), notes: { chunks: CHUNKS, questions: QUESTIONS } }),
};

if (import.meta.main) {
  const rows = await run((m) => console.error(m));
  console.table(rows);
}
