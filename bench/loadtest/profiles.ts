/** The tenants of a run: each one's limits (its profile), seeded straight into Postgres with a key. */
import pg from "pg";
import { insertKey, insertTenants } from "../../local/seed-tenants.ts";

/** Which limits a tenant runs with; the low ones make sure every refusal level actually happens. */
export type ProfileName = "tenant-rate" | "user-rate" | "token-budget" | "cost-caps" | "generous";

export interface Profile {
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
 * input bound (the message and the conversation's history as it stands: tens to a few hundred
 * tokens) and max_tokens (200), about $0.00013 for a first message; the mock's answer is a sentence
 * of some tens of tokens. So 2,000 tokens a month run out after a handful of messages; a $0.00004
 * conversation cap admits a first message with fewer output tokens (it costs $0.00002-0.00003) and
 * refuses the second (it must reserve a larger input and room for 16 output tokens: with the mock's
 * answer, a sentence of 25-35 tokens, that passes the cap by a few output tokens' worth; an answer
 * much shorter would let it in), so any visitor that sends two messages meets it; $0.004 a day holds some tens of
 * messages in flight. The user rate (2 a minute) and the monthly budget are refused at any speed
 * too: on a loaded machine a visitor may send only two or three messages in the CI run's 15 s, and
 * its tenant a few tens.
 */
export function profileOf(i: number): Profile {
  switch (i % 10) {
    case 0:
    case 5:
      return { ...GENEROUS, name: "tenant-rate", rateLimitPerMinute: 60, userRateLimitPerMinute: 30 };
    case 1:
      return { ...GENEROUS, name: "user-rate", userRateLimitPerMinute: 2 };
    case 2:
      return { ...GENEROUS, name: "token-budget", monthlyTokenBudget: 2_000 };
    case 3:
      return { ...GENEROUS, name: "cost-caps", dailyCostBudgetUsd: 0.004, conversationCostCapUsd: 0.00004 };
    default:
      return { ...GENEROUS, name: "generous" };
  }
}

export interface Tenant {
  id: string;
  key: string;
  profile: Profile;
}

/** How many tenants run with each profile. */
export function profileCounts(tenants: readonly Tenant[]): Record<ProfileName, number> {
  const counts = { "tenant-rate": 0, "user-rate": 0, "token-budget": 0, "cost-caps": 0, generous: 0 };
  for (const t of tenants) counts[t.profile.name] += 1;
  return counts;
}

/** Creates the tenants and one secret key each, straight in Postgres (local/seed-tenants.ts). */
export async function seedTenants(databaseUrl: string, count: number, runId: string): Promise<Tenant[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    // The run id keeps Redis config entries of an earlier run from being read for this one.
    const ids = Array.from({ length: count }, (_, i) => `lt-${runId}-${String(i).padStart(3, "0")}`);
    await insertTenants(
      client,
      ids.map((id, i) => {
        const { name, ...limits } = profileOf(i);
        return {
          id,
          name: `Loadtest ${i} (${name})`,
          systemPrompt: "You help customers of a web shop.",
          model: "mock",
          maxTokensPerResponse: 200,
          ...limits,
        };
      }),
    );
    const out: Tenant[] = [];
    for (const [i, id] of ids.entries()) {
      const { key } = await insertKey(client, id, "secret", "loadtest");
      out.push({ id, key, profile: profileOf(i) });
    }
    return out;
  } finally {
    await client.end();
  }
}
