/**
 * `npm run loadtest`: many tenants, many concurrent visitors holding multi-turn conversations
 * through the real worker (bundled by wrangler, run by the Miniflare API with its queue consumers,
 * Postgres through the WebSocket relay, Redis through the Upstash bridge), for a bounded time.
 * It reports throughput, latency percentiles, refusals by level and errors, then checks the books:
 *
 * 1. limits: per tenant, no trailing 60 s window of admitted turns (Postgres `turns`, outcome ok,
 *    by `at`) holds more than the tenant's limit, none per user more than the user limit, none
 *    across all tenants more than the global limit; tokens used never exceed the monthly budget,
 *    cost never the daily budget, no conversation's cost its cap;
 * 2. tokens and cost: per tenant, what the replies said == what Postgres recorded == what the
 *    tenant's gate counts (`GET /v1/usage`);
 * 3. conversations: every conversation the visitors ended is in Postgres exactly once, with the
 *    turns and tokens the visitors saw, and nothing else is.
 *
 * Usage: node bench/loadtest.ts [--tenants 50] [--visitors 1000] [--duration 60] [--turns 4]
 *   [--think-ms 250] [--ramp-up 5] [--global-limit 10000] [--keep-db] [--json]
 * Exits non-zero when any check fails or any request errored (5xx, network, unexpected 4xx).
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { Agent, type Dispatcher, fetch as undiciFetch } from "undici";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { startUpstashBridge } from "../local/upstash-bridge.ts";
import { generateKey, randomToken } from "../src/auth/keys.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import { pct, round } from "./lib.ts";

const WINDOW_MS = 60_000;
/** The platform's default global limit (src/admission/types.ts); passed explicitly so the check knows it. */
const DEFAULT_GLOBAL_LIMIT = 10_000;
/** The relative tolerance of cost comparisons: the gate sums integer nano-dollars, replies are floats. */
const COST_REL_TOLERANCE = 1e-9;

export interface LoadtestOptions {
  /** Number of tenants; their limits vary by index (see `profileOf`). */
  tenants: number;
  /** Concurrent visitors, spread round-robin over the tenants; each holds one conversation at a time. */
  visitors: number;
  /** How long visitors start new messages; conversations open at the deadline are ended after it. */
  durationSec: number;
  /** Messages per conversation (a refusal counts as one; a conversation-cost refusal ends it early). */
  turnsPerConversation: number;
  /** Longest pause before each message, uniformly random from 0 (desynchronizes the visitors). */
  thinkMs?: number;
  /** Visitors arrive spread evenly over this long (default 5 s, at most a quarter of the run). */
  rampUpSec?: number;
  /** GLOBAL_LIMIT_PER_MINUTE given to the worker, and checked. */
  globalLimitPerMinute?: number;
  /** Server root, without a database (default BENCH_POSTGRES_URL or postgres://postgres@127.0.0.1:5432). */
  postgresUrl?: string;
  redisUrl?: string;
  /** How long to wait for settlements and the analytics queue after the load (default 120 s). */
  drainTimeoutSec?: number;
  /** Any single request slower than this counts as a network error (default 60 s). */
  requestTimeoutMs?: number;
  /** Keep the database chatedge_loadtest_<pid> afterwards, for inspection. */
  keepDatabase?: boolean;
  log?: (msg: string) => void;
}

/** Which limits a tenant runs with; the low ones make sure every refusal level actually happens. */
type ProfileName = "tenant-rate" | "user-rate" | "token-budget" | "cost-caps" | "generous";

interface Profile {
  name: ProfileName;
  rateLimitPerMinute: number;
  userRateLimitPerMinute: number;
  monthlyTokenBudget: number;
  dailyCostBudgetUsd: number | null;
  conversationCostCapUsd: number;
}

const GENEROUS = {
  rateLimitPerMinute: 1_000_000,
  userRateLimitPerMinute: 100_000,
  monthlyTokenBudget: 1_000_000_000_000,
  dailyCostBudgetUsd: null,
  conversationCostCapUsd: 100_000,
};

/**
 * Tenant i's limits: of every ten, two have a low tenant rate, one a low per-user rate, one a small
 * monthly token budget, one small cost caps (daily and per conversation), five are generous.
 * Sizes, for the mock (priced like gpt-4o-mini: $0.15 / $0.60 per million): a message reserves its
 * input bound (about 6,030 tokens: the 6,000-token history budget plus the message) and
 * max_tokens (200), about 6,230 tokens or $0.001; it then uses 50-200 tokens, about $0.00003.
 * So 15,000 tokens a month holds two messages in flight and runs out after some tens; a $0.00096
 * conversation cap refuses the third message of a conversation (the second is degraded to fewer
 * output tokens); $0.004 a day holds four messages in flight.
 */
