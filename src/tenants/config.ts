import { eq } from "drizzle-orm";
import { namedCache } from "../cache/tiered";
import { apiKeys, type TenantRow, tenants } from "../db/schema";
import type { Services } from "../services";

/** What the request path needs of a tenant: the row without its timestamps. */
export type TenantConfig = Omit<TenantRow, "createdAt" | "updatedAt">;

/** What auth needs of a key; the hash is compared, never the key. */
export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  kind: "secret" | "publishable";
  hash: string;
  revoked: boolean;
}

// The request path's named caches (src/cache/tiered.ts): isolate memory, Redis, then Postgres.
// A config holds the tenant's identity and Turnstile secrets: sealed in Redis.
const tenantConfigs = namedCache<TenantConfig>(
  "tenant",
  2_000,
  async (svc, tenantId) => {
    const [row] = await svc.dbh.db.select().from(tenants).where(eq(tenants.id, tenantId)).limit(1);
    if (!row) return undefined;
    const { createdAt: _c, updatedAt: _u, ...config } = row;
    return config;
  },
  { sealed: true },
);

const apiKeyRecords = namedCache<ApiKeyRecord>("key", 10_000, async (svc, prefix) => {
  const [row] = await svc.dbh.db
    .select({
      id: apiKeys.id,
      tenantId: apiKeys.tenantId,
      kind: apiKeys.kind,
      hash: apiKeys.hash,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .where(eq(apiKeys.prefix, prefix))
    .limit(1);
  if (!row) return undefined;
  return {
    id: row.id,
    tenantId: row.tenantId,
    kind: row.kind,
    hash: row.hash,
    revoked: row.revokedAt !== null,
  };
});

/** The tenant's configuration, active or not; undefined when no such tenant exists. */
export function getTenantConfig(svc: Services, tenantId: string): Promise<TenantConfig | undefined> {
  return tenantConfigs.get(svc, tenantId);
}

/**
 * The key record behind a prefix, found through the unique prefix index. `cachedOnly`: only what the
 * isolate or Redis already holds, never Postgres (for an address over its failed-attempt limit).
 */
export function findApiKey(
  svc: Services,
  prefix: string,
  { cachedOnly = false } = {},
): Promise<ApiKeyRecord | undefined> {
  return cachedOnly ? apiKeyRecords.cached(svc, prefix) : apiKeyRecords.get(svc, prefix);
}

/** The key record this isolate holds fresh under `prefix`, with no I/O (see `findApiKey`). */
export function freshApiKey(svc: Services, prefix: string): ApiKeyRecord | undefined {
  return apiKeyRecords.fresh(svc, prefix);
}

/** Drops a tenant's cached config here and in Redis; called after the Postgres write commits. */
export function invalidateTenant(svc: Services, tenantId: string): Promise<void> {
  return tenantConfigs.invalidate(svc, tenantId);
}

/** Drops a key's cached record here and in Redis. */
export function invalidateApiKey(svc: Services, prefix: string): Promise<void> {
  return apiKeyRecords.invalidate(svc, prefix);
}
