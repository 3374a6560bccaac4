/**
 * The rollups: per tenant per UTC day sums (`tenant_daily`), the users active that day
 * (`tenant_daily_users`, which makes daily active users exact) and the response-time histogram
 * (`tenant_latency_daily`); for monitoring, the same counters per UTC hour (`tenant_hourly`,
 * `tenant_latency_hourly`) and since the beginning (`tenant_totals`, `tenant_latency_totals`; per
 * queue `queue_totals`), the first-token histograms of streamed answers (`tenant_first_token_daily`,
 * `tenant_first_token_totals`), the first human reply times of conversations operators answered
 * (`tenant_human_reply_daily`), plus admission refusals, the tool loop's calls (`tool_daily`) and the
 * answers from the tenant's knowledge (`knowledge_daily`, `knowledge_source_daily`).
 * Deltas are gathered from the rows a batch actually inserted and applied in one statement inside
 * the batch's transaction, so a redelivered event adds nothing.
 * The seeding script applies its rows through this same code.
 */
import { type SQL, sql } from "drizzle-orm";
import type { RefusalReason } from "../db/schema.ts";
import type { ConversationEvent, RefusalEvent, SafetyEvent, TurnEvent, TurnKnowledge } from "./events.ts";
import { histogramBound, latencyBucket } from "./latency.ts";
import type { SqlExecutor } from "./sql.ts";

/** The UTC calendar day of an epoch-milliseconds time, as YYYY-MM-DD: the day every rollup uses. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The UTC hour of an epoch-milliseconds time, as an ISO timestamp: the hour every hourly rollup uses. */
export function utcHour(ms: number): string {
  return new Date(Math.floor(ms / 3_600_000) * 3_600_000).toISOString();
}

/**
 * How humans took part in an ended conversation, as stored and counted. Summaries from before
 * human handoff carry none of its fields: no operator could take part then, so a resolved one was
 * resolved by the bot.
 */
export function handling(c: ConversationEvent): {
  humanHandled: boolean;
  firstHumanReplyMs: number | null;
  resolvedBy: "human" | "bot" | null;
} {
  return {
    humanHandled: c.humanHandled ?? false,
    firstHumanReplyMs: c.firstHumanReplyMs ?? null,
    // Only a resolved conversation has a resolver, and one no human resolved was resolved by the bot.
    resolvedBy: c.resolved ? (c.resolvedBy === "human" ? "human" : "bot") : null,
  };
}

/** Increments of the counters `tenant_hourly` and `tenant_totals` share; names are their columns. */
export interface Counters {
  turns: number;
  answered: number;
  errors: number;
  disconnected: number;
  blocked: number;
  human: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_sum_ms: number;
  conversations: number;
  resolved: number;
  escalated: number;
  csat_sum: number;
  csat_count: number;
  conversation_cost_usd: number;
  safety_events: number;
  refused_user: number;
  refused_tenant: number;
  refused_global: number;
  refused_address: number;
  refused_monthly_tokens: number;
  refused_visitor_tokens: number;
  refused_daily_cost: number;
  refused_conversation_cost: number;
  tool_calls: number;
  tool_failures: number;
  human_handled: number;
  resolved_by_human: number;
  human_replies: number;
  human_reply_ms: number;
}

export const COUNTER_KEYS = [
  "turns",
  "answered",
  "errors",
  "disconnected",
  "blocked",
  "human",
  "input_tokens",
  "output_tokens",
  "cost_usd",
  "latency_sum_ms",
  "conversations",
  "resolved",
  "escalated",
  "csat_sum",
  "csat_count",
  "conversation_cost_usd",
  "safety_events",
  "refused_user",
  "refused_tenant",
  "refused_global",
  "refused_address",
  "refused_monthly_tokens",
  "refused_visitor_tokens",
  "refused_daily_cost",
  "refused_conversation_cost",
  "tool_calls",
  "tool_failures",
  "human_handled",
  "resolved_by_human",
  "human_replies",
  "human_reply_ms",
] as const satisfies readonly (keyof Counters)[];

const zeroCounters = (): Counters =>
  Object.fromEntries(COUNTER_KEYS.map((k) => [k, 0])) as unknown as Counters;