export function profileOf(i: number): Profile {
  switch (i % 10) {
    case 0:
    case 5:
      return { ...GENEROUS, name: "tenant-rate", rateLimitPerMinute: 60, userRateLimitPerMinute: 30 };
    case 1:
      return { ...GENEROUS, name: "user-rate", userRateLimitPerMinute: 4 };
    case 2:
      return { ...GENEROUS, name: "token-budget", monthlyTokenBudget: 15_000 };
    case 3:
      return { ...GENEROUS, name: "cost-caps", dailyCostBudgetUsd: 0.004, conversationCostCapUsd: 0.00096 };
    default:
      return { ...GENEROUS, name: "generous" };
  }
}

interface Tenant {
  id: string;
  key: string;
  profile: Profile;
}

/** What one conversation looked like from the visitor's side. */
interface ClientConversation {
  tenant: string;
  id: string;
  user: string;
  admitted: number;
  tokens: number;
  ended: boolean;
}

/** What the visitors of one tenant saw, summed over its admitted replies. */
interface ClientBooks {
  admitted: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  refused: number;
}

type Kind = "start" | "message" | "end";

/** Everything measured while the load ran. */
interface LoadStats {
  latency: Record<Kind, number[]>;
  refusals: Record<string, number>;
  errors: { http5xx: number; network: number; unexpected4xx: number; samples: string[] };
  /** Errors by request kind, status and error code (or message), with counts. */
  errorKinds: Map<string, number>;
  /** Conversations with a message whose outcome the visitor could not know (5xx or no answer). */
  unknownOutcome: Set<string>;
  books: Map<string, ClientBooks>;
  conversations: ClientConversation[];
  messagesSent: number;
}

/** The outcome of one book check. */
export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export interface LoadtestReport {
  options: Required<Omit<LoadtestOptions, "log" | "postgresUrl" | "redisUrl">>;
  profiles: Record<ProfileName, number>;
  load: {
    seconds: number;
    requests: number;
    messagesSent: number;
    admitted: number;
    refused: number;
    messagesPerSec: number;
    admittedPerSec: number;
    requestsPerSec: number;
    latencyMs: Record<Kind | "all", { p50: number; p95: number; p99: number; max: number }>;
    refusalsByLevel: Record<string, number>;
    errors: {
      http5xx: number;
      network: number;
      unexpected4xx: number;
      total: number;
      byKind: Record<string, number>;
      samples: string[];
    };
    /** Conversations in which a message got a 5xx or no answer: its outcome is unknown to the visitor. */
    unknownOutcomeConversations: number;
    conversations: { started: number; ended: number };
  };
  drain: { seconds: number; settled: boolean; turns: number; conversations: number };
  checks: Check[];
  /** Every check passed and nothing errored. */
  ok: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Ordinary support questions: none names a blocked topic or asks for a human, so every admitted
// message reaches the model.
const OPENERS = [
  "where is my order",
  "can I change the delivery address for order",
  "what are your opening hours on",
  "do you ship to",
  "how long does a refund take for invoice",
  "is the blue jacket in stock in size",
  "my password reset email never arrived for account",
  "what does the premium plan include for",
];
const TAILS = ["Monday", "Spain", "12345", "M", "the weekend", "order 778", "Lisbon", "team plans"];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const question = () => `${pick(OPENERS)} ${pick(TAILS)} ${Math.floor(Math.random() * 1000)}`;

function summarize(xs: readonly number[]) {
  return {
    p50: round(pct(xs, 0.5), 1),
    p95: round(pct(xs, 0.95), 1),
    p99: round(pct(xs, 0.99), 1),
    max: round(
      xs.reduce((m, x) => Math.max(m, x), 0),
      1,
    ),
  };
}

/** Creates the tenants and one secret key each, straight in Postgres (as bench/chat.ts does). */
async function seedTenants(databaseUrl: string, count: number, runId: string): Promise<Tenant[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    const out: Tenant[] = [];
    for (let i = 0; i < count; i++) {
      const p = profileOf(i);
      // The run id keeps Redis config entries of an earlier run from being read for this one.
      const id = `lt-${runId}-${String(i).padStart(3, "0")}`;
      await client.query(
        `insert into tenants (id, name, system_prompt, model, max_tokens_per_response, monthly_token_budget,
           rate_limit_per_minute, user_rate_limit_per_minute, daily_cost_budget_usd, conversation_cost_cap_usd)
         values ($1, $2, 'You help customers of a web shop.', 'mock', 200, $3, $4, $5, $6, $7)`,
        [
          id,
          `Loadtest ${i} (${p.name})`,
          p.monthlyTokenBudget,
          p.rateLimitPerMinute,
          p.userRateLimitPerMinute,
          p.dailyCostBudgetUsd,
          p.conversationCostCapUsd,
        ],
      );
      const made = await generateKey("secret");
      await client.query(
        "insert into api_keys (id, tenant_id, kind, name, prefix, hash, last4) values ($1, $2, 'secret', 'loadtest', $3, $4, $5)",
        [`key_${randomToken(16)}`, id, made.prefix, made.hash, made.last4],
      );
      out.push({ id, key: made.key, profile: p });
    }
    return out;
  } finally {
    await client.end();
  }
}

interface Answer {
  status: number;
  body: unknown;
}

