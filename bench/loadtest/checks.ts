/**
 * The book checks, each naming its numbers, failing or not:
 * 1. limits: per tenant, no trailing 60 s window of admitted turns (Postgres `turns`, outcome ok,
 *    by `at`) holds more than the tenant's limit, none per user more than the user limit, none
 *    across all tenants more than the global limit; tokens used never exceed the monthly budget,
 *    cost never the daily budget, no conversation's cost its cap;
 * 2. tokens and cost: per tenant, what the replies said == what Postgres recorded == what the
 *    tenant's gate counts (`GET /v1/usage`);
 * 3. conversations: every conversation the visitors ended is in Postgres exactly once, with the
 *    turns and tokens the visitors saw, and nothing else is.
 */
import type pg from "pg";
import { round } from "../lib.ts";
import type { GateUsage } from "./drain.ts";
import type { Tenant } from "./profiles.ts";
import type { ClientBooks, LoadStats } from "./visitors.ts";

const WINDOW_MS = 60_000;
/** The relative tolerance of cost comparisons: the gate sums integer nano-dollars, replies are floats. */
const COST_REL_TOLERANCE = 1e-9;

/** The outcome of one book check. */
export interface Check {
  name: string;
  pass: boolean;
  detail: string;
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

/** Every turn Postgres recorded, in time order, and the same by tenant. */
interface Turns {
  all: TurnRow[];
  byTenant: Map<string, TurnRow[]>;
}

/** The most-filled limit seen so far, as a ratio and a text. */
type Tightest = { ratio: number; text: string };

const ok = (r: TurnRow) => r.outcome === "ok";

const relClose = (a: number, b: number) =>
  Math.abs(a - b) <= COST_REL_TOLERANCE * Math.max(Math.abs(a), Math.abs(b)) + 1e-15;

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

function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k) ?? [];
    list.push(r);
    out.set(k, list);
  }
  return out;
}

async function readTurns(db: pg.Client): Promise<Turns> {
  const { rows } = await db.query<TurnRow>(
    `select tenant_id, user_id, conversation_id, (extract(epoch from at) * 1000)::bigint as at_ms,
            input_tokens, output_tokens, cost_usd, outcome
       from turns order by at`,
  );
  return { all: rows, byTenant: groupBy(rows, (r) => r.tenant_id) };
}

/** (1) Rate limits: per tenant, per user of each tenant, and across all tenants. */
function checkRates(tenants: readonly Tenant[], turns: Turns, globalLimit: number): Check[] {
  const tenantRate: string[] = [];
  const userRate: string[] = [];
  let worstTenant: Tightest = { ratio: 0, text: "" };
  let worstUser: Tightest = { ratio: 0, text: "" };
  const over = (who: string, w: { max: number; at: number }, limit: number) =>
    `${who}: ${w.max} in the 60 s ending ${new Date(w.at).toISOString()} > ${limit}`;
  for (const t of tenants) {
    const { rateLimitPerMinute: limit, userRateLimitPerMinute: userLimit } = t.profile;
    const rows = (turns.byTenant.get(t.id) ?? []).filter(ok);
    const w = maxInWindow(rows.map((r) => Number(r.at_ms)));
    if (w.max / limit > worstTenant.ratio)
      worstTenant = { ratio: w.max / limit, text: `${t.id} ${w.max}/${limit}` };
    if (w.max > limit) tenantRate.push(over(t.id, w, limit));
    for (const [user, userRows] of groupBy(rows, (r) => r.user_id)) {
      const u = maxInWindow(userRows.map((r) => Number(r.at_ms)));
      if (u.max / userLimit > worstUser.ratio)
        worstUser = { ratio: u.max / userLimit, text: `${t.id}/${user} ${u.max}/${userLimit}` };
      if (u.max > userLimit) userRate.push(over(`${t.id}/${user}`, u, userLimit));
    }
  }
  const global = maxInWindow(turns.all.filter(ok).map((r) => Number(r.at_ms)));
  return [
    {
      name: "limits: tenant rate (turns per trailing 60 s, per tenant)",
      pass: tenantRate.length === 0,
      detail: tenantRate.length ? tenantRate.slice(0, 5).join("; ") : `fullest window: ${worstTenant.text}`,
    },
    {
      name: "limits: user rate (turns per trailing 60 s, per user)",
      pass: userRate.length === 0,
      detail: userRate.length ? userRate.slice(0, 5).join("; ") : `fullest window: ${worstUser.text}`,
    },
    {
      name: "limits: global rate (turns per trailing 60 s, all tenants)",
      pass: global.max <= globalLimit,
      detail: `fullest window: ${global.max}/${globalLimit}`,
    },
  ];
}

/** (1) The monthly token budget, as the gate and Postgres count it. */
function checkTokenBudget(tenants: readonly Tenant[], turns: Turns, usage: Map<string, GateUsage>): Check {
  const budget: string[] = [];
  let tightest: Tightest = { ratio: 0, text: "none bound" };
  for (const t of tenants) {
    const u = usage.get(t.id) as GateUsage;
    const limit = t.profile.monthlyTokenBudget;
    const pgTokens = (turns.byTenant.get(t.id) ?? []).reduce(
      (n, r) => n + Number(r.input_tokens) + Number(r.output_tokens),
      0,
    );
    const ratio = u.month.tokens_used / limit;
    if (t.profile.name === "token-budget" && ratio > tightest.ratio)
      tightest = { ratio, text: `${t.id} ${u.month.tokens_used}/${limit} tokens` };
    if (u.month.tokens_used > limit || pgTokens > limit)
      budget.push(`${t.id}: gate ${u.month.tokens_used}, Postgres ${pgTokens} > ${limit}`);
  }
  return {
    name: "limits: monthly token budget (gate and Postgres)",
    pass: budget.length === 0,
    detail: budget.length ? budget.slice(0, 5).join("; ") : `closest: ${tightest.text}`,
  };
}

