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