/** The error envelope's refusal details, when the body is one. */
function refusalOf(body: unknown): { level: string; budget: string | null } | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error = (body as { error: { details?: { level?: unknown; budget?: unknown } } }).error;
  const level = error.details?.level;
  if (typeof level !== "string") return undefined;
  const budget = error.details?.budget;
  return { level, budget: typeof budget === "string" ? budget : null };
}

interface Reply {
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
}

/** Runs the visitors until the deadline; every conversation started is also ended. */
async function runLoad(
  url: string,
  tenants: Tenant[],
  opts: Required<Omit<LoadtestOptions, "log" | "postgresUrl" | "redisUrl">>,
  dispatcher: Dispatcher,
): Promise<{ stats: LoadStats; seconds: number }> {
  const stats: LoadStats = {
    latency: { start: [], message: [], end: [] },
    refusals: {},
    errors: { http5xx: 0, network: 0, unexpected4xx: 0, samples: [] },
    errorKinds: new Map(),
    unknownOutcome: new Set(),
    books: new Map(
      tenants.map((t) => [t.id, { admitted: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, refused: 0 }]),
    ),
    conversations: [],
    messagesSent: 0,
  };
  const noteError = (kind: "http5xx" | "network" | "unexpected4xx", what: string) => {
    stats.errors[kind] += 1;
    if (stats.errors.samples.length < 10) stats.errors.samples.push(what);
    // Grouped by request kind, status and the envelope's code (or the text's start).
    const m = /^(\w+) (\d+) .*?"code":"([A-Z_]+)","message":"([^"]{0,60})/.exec(what);
    const group = m ? `${m[1]} ${m[2]} ${m[3]} (${m[4]})` : what.slice(0, 90);
    stats.errorKinds.set(group, (stats.errorKinds.get(group) ?? 0) + 1);
  };

  /** One POST; answers undefined (and counts the error) when it never got an HTTP answer. */
  const post = async (
    kind: Kind,
    tenant: Tenant,
    path: string,
    body: unknown,
  ): Promise<Answer | undefined> => {
    const t = performance.now();
    try {
      const res = await undiciFetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        dispatcher,
        signal: AbortSignal.timeout(opts.requestTimeoutMs),
      });
      const text = await res.text();
      stats.latency[kind].push(performance.now() - t);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON: kept as text for the error sample.
      }
      if (res.status >= 500) noteError("http5xx", `${kind} ${res.status} ${text.slice(0, 200)}`);
      return { status: res.status, body: parsed };
    } catch (err) {
      noteError("network", `${kind} ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  };

  const started = Date.now();
  const deadline = started + opts.durationSec * 1000;
  const left = () => deadline - Date.now();

  const visitor = async (v: number) => {
    const tenant = tenants[v % tenants.length] as Tenant;
    const books = stats.books.get(tenant.id) as ClientBooks;
    const user = `visitor-${v}`;
    // Visitors arrive over the ramp-up, not in one synchronized burst at a cold isolate.
    await sleep((v / opts.visitors) * Math.min(opts.rampUpSec, opts.durationSec / 4) * 1000);
    while (left() > 0) {
      const a = await post("start", tenant, "/v1/conversations", { user });
      if (a?.status !== 201) {
        if (a && a.status < 500) noteError("unexpected4xx", `start ${a.status} ${JSON.stringify(a.body)}`);
        await sleep(Math.min(1000, Math.max(0, left())));
        continue;
      }
      const conv: ClientConversation = {
        tenant: tenant.id,
        id: (a.body as { id: string }).id,
        user,
        admitted: 0,
        tokens: 0,
        ended: false,
      };
      stats.conversations.push(conv);
      for (let k = 0; k < opts.turnsPerConversation && left() > 0; k++) {
        // A pause that would end past the deadline ends at a random point of the next few seconds
        // instead: visitors leave spread out, not as one burst of ends at the deadline.
        const spread = Math.max(0, left()) + Math.random() * Math.min(opts.thinkMs, 5_000);
        await sleep(Math.min(Math.random() * opts.thinkMs, spread));
        if (left() <= 0) break;
        stats.messagesSent += 1;
        const m = await post("message", tenant, `/v1/conversations/${conv.id}/messages`, {
          content: question(),
        });
        if (!m || m.status >= 500) {
          // The message may or may not have been answered and recorded: the books will tell.
          stats.unknownOutcome.add(`${conv.tenant}:${conv.id}`);
          break;
        }
        if (m.status === 200) {
          const u = (m.body as Reply).usage;
          books.admitted += 1;
          books.inputTokens += u.input_tokens;
          books.outputTokens += u.output_tokens;
          books.costUsd += u.cost_usd;
          conv.admitted += 1;
          conv.tokens += u.input_tokens + u.output_tokens;
          continue;
        }
        const refusal = m.status === 429 ? refusalOf(m.body) : undefined;
        if (!refusal) {
          noteError("unexpected4xx", `message ${m.status} ${JSON.stringify(m.body).slice(0, 200)}`);
          break;
        }
        books.refused += 1;
        const label = refusal.budget ? `${refusal.level}:${refusal.budget}` : refusal.level;
        stats.refusals[label] = (stats.refusals[label] ?? 0) + 1;
        // This conversation cannot afford another message: the visitor gives up on it.
        if (refusal.budget === "conversation_cost") break;
        // A refused visitor waits a moment (not the whole Retry-After, which may be a month).
        await sleep(Math.min(1000 + Math.random() * 2000, Math.max(0, left())));
      }
      const e = await post("end", tenant, `/v1/conversations/${conv.id}/end`, {
        resolved: Math.random() < 0.6,
      });
      if (e?.status === 200) conv.ended = true;
      else if (e && e.status < 500) noteError("unexpected4xx", `end ${e.status} ${JSON.stringify(e.body)}`);
    }
  };

  await Promise.all(Array.from({ length: opts.visitors }, (_, v) => visitor(v)));
  return { stats, seconds: (Date.now() - started) / 1000 };
}

/** The largest number of timestamps in any window (t - 60 s, t]: the gate's own definition. */
export function maxInWindow(sortedMs: readonly number[]): { max: number; at: number } {
  let best = { max: 0, at: Number.NaN };
  let tail = 0;
  for (let head = 0; head < sortedMs.length; head++) {
    const t = sortedMs[head] as number;
    // Equal timestamps all belong to the window ending at the last of them.
    if (head + 1 < sortedMs.length && sortedMs[head + 1] === t) continue;
    while ((sortedMs[tail] as number) <= t - WINDOW_MS) tail += 1;
    if (head - tail + 1 > best.max) best = { max: head - tail + 1, at: t };
  }
  return best;
}

const relClose = (a: number, b: number) =>
  Math.abs(a - b) <= COST_REL_TOLERANCE * Math.max(Math.abs(a), Math.abs(b)) + 1e-15;

interface GateUsage {
  month: { tokens_used: number; tokens_reserved: number; token_budget: number; cost_usd: number };
  today: { cost_usd: number; budget_usd: number | null };
  daily: { input_tokens: number; output_tokens: number; messages: number; cost_usd: number }[];
}

async function gateUsage(url: string, tenant: Tenant, dispatcher: Dispatcher): Promise<GateUsage> {
  const res = await undiciFetch(`${url}/v1/usage?days=2`, {
    headers: { authorization: `Bearer ${tenant.key}` },
    dispatcher,
  });
  if (res.status !== 200) throw new Error(`usage of ${tenant.id}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as GateUsage;
}

/** Waits (bounded) until every tenant's gate holds no reservation: every settlement arrived. */
async function waitForSettlements(
  url: string,
  tenants: Tenant[],
  dispatcher: Dispatcher,
  until: number,
): Promise<{ settled: boolean; usage: Map<string, GateUsage> }> {
  for (;;) {
    const usage = new Map<string, GateUsage>();
    for (const t of tenants) usage.set(t.id, await gateUsage(url, t, dispatcher));
    const open = [...usage.values()].filter((u) => u.month.tokens_reserved > 0).length;
    if (open === 0 || Date.now() > until) return { settled: open === 0, usage };
    await sleep(500);
  }
}

/** Waits (bounded) until Postgres holds every turn and conversation the visitors saw, or stops moving. */
async function waitForAnalytics(
  db: pg.Client,
  expectTurns: number,
  expectConversations: number,
  until: number,
  log: (msg: string) => void,
): Promise<{ turns: number; conversations: number }> {
  let last = "";
  let stableSince = Date.now();
  for (;;) {
    const { rows } = await db.query<{ turns: string; conversations: string }>(
      "select (select count(*) from turns) as turns, (select count(*) from conversations) as conversations",
    );
    const turns = Number(rows[0]?.turns ?? 0);
    const conversations = Number(rows[0]?.conversations ?? 0);
    if (turns >= expectTurns && conversations >= expectConversations) return { turns, conversations };
    const now = `${turns}/${conversations}`;
    if (now !== last) {
      last = now;
      stableSince = Date.now();
      log(`draining: ${turns}/${expectTurns} turns, ${conversations}/${expectConversations} conversations`);
    }
    // Consumer batches wait up to 2 s and retry with backoff from 2 s: 15 s without progress is final.
    if (Date.now() - stableSince > 15_000 || Date.now() > until) return { turns, conversations };
    await sleep(500);
  }
}

interface TurnRow {
  tenant_id: string;
  user_id: string;
  conversation_id: string;
  at_ms: string;
  input_tokens: string;
  output_tokens: string;
  cost_usd: number;
  outcome: string;
}

/** The book checks; each names its numbers, failing or not. */
async function checkBooks(
  db: pg.Client,
  tenants: Tenant[],
  stats: LoadStats,
  usage: Map<string, GateUsage>,
  globalLimit: number,
): Promise<Check[]> {
  const checks: Check[] = [];
  const { rows: turnRows } = await db.query<TurnRow>(
    `select tenant_id, user_id, conversation_id, (extract(epoch from at) * 1000)::bigint as at_ms,
            input_tokens, output_tokens, cost_usd, outcome
       from turns order by at`,
  );
  const byTenant = new Map<string, TurnRow[]>();
  for (const r of turnRows) {
    const list = byTenant.get(r.tenant_id) ?? [];
    list.push(r);
    byTenant.set(r.tenant_id, list);
  }
  const ok = (r: TurnRow) => r.outcome === "ok";

  // (1) limits
  const tenantRate: string[] = [];
  const userRate: string[] = [];
  let worstTenant = { ratio: 0, text: "" };
  let worstUser = { ratio: 0, text: "" };
  for (const t of tenants) {
    const rows = (byTenant.get(t.id) ?? []).filter(ok);
    const w = maxInWindow(rows.map((r) => Number(r.at_ms)));
    const ratio = w.max / t.profile.rateLimitPerMinute;
    if (ratio > worstTenant.ratio)
      worstTenant = { ratio, text: `${t.id} ${w.max}/${t.profile.rateLimitPerMinute}` };
    if (w.max > t.profile.rateLimitPerMinute)
      tenantRate.push(
        `${t.id}: ${w.max} in the 60 s ending ${new Date(w.at).toISOString()} > ${t.profile.rateLimitPerMinute}`,
      );
    const byUser = new Map<string, number[]>();
    for (const r of rows) {
      const list = byUser.get(r.user_id) ?? [];
      list.push(Number(r.at_ms));
      byUser.set(r.user_id, list);
    }
    for (const [user, ats] of byUser) {
      const u = maxInWindow(ats);
      const ur = u.max / t.profile.userRateLimitPerMinute;
      if (ur > worstUser.ratio)
        worstUser = { ratio: ur, text: `${t.id}/${user} ${u.max}/${t.profile.userRateLimitPerMinute}` };
      if (u.max > t.profile.userRateLimitPerMinute)
        userRate.push(
          `${t.id}/${user}: ${u.max} in the 60 s ending ${new Date(u.at).toISOString()} > ${t.profile.userRateLimitPerMinute}`,
        );
    }
  }
  checks.push({
    name: "limits: tenant rate (turns per trailing 60 s, per tenant)",
    pass: tenantRate.length === 0,
    detail: tenantRate.length ? tenantRate.slice(0, 5).join("; ") : `fullest window: ${worstTenant.text}`,
  });
  checks.push({
    name: "limits: user rate (turns per trailing 60 s, per user)",
    pass: userRate.length === 0,
    detail: userRate.length ? userRate.slice(0, 5).join("; ") : `fullest window: ${worstUser.text}`,
  });
  const global = maxInWindow(turnRows.filter(ok).map((r) => Number(r.at_ms)));
  checks.push({
    name: "limits: global rate (turns per trailing 60 s, all tenants)",
    pass: global.max <= globalLimit,
    detail: `fullest window: ${global.max}/${globalLimit}`,
  });

  const budget: string[] = [];
  let tightest = { ratio: 0, text: "none bound" };
  const costCaps: string[] = [];
  let dailyTightest = { ratio: 0, text: "none set" };
  for (const t of tenants) {
    const u = usage.get(t.id) as GateUsage;
    const pgTokens = (byTenant.get(t.id) ?? []).reduce(
      (n, r) => n + Number(r.input_tokens) + Number(r.output_tokens),
      0,
    );
    const ratio = u.month.tokens_used / t.profile.monthlyTokenBudget;
    if (t.profile.name === "token-budget" && ratio > tightest.ratio)
      tightest = { ratio, text: `${t.id} ${u.month.tokens_used}/${t.profile.monthlyTokenBudget} tokens` };
    if (u.month.tokens_used > t.profile.monthlyTokenBudget || pgTokens > t.profile.monthlyTokenBudget)
      budget.push(
        `${t.id}: gate ${u.month.tokens_used}, Postgres ${pgTokens} > ${t.profile.monthlyTokenBudget}`,
      );
    const daily = t.profile.dailyCostBudgetUsd;
    if (daily !== null) {
      const dr = u.today.cost_usd / daily;
      if (dr > dailyTightest.ratio)
        dailyTightest = { ratio: dr, text: `${t.id} $${round(u.today.cost_usd, 6)}/$${daily} today` };
      if (u.today.cost_usd > daily) costCaps.push(`${t.id}: $${u.today.cost_usd} today > $${daily}`);
    }
  }
  checks.push({
    name: "limits: monthly token budget (gate and Postgres)",
    pass: budget.length === 0,
    detail: budget.length ? budget.slice(0, 5).join("; ") : `closest: ${tightest.text}`,
  });

  const perConversation = new Map<string, { cost: number; tenant: string }>();
  for (const r of turnRows) {
    const key = `${r.tenant_id}:${r.conversation_id}`;
    const c = perConversation.get(key) ?? { cost: 0, tenant: r.tenant_id };
    c.cost += r.cost_usd;
    perConversation.set(key, c);
  }
  const caps = new Map(tenants.map((t) => [t.id, t.profile.conversationCostCapUsd]));
  let convTightest = { ratio: 0, text: "" };
  for (const [key, c] of perConversation) {
    const cap = caps.get(c.tenant) ?? Number.POSITIVE_INFINITY;
    if (c.cost / cap > convTightest.ratio)
      convTightest = { ratio: c.cost / cap, text: `${key} $${round(c.cost, 6)}/$${cap}` };
    if (c.cost > cap * (1 + COST_REL_TOLERANCE)) costCaps.push(`${key}: $${c.cost} > cap $${cap}`);
  }
  checks.push({
    name: "limits: daily cost budget and conversation cost cap",
    pass: costCaps.length === 0,
    detail: costCaps.length
      ? costCaps.slice(0, 5).join("; ")
      : `closest daily: ${dailyTightest.text}; closest conversation: ${convTightest.text}`,
  });

  // (2) tokens and cost: replies == Postgres == gate
  const mismatches: string[] = [];
  let totals = { admitted: 0, tokens: 0, cost: 0 };
  for (const t of tenants) {
    const c = stats.books.get(t.id) as ClientBooks;
    const rows = byTenant.get(t.id) ?? [];
    const pgIn = rows.reduce((n, r) => n + Number(r.input_tokens), 0);
    const pgOut = rows.reduce((n, r) => n + Number(r.output_tokens), 0);
    const pgCost = rows.reduce((n, r) => n + r.cost_usd, 0);
    const pgOk = rows.filter(ok).length;
    const u = usage.get(t.id) as GateUsage;
    const gateIn = u.daily.reduce((n, d) => n + d.input_tokens, 0);
    const gateOut = u.daily.reduce((n, d) => n + d.output_tokens, 0);
    const gateMessages = u.daily.reduce((n, d) => n + d.messages, 0);
    const problems: string[] = [];
    if (rows.length !== pgOk) problems.push(`${rows.length - pgOk} turns not ok`);
    if (!(c.admitted === pgOk && pgOk === gateMessages))
      problems.push(`messages client ${c.admitted} / Postgres ${pgOk} / gate ${gateMessages}`);
    if (!(c.inputTokens === pgIn && pgIn === gateIn))
      problems.push(`input tokens client ${c.inputTokens} / Postgres ${pgIn} / gate ${gateIn}`);
    if (!(c.outputTokens === pgOut && pgOut === gateOut))
      problems.push(`output tokens client ${c.outputTokens} / Postgres ${pgOut} / gate ${gateOut}`);
    if (u.month.tokens_used !== pgIn + pgOut)
      problems.push(`gate month tokens_used ${u.month.tokens_used} != Postgres ${pgIn + pgOut}`);
    if (!(relClose(c.costUsd, pgCost) && relClose(pgCost, u.month.cost_usd)))
      problems.push(`cost client $${c.costUsd} / Postgres $${pgCost} / gate $${u.month.cost_usd}`);
    if (problems.length) {
      const unknown = [...stats.unknownOutcome].filter((k) => k.startsWith(`${t.id}:`)).length;
      if (unknown) problems.push(`${unknown} conversations had a message answered 5xx or not at all`);
      mismatches.push(`${t.id}: ${problems.join(", ")}`);
    }
    totals = {
      admitted: totals.admitted + c.admitted,
      tokens: totals.tokens + c.inputTokens + c.outputTokens,
      cost: totals.cost + c.costUsd,
    };
  }
  checks.push({
    name: "tokens and cost: replies == Postgres turns == gate usage, per tenant",
    pass: mismatches.length === 0,
    detail: mismatches.length
      ? mismatches.slice(0, 5).join("; ")
      : `${tenants.length} tenants balance: ${totals.admitted} messages, ${totals.tokens} tokens, $${round(totals.cost, 6)}`,
  });

  // (3) conversations: each ended one in Postgres exactly once, with its turns and tokens
  const { rows: convRows } = await db.query<{
    tenant_id: string;
    conversation_id: string;
    n: string;
    turn_count: number;
    total_tokens: string;
  }>(
    `select tenant_id, conversation_id, count(*) as n, min(turn_count) as turn_count,
            min(total_tokens) as total_tokens
       from conversations group by tenant_id, conversation_id`,
  );
  const stored = new Map(convRows.map((r) => [`${r.tenant_id}:${r.conversation_id}`, r]));
  const ended = stats.conversations.filter((c) => c.ended);
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const c of ended) {
    const r = stored.get(`${c.tenant}:${c.id}`);
    if (!r) missing.push(`${c.tenant}:${c.id}`);
    else if (r.turn_count !== c.admitted || Number(r.total_tokens) !== c.tokens)
      wrong.push(
        `${c.tenant}:${c.id} turns ${r.turn_count} (client ${c.admitted}), tokens ${r.total_tokens} (client ${c.tokens})`,
      );
  }
  const endedKeys = new Set(ended.map((c) => `${c.tenant}:${c.id}`));
  const extra = convRows.filter((r) => !endedKeys.has(`${r.tenant_id}:${r.conversation_id}`));
  const duplicated = convRows.filter((r) => Number(r.n) !== 1);
  const turnsByConv = new Map<string, number>();
  for (const r of turnRows) {
    const key = `${r.tenant_id}:${r.conversation_id}`;
    turnsByConv.set(key, (turnsByConv.get(key) ?? 0) + 1);
  }
  const turnMismatch = stats.conversations.filter(
    (c) => (turnsByConv.get(`${c.tenant}:${c.id}`) ?? 0) !== c.admitted,
  );
  const turnMismatchUnknown = turnMismatch.filter((c) => stats.unknownOutcome.has(`${c.tenant}:${c.id}`));
  const unended = stats.conversations.length - ended.length;
  checks.push({
    name: "conversations: every ended one in Postgres exactly once, none extra, turns and tokens agree",
    pass:
      missing.length === 0 &&
      extra.length === 0 &&
      duplicated.length === 0 &&
      wrong.length === 0 &&
      turnMismatch.length === 0,
    detail:
      `${ended.length} ended by visitors (${unended} not ended), ${convRows.length} in Postgres: ` +
      `${missing.length} missing, ${extra.length} extra, ${duplicated.length} duplicated, ` +
      `${wrong.length} with other totals, ${turnMismatch.length} with other turn rows than replies` +
      (turnMismatch.length
        ? ` (${turnMismatchUnknown.length} of them had a message answered 5xx or not at all)`
        : "") +
      [...missing, ...wrong, ...extra.map((r) => `extra ${r.tenant_id}:${r.conversation_id}`)]
        .slice(0, 3)
        .map((s) => `; ${s}`)
        .join(""),
  });
  return checks;
}