/** (1) The daily cost budget (the gate's today) and each conversation's cost cap (Postgres). */
function checkCostCaps(tenants: readonly Tenant[], turns: Turns, usage: Map<string, GateUsage>): Check {
  const costCaps: string[] = [];
  let dailyTightest: Tightest = { ratio: 0, text: "none set" };
  for (const t of tenants) {
    const u = usage.get(t.id) as GateUsage;
    const daily = t.profile.dailyCostBudgetUsd;
    if (daily === null) continue;
    const dr = u.today.cost_usd / daily;
    if (dr > dailyTightest.ratio)
      dailyTightest = { ratio: dr, text: `${t.id} $${round(u.today.cost_usd, 6)}/$${daily} today` };
    if (u.today.cost_usd > daily) costCaps.push(`${t.id}: $${u.today.cost_usd} today > $${daily}`);
  }
  const caps = new Map(tenants.map((t) => [t.id, t.profile.conversationCostCapUsd]));
  let convTightest: Tightest = { ratio: 0, text: "" };
  for (const [key, rows] of groupBy(turns.all, (r) => `${r.tenant_id}:${r.conversation_id}`)) {
    const cost = rows.reduce((n, r) => n + r.cost_usd, 0);
    const cap = caps.get((rows[0] as TurnRow).tenant_id) ?? Number.POSITIVE_INFINITY;
    if (cost / cap > convTightest.ratio)
      convTightest = { ratio: cost / cap, text: `${key} $${round(cost, 6)}/$${cap}` };
    if (cost > cap * (1 + COST_REL_TOLERANCE)) costCaps.push(`${key}: $${cost} > cap $${cap}`);
  }
  return {
    name: "limits: daily cost budget and conversation cost cap",
    pass: costCaps.length === 0,
    detail: costCaps.length
      ? costCaps.slice(0, 5).join("; ")
      : `closest daily: ${dailyTightest.text}; closest conversation: ${convTightest.text}`,
  };
}

/** How one tenant's replies, Postgres turns and gate usage disagree (empty when they balance). */
function imbalances(c: ClientBooks, rows: readonly TurnRow[], u: GateUsage): string[] {
  const pgIn = rows.reduce((n, r) => n + Number(r.input_tokens), 0);
  const pgOut = rows.reduce((n, r) => n + Number(r.output_tokens), 0);
  const pgCost = rows.reduce((n, r) => n + r.cost_usd, 0);
  const pgOk = rows.filter(ok).length;
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
  return problems;
}

/** (2) Tokens and cost: replies == Postgres == gate, per tenant. */
function checkBalances(
  tenants: readonly Tenant[],
  turns: Turns,
  stats: LoadStats,
  usage: Map<string, GateUsage>,
): Check {
  const mismatches: string[] = [];
  let totals = { admitted: 0, tokens: 0, cost: 0 };
  for (const t of tenants) {
    const c = stats.books.get(t.id) as ClientBooks;
    const problems = imbalances(c, turns.byTenant.get(t.id) ?? [], usage.get(t.id) as GateUsage);
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
  return {
    name: "tokens and cost: replies == Postgres turns == gate usage, per tenant",
    pass: mismatches.length === 0,
    detail: mismatches.length
      ? mismatches.slice(0, 5).join("; ")
      : `${tenants.length} tenants balance: ${totals.admitted} messages, ${totals.tokens} tokens, $${round(totals.cost, 6)}`,
  };
}

interface ConversationRow {
  tenant_id: string;
  conversation_id: string;
  n: string;
  turn_count: number;
  total_tokens: string;
}

/** (3) Conversations: each ended one in Postgres exactly once, with its turns and tokens. */
async function checkConversations(db: pg.Client, turns: Turns, stats: LoadStats): Promise<Check> {
  const { rows: convRows } = await db.query<ConversationRow>(
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
  const turnsByConv = groupBy(turns.all, (r) => `${r.tenant_id}:${r.conversation_id}`);
  const turnMismatch = stats.conversations.filter(
    (c) => (turnsByConv.get(`${c.tenant}:${c.id}`)?.length ?? 0) !== c.admitted,
  );
  const turnMismatchUnknown = turnMismatch.filter((c) => stats.unknownOutcome.has(`${c.tenant}:${c.id}`));
  const unended = stats.conversations.length - ended.length;
  const pass = [missing, extra, duplicated, wrong, turnMismatch].every((xs) => xs.length === 0);
  return {
    name: "conversations: every ended one in Postgres exactly once, none extra, turns and tokens agree",
    pass,
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
  };
}

/** Every book check, in the order the report prints them. */
export async function checkBooks(
  db: pg.Client,
  tenants: readonly Tenant[],
  stats: LoadStats,
  usage: Map<string, GateUsage>,
  globalLimit: number,
): Promise<Check[]> {
  const turns = await readTurns(db);
  return [
    ...checkRates(tenants, turns, globalLimit),
    checkTokenBudget(tenants, turns, usage),
    checkCostCaps(tenants, turns, usage),
    checkBalances(tenants, turns, stats, usage),
    await checkConversations(db, turns, stats),
  ];
}

/** Settlements: no reservation left open after the load. */
export function checkSettled(settled: boolean, usage: Map<string, GateUsage>): Check {
  return {
    name: "settlements: no reservation left open after the load",
    pass: settled,
    detail: settled
      ? "every gate reports 0 tokens reserved"
      : [...usage.entries()]
          .filter(([, u]) => u.month.tokens_reserved > 0)
          .slice(0, 5)
          .map(([id, u]) => `${id}: ${u.month.tokens_reserved} reserved`)
          .join("; "),
  };
}
