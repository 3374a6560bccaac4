/**
 * Tenants and API keys written straight into Postgres, for local development and the benchmarks
 * (the admin API is the way in everywhere else). Columns and their defaults come from the drizzle
 * schema and keys from src/auth/keys.ts, so a seeded tenant is one the worker reads and a seeded
 * key is one it accepts.
 */
import { drizzle } from "drizzle-orm/node-postgres";
import type pg from "pg";
import { generateKey, type KeyKind, randomToken } from "../src/auth/keys.ts";
import { apiKeys, tenants } from "../src/db/schema.ts";

/** A tenant row as the schema takes it: `id`, `name`, `systemPrompt`, the rest optional. */
export type TenantSeed = typeof tenants.$inferInsert;

/** Anything node-postgres can run a query on. */
export type PgClient = pg.Client | pg.Pool | pg.PoolClient;

// Rows per statement: every tenant column as a parameter stays far below Postgres' 65,535.
const ROWS_PER_INSERT = 1_000;

/** Inserts tenants; an id already there is left as it is (seeding twice changes nothing). */
export async function insertTenants(client: PgClient, rows: readonly TenantSeed[]): Promise<void> {
  const db = drizzle({ client });
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    await db
      .insert(tenants)
      .values(rows.slice(i, i + ROWS_PER_INSERT))
      .onConflictDoNothing();
  }
}

/** Makes a key and stores its hash for the tenant, as the admin API does; answers the key itself. */
export async function insertKey(
  client: PgClient,
  tenantId: string,
  kind: KeyKind,
  name: string,
): Promise<{ key: string; prefix: string }> {
  const made = await generateKey(kind);
  await drizzle({ client })
    .insert(apiKeys)
    .values({
      id: `key_${randomToken(16)}`,
      tenantId,
      kind,
      name,
      prefix: made.prefix,
      hash: made.hash,
      last4: made.last4,
    });
  return { key: made.key, prefix: made.prefix };
}

/** One tenant and one secret key to call it with; answers the key. */
export async function seedTenantWithKey(
  client: PgClient,
  tenant: TenantSeed,
  keyName: string,
): Promise<string> {
  await insertTenants(client, [tenant]);
  return (await insertKey(client, tenant.id, "secret", keyName)).key;
}