/** Runs the whole load test: setup, load, drain, checks; tears everything down it started. */
export async function runLoadtest(input: LoadtestOptions): Promise<LoadtestReport> {
  const log = input.log ?? (() => {});
  const opts = {
    tenants: input.tenants,
    visitors: input.visitors,
    durationSec: input.durationSec,
    turnsPerConversation: input.turnsPerConversation,
    thinkMs: input.thinkMs ?? 250,
    rampUpSec: input.rampUpSec ?? 5,
    globalLimitPerMinute: input.globalLimitPerMinute ?? DEFAULT_GLOBAL_LIMIT,
    drainTimeoutSec: input.drainTimeoutSec ?? 120,
    requestTimeoutMs: input.requestTimeoutMs ?? 60_000,
    keepDatabase: input.keepDatabase ?? false,
  };
  const postgres =
    input.postgresUrl ?? process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
  const databaseUrl = `${postgres}/chatedge_loadtest_${process.pid}`;
  const runId = randomToken(6).toLowerCase();

  log(`database ${databaseUrl}: recreating and migrating`);
  await recreateDatabase(databaseUrl);
  await migrateDatabase(databaseUrl);
  const tenants = await seedTenants(databaseUrl, opts.tenants, runId);
  const profiles = { "tenant-rate": 0, "user-rate": 0, "token-budget": 0, "cost-caps": 0, generous: 0 };
  for (const t of tenants) profiles[t.profile.name] += 1;
  const bridgeToken = randomUUID();
  const bridge = await startUpstashBridge({
    redisUrl: input.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token: bridgeToken,
  });
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on("error", () => {});
  // Every visitor holds its own connection: the pool must never make a visitor wait for another.
  const dispatcher = new Agent({ connections: opts.visitors + 16, keepAliveTimeout: 30_000 });
  let worker: Awaited<ReturnType<typeof startBenchWorker>> | undefined;
  try {
    log("bundling and starting the worker (Miniflare, queue consumers on)");
    worker = await startBenchWorker(databaseUrl, {
      consumers: true,
      bindings: {
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: bridgeToken,
        GLOBAL_LIMIT_PER_MINUTE: String(opts.globalLimitPerMinute),
      },
    });
    await db.connect();
    log(
      `load: ${opts.visitors} visitors over ${opts.tenants} tenants for ${opts.durationSec} s, ${opts.turnsPerConversation} messages per conversation`,
    );
    const { stats, seconds } = await runLoad(worker.url, tenants, opts, dispatcher);
    const admitted = [...stats.books.values()].reduce((n, b) => n + b.admitted, 0);
    const refused = [...stats.books.values()].reduce((n, b) => n + b.refused, 0);
    log(`load done in ${round(seconds, 1)} s: ${stats.messagesSent} messages, ${admitted} admitted`);

    const drainStart = Date.now();
    const until = drainStart + opts.drainTimeoutSec * 1000;
    const endedCount = stats.conversations.filter((c) => c.ended).length;
    const counts = await waitForAnalytics(db, admitted, endedCount, until, log);
    const { settled, usage } = await waitForSettlements(worker.url, tenants, dispatcher, until);
    const drainSeconds = (Date.now() - drainStart) / 1000;
    log(`drained in ${round(drainSeconds, 1)} s; checking the books`);

    const checks = await checkBooks(db, tenants, stats, usage, opts.globalLimitPerMinute);
    checks.unshift({
      name: "settlements: no reservation left open after the load",
      pass: settled,
      detail: settled
        ? "every gate reports 0 tokens reserved"
        : [...usage.entries()]
            .filter(([, u]) => u.month.tokens_reserved > 0)
            .slice(0, 5)
            .map(([id, u]) => `${id}: ${u.month.tokens_reserved} reserved`)
            .join("; "),
    });
    const all = [...stats.latency.start, ...stats.latency.message, ...stats.latency.end];
    const errorsTotal = stats.errors.http5xx + stats.errors.network + stats.errors.unexpected4xx;
    return {
      options: opts,
      profiles,
      load: {
        seconds: round(seconds, 2),
        requests: all.length,
        messagesSent: stats.messagesSent,
        admitted,
        refused,
        messagesPerSec: round(stats.messagesSent / seconds, 1),
        admittedPerSec: round(admitted / seconds, 1),
        requestsPerSec: round(all.length / seconds, 1),
        latencyMs: {
          message: summarize(stats.latency.message),
          start: summarize(stats.latency.start),
          end: summarize(stats.latency.end),
          all: summarize(all),
        },
        refusalsByLevel: stats.refusals,
        errors: { ...stats.errors, total: errorsTotal, byKind: Object.fromEntries(stats.errorKinds) },
        unknownOutcomeConversations: stats.unknownOutcome.size,
        conversations: { started: stats.conversations.length, ended: endedCount },
      },
      drain: { seconds: round(drainSeconds, 1), settled, ...counts },
      checks,
      ok: errorsTotal === 0 && checks.every((c) => c.pass),
    };
  } finally {
    await dispatcher.close().catch(() => {});
    await worker?.stop().catch(() => {});
    await bridge.close().catch(() => {});
    await db.end().catch(() => {});
    if (!opts.keepDatabase) {
      const admin = new pg.Client({ connectionString: `${postgres}/postgres` });
      admin.on("error", () => {});
      await admin.connect();
      await admin.query(`drop database if exists "chatedge_loadtest_${process.pid}" with (force)`);
      await admin.end();
    }
  }
}

