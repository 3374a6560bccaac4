/**
 * The recall@5 harness of bench/knowledge.ts on a small subset: docs chunked by the worker's own
 * chunker, embedded by the local embedder, in a real Postgres; checks the harness, not a figure.
 */
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LabelledQuestion, loadQuestions, recallAt5 } from "../../bench/knowledge-recall.ts";
import { bulkInsert } from "../../bench/lib.ts";
import { localEmbedding } from "../../local/embedder.ts";
import { migrateDatabase, recreateDatabase } from "../../local/migrate.ts";
import { insertTenants } from "../../local/seed-tenants.ts";
import type { AnalyticsDb } from "../../src/analytics/sql.ts";
import { chunkText } from "../../src/knowledge/chunk.ts";
import { TEST_POSTGRES_URL } from "../local-services.ts";

const URL_ = `${TEST_POSTGRES_URL}/chatedge_test_recall_${process.pid}`;
const TENANT = "recall";
const MODEL = "local";
const DOCS = ["knowledge.md", "tools.md"];

let pool: pg.Pool;
let db: AnalyticsDb;

beforeAll(async () => {
  await recreateDatabase(URL_);
  await migrateDatabase(URL_);
  pool = new pg.Pool({ connectionString: URL_, max: 1 });
  // The database is dropped WITH (FORCE) at the end: a connection still closing then gets 57P01,
  // which an unheard pool error turns into an unhandled error that fails the whole run.
  pool.on("error", () => {});
  db = drizzle({ client: pool }) as unknown as AnalyticsDb;
  await insertTenants(pool, [{ id: TENANT, name: TENANT, systemPrompt: "You help." }]);
  for (const [i, name] of DOCS.entries()) {
    const id = `00000000-0000-4000-8000-00000000000${i + 1}`;
    await pool.query(
      `insert into knowledge_sources (id, tenant_id, kind, format, title, status, indexed_version)
       values ($1, $2, 'document', 'markdown', $3, 'ready', 1)`,
      [id, TENANT, name],
    );
    const text = readFileSync(new URL(`../../docs/${name}`, import.meta.url), "utf8");
    const rows = chunkText(text, true).map((c, ordinal) => ({
      ordinal,
      heading: c.heading,
      content: c.content,
      tokens: c.tokens,
      tenant_id: TENANT,
      source_id: id,
      embedding: localEmbedding(c.heading ? `${c.heading}\n${c.content}` : c.content),
      embedding_model: MODEL,
    }));
    await bulkInsert(
      db,
      "knowledge_chunks",
      {
        ordinal: "int",
        heading: "text",
        content: "text",
        tokens: "int",
        tenant_id: "text",
        source_id: "uuid",
        embedding: "real[]",
        embedding_model: "text",
      },
      rows,
      { version: sql`1` },
    );
  }
});

afterAll(async () => {
  await pool?.end();
  const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
  await admin.connect();
  await admin.query(`drop database if exists "chatedge_test_recall_${process.pid}" with (force)`);
  await admin.end();
});

const opts = { minScore: 0.1, minSimilarity: 0.15, semantic: { model: MODEL, embed: localEmbedding } };

describe("recall@5 harness", () => {
  it("labels every question of the set with a chunk that exists", async () => {
    const subset = loadQuestions().filter((q) => DOCS.includes(q.source));
    expect(subset.length).toBeGreaterThanOrEqual(10);
    const r = await recallAt5(db, TENANT, subset, opts);
    expect(r.stale).toEqual([]);
    expect(r.questions).toBe(subset.length);
    expect(r.missed.length).toBe(Math.round((1 - (r.hybrid ?? 0)) * subset.length));
  });

  it("finds a chunk asked in its own words, misses a wrong label, and reports a label with no chunk", async () => {
    const toolLoop = "Tools: the bot acts through workers each tenant deploys > The tool loop";
    const questions: LabelledQuestion[] = [
      { question: "max_tool_steps rounds per message", source: "tools.md", heading: toolLoop },
      // Right words, wrong label: counted as a miss in both rankings.
      { question: "max_tool_steps rounds per message", source: "knowledge.md", heading: toolLoop },
      { question: "anything", source: "tools.md", heading: "Tools > No such heading" },
    ];
    const r = await recallAt5(db, TENANT, questions, opts);
    expect(r.keyword).toBeCloseTo(1 / 3, 6);
    expect(r.hybrid).toBeCloseTo(1 / 3, 6);
    expect(r.stale).toEqual([questions[1], questions[2]]);
    const keywordOnly = await recallAt5(db, TENANT, questions.slice(0, 1), {
      minScore: 0.1,
      minSimilarity: 0.15,
    });
    expect(keywordOnly).toMatchObject({ keyword: 1, hybrid: null });
  });
});
