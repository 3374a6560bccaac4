/**
 * Which tools the bot of a tenant may use on the request path: its registered, enabled tools whose
 * names are in its `allowed_tools`. The enabled tools are read through a named cache (isolate,
 * Redis, Postgres) keyed by tenant and dropped on every registry write; `allowed_tools` is applied
 * after the cache, from the tenant config the caller holds, so a config change needs no extra
 * invalidation here.
 */
import { and, asc, eq } from "drizzle-orm";
import { namedCache } from "../cache/tiered.ts";
import { tools } from "../db/schema.ts";
import type { Services } from "../services.ts";
import type { TenantConfig } from "../tenants/config.ts";
import type { RegisteredTool } from "./types.ts";

// Bounded like the tenant cache: one entry per tenant, the tool list of a tenant at most 64 tools.
// Each tool holds the secret its calls are signed with: sealed in Redis.
const enabledTools = namedCache<RegisteredTool[]>(
  "tools",
  2_000,
  async (svc, tenantId) => {
    const rows = await svc.dbh.db
      .select()
      .from(tools)
      .where(and(eq(tools.tenantId, tenantId), eq(tools.enabled, true)))
      .orderBy(asc(tools.name));
    return rows.map((r) => ({
      id: r.id,
      tenantId: r.tenantId,
      name: r.name,
      description: r.description,
      parameters: r.parameters,
      target: r.target,
      timeoutMs: r.timeoutMs,
      enabled: r.enabled,
      secret: r.secret,
    }));
  },
  { sealed: true },
);

/** The tools the tenant's bot may call: registered, enabled, and named in allowed_tools. */
export async function toolsForTenant(
  svc: Services,
  tenant: Pick<TenantConfig, "id" | "allowedTools">,
): Promise<RegisteredTool[]> {
  if (tenant.allowedTools.length === 0) return [];
  const all = (await enabledTools.get(svc, tenant.id)) ?? [];
  return all.filter((t) => tenant.allowedTools.includes(t.name));
}

/** Drops the cached tool list of a tenant; call after a registry write commits. */
export function invalidateTools(svc: Services, tenantId: string): Promise<void> {
  return enabledTools.invalidate(svc, tenantId);
}