/** What a turn adds, the same on its day, its hour and the tenant's totals. */
type TurnSums = Pick<
  Counters,
  | "turns"
  | "answered"
  | "errors"
  | "disconnected"
  | "blocked"
  | "human"
  | "input_tokens"
  | "output_tokens"
  | "cost_usd"
  | "latency_sum_ms"
>;
/** What an ended conversation adds to its day (when it started) and its hour and totals (when it ended). */
type ConversationSums = Pick<
  Counters,
  | "conversations"
  | "resolved"
  | "escalated"
  | "csat_sum"
  | "csat_count"
  | "conversation_cost_usd"
  | "human_handled"
  | "resolved_by_human"
  | "human_replies"
  | "human_reply_ms"
>;

/** Adds one to a histogram bucket's count, keyed by the row's own fields. */
function bump<R extends { count: number }>(m: Map<string, R>, row: Omit<R, "count">): void {
  const key = JSON.stringify(Object.values(row));
  const h = m.get(key);
  if (h) h.count += 1;
  else m.set(key, { ...row, count: 1 } as R);
}

/** The counter column a refusal reason counts in. */
export const refusalColumn = (reason: RefusalReason) => `refused_${reason}` as const;

/** One `tenant_daily` row's increments; names are the table's columns. */
export interface DailyDelta {
  tenant_id: string;
  day: string;
  turns: number;
  answered: number;
  errors: number;
  disconnected: number;
  blocked: number;
  human: number;
  refused: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  latency_sum_ms: number;
  conversations: number;
  conversation_turns: number;
  resolved: number;
  escalated: number;
  csat_sum: number;
  csat_count: number;
  conversation_tokens: number;
  conversation_cost_usd: number;
  safety_events: number;
  human_handled: number;
  resolved_by_human: number;
  human_replies: number;
  human_reply_ms: number;
}

function emptyDelta(tenantId: string, day: string): DailyDelta {
  return {
    tenant_id: tenantId,
    day,
    turns: 0,
    answered: 0,
    errors: 0,
    disconnected: 0,
    blocked: 0,
    human: 0,
    refused: 0,
    input_tokens: 0,
    output_tokens: 0,
    cost_usd: 0,
    latency_sum_ms: 0,
    conversations: 0,
    conversation_turns: 0,
    resolved: 0,
    escalated: 0,
    csat_sum: 0,
    csat_count: 0,
    conversation_tokens: 0,
    conversation_cost_usd: 0,
    safety_events: 0,
    human_handled: 0,
    resolved_by_human: 0,
    human_replies: 0,
    human_reply_ms: 0,
  };
}

/** A latency's Prometheus bucket as a row value: Infinity travels as the text Postgres reads for float8. */
function promLe(latencyMs: number): number | "Infinity" {
  const le = histogramBound(latencyMs);
  return Number.isFinite(le) ? le : "Infinity";
}

const keyOf = (...parts: (string | number)[]) => JSON.stringify(parts);
const byKey = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** What newly inserted rows add to the rollups. */
export class RollupDeltas {
  readonly #daily = new Map<string, DailyDelta>();
  readonly #users = new Map<string, { tenant_id: string; day: string; user_id: string }>();
  readonly #latency = new Map<string, { tenant_id: string; day: string; bucket: number; count: number }>();
  readonly #hourly = new Map<string, Counters & { tenant_id: string; hour: string }>();
  readonly #hourlyLatency = new Map<
    string,
    { tenant_id: string; hour: string; bucket: number; count: number }
  >();
  readonly #totals = new Map<string, Counters & { tenant_id: string }>();
  readonly #tools = new Map<
    string,
    { tenant_id: string; day: string; tool: string; calls: number; failures: number; latency_sum_ms: number }
  >();
  readonly #knowledge = new Map<
    string,
    { tenant_id: string; day: string; answers: number; grounded: number; unanswered: number }
  >();
  readonly #sources = new Map<
    string,
    { tenant_id: string; day: string; source_id: string; citations: number }
  >();
  /** By Prometheus bucket (`le`; Infinity travels as the text Postgres reads for float8). */
  readonly #totalsLatency = new Map<string, { tenant_id: string; le: number | "Infinity"; count: number }>();
  /** First-token times of answered streamed turns, in the response-time histogram's buckets. */
  readonly #firstToken = new Map<string, { tenant_id: string; day: string; bucket: number; count: number }>();
  readonly #totalsFirstToken = new Map<
    string,
    { tenant_id: string; le: number | "Infinity"; count: number; sum_ms: number }
  >();
  /** First human reply times of ended conversations, on their start day, in the same buckets. */
  readonly #humanReply = new Map<string, { tenant_id: string; day: string; bucket: number; count: number }>();

