/**
 * Keyword search over a tenant's chunks: Postgres full-text search, one statement. Its own module
 * with runtime imports that Node resolves too, so bench/knowledge.ts times the worker's own query.
 */
import { sql } from "drizzle-orm";
import type { SqlExecutor } from "../analytics/sql.ts";

/** Chunks ranked per search; the prompt takes the best of them that fit its token budget. */
export const CANDIDATES = 20;
/** Characters of the visitor's message searched (the start of a long message says what it is about). */
const MAX_QUERY_CHARS = 1_000;

/** One ranked chunk. */
export interface Hit {
  chunkId: number;
  sourceId: string;
  title: string;
  url: string | null;
  heading: string;
  content: string;
  tokens: number;
  score: number;
}

type Row = {
  chunk_id: string;
  source_id: string;
  title: string;
  url: string | null;
  heading: string;
  content: string;
  tokens: number;
  score: number;
};

/** Words of a question that count: the first ones, stemmed, stop words dropped. */
const MAX_QUERY_WORDS = 8;

/**
 * Matches ranked per tier at most. Ranking reads every match's tsvector, so without a bound the
 * common words of a big tenant's question ranked tens of thousands of chunks (seconds, not ms).
 */
export const MAX_RANKED = 200;
/**
 * Cover density (ts_rank_cd) against the pairs query costs ~40 us a chunk, ten times ts_rank: the
 * cheap rank shortlists this many times `limit`, and only those get the score `min_score` applies to.
 */
const SHORTLIST_FACTOR = 2;

/**
 * The tenant's chunks best matching `question`, best first, ranked by cover density normalized to
 * [0, 1). Candidates come in two tiers: chunks with every word, then, only when fewer than `limit`
 * have them all, chunks with some (a visitor's wording rarely matches a document's word for word):
 * any of one or two words, any two of three or more. Each tier ranks at most MAX_RANKED matches,
 * the first the index returns, so the work per message is bounded whatever the tenant's size. Both
 * tiers are scored against the loose query, so `min_score` means the same in either; a chunk with
 * every word ranks before any chunk with only some of them. Only the
 * indexed version of each source answers, so a re-index in progress never doubles a source.
 */
export async function searchChunks(
  db: SqlExecutor,
  tenantId: string,
  question: string,
  limit = CANDIDATES,
): Promise<Hit[]> {
  const text = question.slice(0, MAX_QUERY_CHARS);
  // to_tsvector stems and drops stop words as plainto_tsquery does; its lexemes, quoted for
  // to_tsquery, are combined in 'simple' (which keeps the stems as they are). Materialized, so each
  // query is built once rather than once per matching row; the loose tier's condition on the
  // strict tier's count is a one-time filter, so it does not scan at all when not needed.
  const rows = await db.execute(sql`
    with l as materialized (
      select coalesce(array_agg(quoted order by first), '{}') as ls from (
        select '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''' as quoted, min(pos) as first
        from unnest(to_tsvector('english', ${text})) as u(lexeme, positions, weights), unnest(positions) as pos
        group by lexeme order by first limit ${MAX_QUERY_WORDS}
      ) w
    ), q as materialized (
      select to_tsquery('simple', array_to_string(ls, ' & ')) as strict,
        to_tsquery('simple', case when cardinality(ls) <= 2 then array_to_string(ls, ' | ') else (
          select string_agg('(' || a || ' & ' || b || ')', ' | ')
          from unnest(ls) with ordinality as x(a, i), unnest(ls) with ordinality as y(b, j) where i < j
        ) end) as loose
      from l
    ), strict as materialized (
      select c.id, c.tsv, ts_rank(c.tsv, q.loose, 32) as pre, 0 as tier
      from q, knowledge_chunks c
      join knowledge_sources s on s.id = c.source_id and s.indexed_version = c.version
      where c.tenant_id = ${tenantId} and s.tenant_id = ${tenantId} and c.tsv @@ q.strict
      limit ${MAX_RANKED}
    ), loose as materialized (
      select c.id, c.tsv, ts_rank(c.tsv, q.loose, 32) as pre, 1 as tier
      from q, knowledge_chunks c
      join knowledge_sources s on s.id = c.source_id and s.indexed_version = c.version
      where c.tenant_id = ${tenantId} and s.tenant_id = ${tenantId} and c.tsv @@ q.loose
        and (select count(*) from strict) < ${limit}
      limit ${MAX_RANKED}
    ), shortlist as (
      select distinct on (id) id, tsv, pre, tier from (select * from strict union all select * from loose) r
      order by id, tier
    ), best as (
      select s.id, s.tier, ts_rank_cd(s.tsv, q.loose, 32) as score
      from (select id, tsv, tier from shortlist order by tier, pre desc, id limit ${limit * SHORTLIST_FACTOR}) s, q
      order by s.tier, score desc, s.id limit ${limit}
    )
    select c.id as chunk_id, c.source_id, s.title, s.url, c.heading, c.content, c.tokens, best.score
    from best
    join knowledge_chunks c on c.id = best.id and c.tenant_id = ${tenantId}
    join knowledge_sources s on s.id = c.source_id and s.tenant_id = ${tenantId}
    order by best.tier, best.score desc, c.id`);
  return (rows.rows as Row[]).map((r) => ({
    chunkId: Number(r.chunk_id),
    sourceId: r.source_id,
    title: r.title,
    url: r.url,
    heading: r.heading,
    content: r.content,
    tokens: r.tokens,
    score: Number(r.score),
  }));
}

