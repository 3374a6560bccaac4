/**
 * Retrieval quality: recall@5 over the labelled questions of bench/knowledge-questions.json (each
 * names the docs/*.md file and the heading path of the chunk that answers it). A question counts
 * as found when a chunk of that file under that heading is among the first five hits, ranked as the
 * chat path ranks them (src/knowledge/search.ts: keyword, or keyword fused with semantic).
 */
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import type { SqlExecutor } from "../src/analytics/sql.ts";
import { type Hit, relevantHits, searchChunks, searchSemantic } from "../src/knowledge/search.ts";

/** A question and the chunk (source title = docs file name, heading path) that answers it. */
export interface LabelledQuestion {
  question: string;
  source: string;
  heading: string;
}

/** The question set. */
export function loadQuestions(): LabelledQuestion[] {
  const file = new URL("./knowledge-questions.json", import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { questions: LabelledQuestion[] }).questions;
}

export interface RecallOptions {
  /** The tenant's thresholds (knowledge settings). */
  minScore: number;
  minSimilarity: number;
  /** The embedding model: its tag on the chunks and how a question is embedded. Absent: keyword only. */
  semantic?: { model: string; embed: (question: string) => number[] | Promise<number[]> };
}

export interface Recall {
  questions: number;
  keyword: number;
  hybrid: number | null;
  /** Labels that name no chunk of the tenant (a heading renamed in the docs): fix the question set. */
  stale: LabelledQuestion[];
  /** Questions the hybrid (else keyword) ranking missed. */
  missed: string[];
}

const K = 5;
const found = (hits: readonly Hit[], q: LabelledQuestion) =>
  hits.slice(0, K).some((h) => h.title === q.source && h.heading === q.heading);

/** Recall@5 of `questions` over `tenantId`'s indexed chunks, keyword and (with a model) hybrid. */
export async function recallAt5(
  db: SqlExecutor,
  tenantId: string,
  questions: readonly LabelledQuestion[],
  opts: RecallOptions,
): Promise<Recall> {
  const present = await db.execute(sql`select distinct s.title, c.heading from knowledge_chunks c
    join knowledge_sources s on s.id = c.source_id and s.indexed_version = c.version
    where c.tenant_id = ${tenantId} and s.tenant_id = ${tenantId}`);
  const labels = new Set(
    (present.rows as { title: string; heading: string }[]).map((r) => `${r.title}\n${r.heading}`),
  );
  let keyword = 0;
  let hybrid = 0;
  const missed: string[] = [];
  for (const q of questions) {
    const k = await searchChunks(db, tenantId, q.question);
    const kHits = relevantHits(k, undefined, opts.minScore, opts.minSimilarity);
    if (found(kHits, q)) keyword++;
    if (!opts.semantic) {
      if (!found(kHits, q)) missed.push(q.question);
      continue;
    }
    const v = await opts.semantic.embed(q.question);
    const s = await searchSemantic(db, tenantId, opts.semantic.model, v);
    const hHits = relevantHits(k, s, opts.minScore, opts.minSimilarity);
    if (found(hHits, q)) hybrid++;
    else missed.push(q.question);
  }
  const n = questions.length;
  return {
    questions: n,
    keyword: keyword / n,
    hybrid: opts.semantic ? hybrid / n : null,
    stale: questions.filter((q) => !labels.has(`${q.source}\n${q.heading}`)),
    missed,
  };
}