  /** The hourly and all-time counters an event at `at` adds to, as one list to increment both. */
  #counters(tenantId: string, at: number): Counters[] {
    const hour = utcHour(at);
    const hk = keyOf(tenantId, hour);
    let h = this.#hourly.get(hk);
    if (!h) {
      h = { tenant_id: tenantId, hour, ...zeroCounters() };
      this.#hourly.set(hk, h);
    }
    let t = this.#totals.get(tenantId);
    if (!t) {
      t = { tenant_id: tenantId, ...zeroCounters() };
      this.#totals.set(tenantId, t);
    }
    return [h, t];
  }

  #day(tenantId: string, day: string): DailyDelta {
    const key = keyOf(tenantId, day);
    let d = this.#daily.get(key);
    if (!d) {
      d = emptyDelta(tenantId, day);
      this.#daily.set(key, d);
    }
    return d;
  }

  /**
   * A turn counts on the UTC day (and hour) of its time; only answered turns (ok, error) carry a
   * response time. A disconnected turn reached a model but its time was cut by the client: it
   * counts tokens and cost, not latency or the error rate.
   */
  addTurn(t: TurnEvent): void {
    const day = utcDay(t.at);
    const d = this.#day(t.tenantId, day);
    const answered = t.outcome === "ok" || t.outcome === "error";
    const sums: TurnSums[] = [d, ...this.#counters(t.tenantId, t.at)];
    for (const c of sums) {
      c.turns += 1;
      c.input_tokens += t.inputTokens;
      c.output_tokens += t.outputTokens;
      c.cost_usd += t.costUsd;
      if (t.outcome === "blocked") c.blocked += 1;
      if (t.outcome === "human") c.human += 1;
      if (t.outcome === "disconnected") c.disconnected += 1;
      if (answered) {
        c.answered += 1;
        if (t.outcome === "error") c.errors += 1;
        c.latency_sum_ms += t.latencyMs;
      }
    }
    if (t.outcome === "refused") d.refused += 1;
    // The monitoring error rate is "failed LLM calls + tool failures": tool calls count beside turns.
    const tools = t.tools ?? [];
    const failures = tools.filter((x) => !x.ok && x.failure !== "cancelled").length;
    if (tools.length > 0) {
      for (const c of this.#counters(t.tenantId, t.at)) {
        c.tool_calls += tools.length;
        c.tool_failures += failures;
      }
    }
    for (const x of tools) {
      const key = keyOf(t.tenantId, day, x.name);
      const row = this.#tools.get(key) ?? {
        tenant_id: t.tenantId,
        day,
        tool: x.name,
        calls: 0,
        failures: 0,
        latency_sum_ms: 0,
      };
      row.calls += 1;
      if (!x.ok && x.failure !== "cancelled") row.failures += 1;
      row.latency_sum_ms += x.latencyMs;
      this.#tools.set(key, row);
    }
    if (t.knowledge) this.#addKnowledge(t.tenantId, day, t.knowledge);
    if (answered) {
      const bucket = latencyBucket(t.latencyMs);
      bump(this.#latency, { tenant_id: t.tenantId, day, bucket });
      bump(this.#hourlyLatency, { tenant_id: t.tenantId, hour: utcHour(t.at), bucket });
      bump(this.#totalsLatency, { tenant_id: t.tenantId, le: promLe(t.latencyMs) });
    }
    // Only a streamed answer has a first token; alerts stay on the full response time, so no hourly.
    if (answered && t.firstTokenMs !== null) {
      bump(this.#firstToken, { tenant_id: t.tenantId, day, bucket: latencyBucket(t.firstTokenMs) });
      const le = promLe(t.firstTokenMs);
      const key = keyOf(t.tenantId, le);
      const row = this.#totalsFirstToken.get(key) ?? { tenant_id: t.tenantId, le, count: 0, sum_ms: 0 };
      row.count += 1;
      row.sum_ms += t.firstTokenMs;
      this.#totalsFirstToken.set(key, row);
    }
    this.#users.set(keyOf(t.tenantId, day, t.userId), { tenant_id: t.tenantId, day, user_id: t.userId });
  }

  /** An answer the tenant's knowledge was searched for: grounded when it cites a source. */
  #addKnowledge(tenantId: string, day: string, k: TurnKnowledge): void {
    const key = keyOf(tenantId, day);
    const row = this.#knowledge.get(key) ?? {
      tenant_id: tenantId,
      day,
      answers: 0,
      grounded: 0,
      unanswered: 0,
    };
    row.answers += 1;
    if (k.sources.length > 0) row.grounded += 1;
    if (k.unanswered) row.unanswered += 1;
    this.#knowledge.set(key, row);
    for (const source_id of new Set(k.sources)) {
      const sk = keyOf(tenantId, day, source_id);
      const src = this.#sources.get(sk) ?? { tenant_id: tenantId, day, source_id, citations: 0 };
      src.citations += 1;
      this.#sources.set(sk, src);
    }
  }

  /**
   * A conversation counts on the UTC day it started and, for alerts, which look at what just
   * finished, in the hour it ended; with the CSAT that counts for it.
   */
  addConversation(c: ConversationEvent, csat: number | null): void {
    const day = utcDay(c.startedAt);
    const d = this.#day(c.tenantId, day);
    d.conversation_turns += c.turnCount;
    d.conversation_tokens += c.totalTokens;
    const h = handling(c);
    const sums: ConversationSums[] = [d, ...this.#counters(c.tenantId, c.endedAt)];
    for (const s of sums) {
      s.conversations += 1;
      if (c.resolved) s.resolved += 1;
      if (c.escalated) s.escalated += 1;
      if (csat !== null) {
        s.csat_sum += csat;
        s.csat_count += 1;
      }
      s.conversation_cost_usd += c.totalCostUsd;
      if (h.humanHandled) s.human_handled += 1;
      if (h.resolvedBy === "human") s.resolved_by_human += 1;
      if (h.firstHumanReplyMs !== null) {
        s.human_replies += 1;
        s.human_reply_ms += h.firstHumanReplyMs;
      }
    }
    if (h.firstHumanReplyMs !== null) {
      bump(this.#humanReply, { tenant_id: c.tenantId, day, bucket: latencyBucket(h.firstHumanReplyMs) });
    }
  }

  /**
   * Late feedback changed a stored conversation's CSAT from `before` to `after`; the conversation
   * started on `day` and ended at `endedAt` (epoch ms).
   */
  addCsatChange(
    tenantId: string,
    day: string,
    endedAt: number,
    before: number | null,
    after: number | null,
  ): void {
    const sum = (after ?? 0) - (before ?? 0);
    const count = (after === null ? 0 : 1) - (before === null ? 0 : 1);
    for (const c of [this.#day(tenantId, day), ...this.#counters(tenantId, endedAt)]) {
      c.csat_sum += sum;
      c.csat_count += count;
    }
  }

  /** A safety event counts on the UTC day (and hour) it happened. */
  addSafety(s: SafetyEvent): void {
    this.#day(s.tenantId, utcDay(s.at)).safety_events += 1;
    for (const c of this.#counters(s.tenantId, s.at)) c.safety_events += 1;
  }

  /** Refusals count in the hour of the first one they cover (daily figures do not show them). */
  addRefusal(r: RefusalEvent): void {
    const column = refusalColumn(r.reason);
    for (const c of this.#counters(r.tenantId, r.at)) c[column] += r.count;
  }

  get empty(): boolean {
    return this.#daily.size === 0 && this.#totals.size === 0;
  }

  /** Rows in key order, so concurrent batches lock rollup rows in the same order. */
  rows() {
    return {
      daily: byKey(this.#daily).map(([, v]) => v),
      users: byKey(this.#users).map(([, v]) => v),
      latency: byKey(this.#latency).map(([, v]) => v),
      hourly: byKey(this.#hourly).map(([, v]) => v),
      hourlyLatency: byKey(this.#hourlyLatency).map(([, v]) => v),
      totals: byKey(this.#totals).map(([, v]) => v),
      totalsLatency: byKey(this.#totalsLatency).map(([, v]) => v),
      firstToken: byKey(this.#firstToken).map(([, v]) => v),
      totalsFirstToken: byKey(this.#totalsFirstToken).map(([, v]) => v),
      humanReply: byKey(this.#humanReply).map(([, v]) => v),
      tools: byKey(this.#tools).map(([, v]) => v),
      knowledge: byKey(this.#knowledge).map(([, v]) => v),
      sources: byKey(this.#sources).map(([, v]) => v),
    };
  }
}

/** The counter columns, and their increments by an upsert's excluded row (identifiers, not text). */
export const COUNTER_COLUMNS = sql.join(
  COUNTER_KEYS.map((k) => sql.identifier(k)),
  sql`, `,
);
const COUNTER_INCREMENTS = sql.join(
  COUNTER_KEYS.map((k) => sql`${sql.identifier(k)} = t.${sql.identifier(k)} + excluded.${sql.identifier(k)}`),
  sql`, `,
);

/** Adds counter rows (JSON, keyed by `keys`) into `table`: tenant_hourly or tenant_totals. */
function counterUpsert(table: "tenant_hourly" | "tenant_totals", keys: string[], rows: unknown[]) {
  const t = sql.identifier(table);
  const k = sql.join(
    keys.map((c) => sql.identifier(c)),
    sql`, `,
  );
  return sql`
      insert into ${t} as t (${k}, ${COUNTER_COLUMNS})
      select ${k}, ${COUNTER_COLUMNS}
      from jsonb_populate_recordset(null::${t}, ${JSON.stringify(rows)}::jsonb)
      order by ${k}
      on conflict (${k}) do update set ${COUNTER_INCREMENTS}, updated_at = now()`;
}

/**
 * Adds histogram rows (JSON, keyed by `keys`) into a response-time or first-token histogram, daily,
 * hourly or all-time; `sums` are further columns added like the count (the first-token `_sum`).
 */
function histogramUpsert(
  table:
    | "tenant_latency_daily"
    | "tenant_latency_hourly"
    | "tenant_latency_totals"
    | "tenant_first_token_daily"
    | "tenant_first_token_totals"
    | "tenant_human_reply_daily",
  keys: string[],
  rows: unknown[],
  sums: string[] = [],
) {
  const t = sql.identifier(table);
  const ids = (cs: string[]) =>
    sql.join(
      cs.map((c) => sql.identifier(c)),
      sql`, `,
    );
  const k = ids(keys);
  const added = ids(["count", ...sums]);
  const increments = sql.join(
    ["count", ...sums].map(
      (c) => sql`${sql.identifier(c)} = h.${sql.identifier(c)} + excluded.${sql.identifier(c)}`,
    ),
    sql`, `,
  );
  return sql`
      insert into ${t} as h (${k}, ${added})
      select ${k}, ${added}
      from jsonb_populate_recordset(null::${t}, ${JSON.stringify(rows)}::jsonb)
      order by ${k}
      on conflict (${k}) do update set ${increments}`;
}

/** How long one batch's messages waited in the queue, recorded per queue per minute. */
export interface QueueLag {
  queue: string;
  at: number;
  messages: number;
  lag_sum_ms: number;
  lag_max_ms: number;
}

/**
 * Adds the deltas (and a batch's queue lag) to the rollups in one statement: the users not yet seen that day become rows
 * of `tenant_daily_users` and their number is added to `active_users`; histogram buckets and the
 * daily sums are incremented in place.
 */
export async function applyRollups(tx: SqlExecutor, deltas: RollupDeltas, lag?: QueueLag): Promise<void> {
  if (deltas.empty && !lag) return;
  const {
    daily,
    users,
    latency,
    hourly,
    hourlyLatency,
    totals,
    totalsLatency,
    firstToken,
    totalsFirstToken,
    humanReply,
    tools,
    knowledge,
    sources,
  } = deltas.rows();
  const lagRows = lag
    ? [{ ...lag, minute: new Date(Math.floor(lag.at / 60_000) * 60_000).toISOString() }]
    : [];
  // Only the tables this batch adds to are named: each one the statement writes costs Postgres its
  // relation, indexes and locks even for no rows (most batches have no tools, knowledge or humans).
  const upserts: [unknown[], SQL][] = [
    [
      lagRows,
      sql`queue_wait as (
      insert into queue_lag as q (queue, minute, messages, lag_sum_ms, lag_max_ms)
      select queue, minute, messages, lag_sum_ms, lag_max_ms
      from jsonb_to_recordset(${JSON.stringify(lagRows)}::jsonb)
        as r(queue text, minute timestamptz, messages int, lag_sum_ms float8, lag_max_ms float8)
      on conflict (queue, minute) do update set
        messages = q.messages + excluded.messages,
        lag_sum_ms = q.lag_sum_ms + excluded.lag_sum_ms,
        lag_max_ms = greatest(q.lag_max_ms, excluded.lag_max_ms)
    ),`,
    ],
    [
      lagRows,
      sql`queue_total as (
      insert into queue_totals as q (queue, messages, lag_sum_ms)
      select queue, messages, lag_sum_ms
      from jsonb_to_recordset(${JSON.stringify(lagRows)}::jsonb)
        as r(queue text, messages int, lag_sum_ms float8)
      on conflict (queue) do update set
        messages = q.messages + excluded.messages,
        lag_sum_ms = q.lag_sum_ms + excluded.lag_sum_ms
    ),`,
    ],
    [
      hourlyLatency,
      sql`hourly_histogram as (${histogramUpsert("tenant_latency_hourly", ["tenant_id", "hour", "bucket"], hourlyLatency)}),`,
    ],
    [
      totalsLatency,
      sql`totals_histogram as (${histogramUpsert("tenant_latency_totals", ["tenant_id", "le"], totalsLatency)}),`,
    ],
    [
      firstToken,
      sql`first_token_histogram as (${histogramUpsert("tenant_first_token_daily", ["tenant_id", "day", "bucket"], firstToken)}),`,
    ],
    [
      totalsFirstToken,
      sql`first_token_totals as (${histogramUpsert("tenant_first_token_totals", ["tenant_id", "le"], totalsFirstToken, ["sum_ms"])}),`,
    ],
    [
      humanReply,
      sql`human_reply_histogram as (${histogramUpsert("tenant_human_reply_daily", ["tenant_id", "day", "bucket"], humanReply)}),`,
    ],
    [hourly, sql`hourly as (${counterUpsert("tenant_hourly", ["tenant_id", "hour"], hourly)}),`],
    [totals, sql`totals as (${counterUpsert("tenant_totals", ["tenant_id"], totals)}),`],
    [
      tools,
      sql`tool_days as (
      insert into tool_daily as t (tenant_id, day, tool, calls, failures, latency_sum_ms)
      select tenant_id, day, tool, calls, failures, latency_sum_ms
      from jsonb_populate_recordset(null::tool_daily, ${JSON.stringify(tools)}::jsonb)
      order by tenant_id, day, tool
      on conflict (tenant_id, day, tool) do update set
        calls = t.calls + excluded.calls,
        failures = t.failures + excluded.failures,
        latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms
    ),`,
    ],
    [
      knowledge,
      sql`knowledge_days as (
      insert into knowledge_daily as k (tenant_id, day, answers, grounded, unanswered)
      select tenant_id, day, answers, grounded, unanswered
      from jsonb_populate_recordset(null::knowledge_daily, ${JSON.stringify(knowledge)}::jsonb)
      order by tenant_id, day
      on conflict (tenant_id, day) do update set
        answers = k.answers + excluded.answers,
        grounded = k.grounded + excluded.grounded,
        unanswered = k.unanswered + excluded.unanswered
    ),`,
    ],
    [
      sources,
      sql`source_days as (
      insert into knowledge_source_daily as k (tenant_id, day, source_id, citations)
      select tenant_id, day, source_id, citations
      from jsonb_populate_recordset(null::knowledge_source_daily, ${JSON.stringify(sources)}::jsonb)
      order by tenant_id, day, source_id
      on conflict (tenant_id, day, source_id) do update set citations = k.citations + excluded.citations
    ),`,
    ],
    [
      latency,
      sql`histogram as (${histogramUpsert("tenant_latency_daily", ["tenant_id", "day", "bucket"], latency)}),`,
    ],
  ];
  const ctes = upserts.filter(([rows]) => rows.length > 0).map(([, cte]) => cte);
  await tx.execute(sql`
    with ${sql.join(ctes)}
    new_users as (
      insert into tenant_daily_users (tenant_id, day, user_id)
      select tenant_id, day, user_id
      from jsonb_populate_recordset(null::tenant_daily_users, ${JSON.stringify(users)}::jsonb)
      order by tenant_id, day, user_id
      on conflict do nothing
      returning tenant_id, day
    ),
    active as (
      select tenant_id, day, count(*)::integer as n from new_users group by tenant_id, day
    ),
    deltas as (
      select * from jsonb_populate_recordset(null::tenant_daily, ${JSON.stringify(daily)}::jsonb)
    )
    insert into tenant_daily as t (
      tenant_id, day, turns, answered, errors, disconnected, blocked, human, refused, input_tokens,
      output_tokens, cost_usd, latency_sum_ms, active_users, conversations, conversation_turns, resolved,
      escalated, csat_sum, csat_count, conversation_tokens, conversation_cost_usd, safety_events,
      human_handled, resolved_by_human, human_replies, human_reply_ms
    )
    select d.tenant_id, d.day, d.turns, d.answered, d.errors, d.disconnected, d.blocked, d.human,
      d.refused, d.input_tokens,
      d.output_tokens, d.cost_usd, d.latency_sum_ms, coalesce(a.n, 0), d.conversations,
      d.conversation_turns, d.resolved, d.escalated, d.csat_sum, d.csat_count, d.conversation_tokens,
      d.conversation_cost_usd, d.safety_events, d.human_handled, d.resolved_by_human, d.human_replies,
      d.human_reply_ms
    from deltas d left join active a on a.tenant_id = d.tenant_id and a.day = d.day
    order by d.tenant_id, d.day
    on conflict (tenant_id, day) do update set
      turns = t.turns + excluded.turns,
      answered = t.answered + excluded.answered,
      errors = t.errors + excluded.errors,
      disconnected = t.disconnected + excluded.disconnected,
      blocked = t.blocked + excluded.blocked,
      human = t.human + excluded.human,
      refused = t.refused + excluded.refused,
      input_tokens = t.input_tokens + excluded.input_tokens,
      output_tokens = t.output_tokens + excluded.output_tokens,
      cost_usd = t.cost_usd + excluded.cost_usd,
      latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
      active_users = t.active_users + excluded.active_users,
      conversations = t.conversations + excluded.conversations,
      conversation_turns = t.conversation_turns + excluded.conversation_turns,
      resolved = t.resolved + excluded.resolved,
      escalated = t.escalated + excluded.escalated,
      csat_sum = t.csat_sum + excluded.csat_sum,
      csat_count = t.csat_count + excluded.csat_count,
      conversation_tokens = t.conversation_tokens + excluded.conversation_tokens,
      conversation_cost_usd = t.conversation_cost_usd + excluded.conversation_cost_usd,
      safety_events = t.safety_events + excluded.safety_events,
      human_handled = t.human_handled + excluded.human_handled,
      resolved_by_human = t.resolved_by_human + excluded.resolved_by_human,
      human_replies = t.human_replies + excluded.human_replies,
      human_reply_ms = t.human_reply_ms + excluded.human_reply_ms,
      updated_at = now()
  `);
}