/** The report as text: the load figures, then one PASS/FAIL line per check. */
export function formatReport(r: LoadtestReport): string {
  const l = r.load;
  const lat = (k: keyof typeof l.latencyMs) =>
    `p50 ${l.latencyMs[k].p50} / p95 ${l.latencyMs[k].p95} / p99 ${l.latencyMs[k].p99} / max ${l.latencyMs[k].max} ms`;
  const lines = [
    `tenants ${r.options.tenants} (${Object.entries(r.profiles)
      .map(([k, v]) => `${v} ${k}`)
      .join(
        ", ",
      )}), visitors ${r.options.visitors}, ${r.options.durationSec} s, ${r.options.turnsPerConversation} messages per conversation`,
    `load: ${l.seconds} s, ${l.requests} requests (${l.requestsPerSec}/s), ${l.messagesSent} messages (${l.messagesPerSec}/s), ${l.admitted} admitted (${l.admittedPerSec}/s), ${l.refused} refused`,
    `conversations: ${l.conversations.started} started, ${l.conversations.ended} ended`,
    `latency message: ${lat("message")}`,
    `latency start:   ${lat("start")}`,
    `latency end:     ${lat("end")}`,
    `latency all:     ${lat("all")}`,
    `refusals by level: ${
      Object.entries(l.refusalsByLevel)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none"
    }`,
    `errors: ${l.errors.total} (5xx ${l.errors.http5xx}, network ${l.errors.network}, unexpected 4xx ${l.errors.unexpected4xx})${Object.entries(
      l.errors.byKind,
    )
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `\n  ${v} x ${k}`)
      .join("")}`,
    `drain: ${r.drain.seconds} s, ${r.drain.turns} turns and ${r.drain.conversations} conversations in Postgres, settled ${r.drain.settled}`,
    ...r.checks.map((c) => `${c.pass ? "PASS" : "FAIL"} ${c.name}: ${c.detail}`),
    r.ok ? "OK: every check passed, no errors" : "FAILED",
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tenants: { type: "string", default: "50" },
      visitors: { type: "string", default: "1000" },
      duration: { type: "string", default: "60" },
      turns: { type: "string", default: "4" },
      "think-ms": { type: "string", default: "250" },
      "ramp-up": { type: "string", default: "5" },
      "global-limit": { type: "string", default: String(DEFAULT_GLOBAL_LIMIT) },
      "keep-db": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const report = await runLoadtest({
    tenants: Number(values.tenants),
    visitors: Number(values.visitors),
    durationSec: Number(values.duration),
    turnsPerConversation: Number(values.turns),
    thinkMs: Number(values["think-ms"]),
    rampUpSec: Number(values["ramp-up"]),
    globalLimitPerMinute: Number(values["global-limit"]),
    keepDatabase: values["keep-db"],
    log: (m) => console.error(m),
  });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  process.exit(report.ok ? 0 : 1);
}