/** The Postgres array literal of a vector: drizzle would expand a JS array into a parameter list. */
function arrayLiteral(v: readonly number[]): string {
  return `{${v.map((x) => (Number.isFinite(x) ? x : 0)).join(",")}}`;
}

// Per isolate (one database per deployment): whether the server has pgvector, asked once.
let pgvector: Promise<boolean> | undefined;

/** Whether the database has the pgvector extension (Neon does; the local PostgreSQL 15 does not). */
export function hasPgvector(db: SqlExecutor): Promise<boolean> {
  if (pgvector) return pgvector;
  const asked = (async () => {
    const r = await db.execute(
      sql`select exists (select 1 from pg_extension where extname = 'vector') as on`,
    );
    return (r.rows[0] as { on?: boolean } | undefined)?.on === true;
  })();
  pgvector = asked;
  // A failed look-up is asked again next time rather than remembered as "no pgvector".
  asked.catch(() => {
    if (pgvector === asked) pgvector = undefined;
  });
  return asked;
}

/**
 * Vectors compared per message without pgvector: the cosine is computed in SQL (~0.1 ms a
 * 384-dimension vector here), so a tenant's first MAX_SCANNED_VECTORS embedded chunks are searched,
 * exactly, and a bigger tenant's others only by keyword (docs/knowledge.md: 100,000 took 15 s).
 */
export const MAX_SCANNED_VECTORS = 5_000;

/**
 * The tenant's chunks nearest to `vector` (normalised), by cosine similarity, best first: only
 * chunks embedded by `model` (modelTag) of each source's indexed version. With pgvector the same
 * real[] column is cast to `vector` and ordered by cosine distance (an index on the cast can serve
 * it); without, the dot product is computed in SQL over at most MAX_SCANNED_VECTORS of them.
 */
export async function searchSemantic(
  db: SqlExecutor,
  tenantId: string,
  model: string,
  vector: readonly number[],
  limit = CANDIDATES,
): Promise<Hit[]> {
  const q = arrayLiteral(vector);
  const rows = (await hasPgvector(db))
    ? await db.execute(sql`
        select c.id as chunk_id, c.source_id, s.title, s.url, c.heading, c.content, c.tokens,
          1 - (c.embedding::vector <=> ${q}::real[]::vector) as score
        from knowledge_chunks c
        join knowledge_sources s on s.id = c.source_id and s.indexed_version = c.version and s.tenant_id = ${tenantId}
        where c.tenant_id = ${tenantId} and c.embedding_model = ${model}
        order by c.embedding::vector <=> ${q}::real[]::vector, c.id
        limit ${limit}`)
    : // Scores only id and vector, bounded; the text is read for the best `limit` alone.
      await db.execute(sql`
        with scored as materialized (
          select v.id, (select sum(a * b) from unnest(v.embedding, ${q}::real[]) as t(a, b)) as score
          from (
            select c.id, c.embedding from knowledge_chunks c
            join knowledge_sources s on s.id = c.source_id and s.indexed_version = c.version and s.tenant_id = ${tenantId}
            where c.tenant_id = ${tenantId} and c.embedding_model = ${model}
            limit ${MAX_SCANNED_VECTORS}
          ) v
          order by score desc nulls last, v.id
          limit ${limit}
        )
        select c.id as chunk_id, c.source_id, s.title, s.url, c.heading, c.content, c.tokens, scored.score
        from scored
        join knowledge_chunks c on c.id = scored.id and c.tenant_id = ${tenantId}
        join knowledge_sources s on s.id = c.source_id and s.tenant_id = ${tenantId}
        order by scored.score desc nulls last, c.id`);
  return (rows.rows as Row[]).map((r) => ({
    chunkId: Number(r.chunk_id),
    sourceId: r.source_id,
    title: r.title,
    url: r.url,
    heading: r.heading,
    content: r.content,
    tokens: r.tokens,
    score: Number(r.score),
  }));
}

/** Reciprocal rank fusion's constant: ranks past the first few weigh about the same. */
export const RRF_K = 60;

/**
 * Reciprocal rank fusion of ranked lists: a chunk scores the sum of 1 / (RRF_K + rank) over the
 * lists it is in (rank from 1), best first; a chunk keeps the fields of the first list it is in.
 */
export function fuseRanks(lists: readonly (readonly Hit[])[], limit = CANDIDATES): Hit[] {
  const fused = new Map<number, { hit: Hit; rrf: number }>();
  for (const list of lists) {
    list.forEach((hit, i) => {
      const seen = fused.get(hit.chunkId);
      const add = 1 / (RRF_K + i + 1);
      if (seen) seen.rrf += add;
      else fused.set(hit.chunkId, { hit, rrf: add });
    });
  }
  return [...fused.values()]
    .sort((a, b) => b.rrf - a.rrf || a.hit.chunkId - b.hit.chunkId)
    .slice(0, limit)
    .map((f) => f.hit);
}

/**
 * What the prompt draws from, best first: the keyword hits reaching `minScore`, fused with the
 * semantic hits reaching `minSimilarity` when there was a semantic search (retrieve.ts; the recall
 * bench ranks with this same function).
 */
export function relevantHits(
  keyword: readonly Hit[],
  semantic: readonly Hit[] | undefined,
  minScore: number,
  minSimilarity: number,
): Hit[] {
  const k = keyword.filter((h) => h.score >= minScore);
  if (!semantic) return k;
  return fuseRanks([k, semantic.filter((h) => h.score >= minSimilarity)]);
}
