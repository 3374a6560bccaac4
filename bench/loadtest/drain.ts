/**
 * After the load: waiting (bounded) until every gate has settled its reservations and Postgres
 * holds every turn and conversation the visitors saw, and reading each tenant's gate usage.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { type Dispatcher, fetch as undiciFetch } from "undici";
import type { Tenant } from "./profiles.ts";

/** A tenant's `GET /v1/usage`, the parts the checks read. */
export interface GateUsage {
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
export async function waitForSettlements(
  url: string,
  tenants: readonly Tenant[],
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
export async function waitForAnalytics(
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
