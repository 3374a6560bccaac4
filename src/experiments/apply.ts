/**
 * Experiments on the chat path: the tenant's switched-on experiments (cached like tenant config:
 * isolate -> Redis -> Postgres, dropped on every change), the user's variant in each running one,
 * and the tenant config with the variants' overrides merged in.
 */
import { and, eq } from "drizzle-orm";
import { namedCache } from "../cache/tiered";
import { experiments, type VariantOverrides } from "../db/schema";
import type { Services } from "../services";
import type { TenantConfig } from "../tenants/config";
import { type Assignment, assignUser, defOf, type ExperimentDef, statusAt } from "./assign";

/** The config a request runs with, and the assignment it is recorded under. */
export interface AppliedExperiments {
  /** The tenant config with system prompt, model and max tokens overridden. */
  config: TenantConfig;
  /** The merged overrides themselves: routes apply `model` and `temperature` over the caller's. */
  overrides: VariantOverrides;
  /** Running experiments' names joined by "," in name order; null when none applies. */
  experiment: string | null;
  /** The user's variants, in the same order as `experiment`. */
  variant: string | null;
  assignments: Assignment[];
}

// A named cache like the tenant config's (src/cache/tiered.ts): isolate memory, Redis, Postgres.
const switchedOn = namedCache<ExperimentDef[]>("experiments", 2_000, async (svc, tenantId) => {
  const rows = await svc.dbh.db
    .select()
    .from(experiments)
    .where(and(eq(experiments.tenantId, tenantId), eq(experiments.active, true)));
  // Code-point order, not the database collation's: labels and merging must not depend on it.
  return rows.map(defOf).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
});

/** The tenant's experiments whose active flag is on (running, scheduled or ended), in name order. */
export async function switchedOnExperiments(svc: Services, tenantId: string): Promise<ExperimentDef[]> {
  return (await switchedOn.get(svc, tenantId)) ?? [];
}

/** Drops the tenant's cached experiments here and in Redis; called after a change commits. */
export function invalidateExperiments(svc: Services, tenantId: string): Promise<void> {
  return switchedOn.invalidate(svc, tenantId);
}

/**
 * Merges overrides over the tenant config. `defs` come in name order (code points) and the first
 * experiment that sets a field wins it, so the outcome never depends on storage or arrival order.
 */
function merge(
  tenant: TenantConfig,
  defs: readonly ExperimentDef[],
  chosen: ReadonlyMap<string, string>,
): { config: TenantConfig; overrides: VariantOverrides } {
  const o: VariantOverrides = {};
  for (const d of defs) {
    const picked = chosen.get(d.name);
    const ov = d.variants.find((v) => v.name === picked)?.overrides;
    if (!ov) continue;
    o.system_prompt ??= ov.system_prompt;
    o.model ??= ov.model;
    o.temperature ??= ov.temperature;
    o.max_tokens ??= ov.max_tokens;
  }
  return {
    config: {
      ...tenant,
      systemPrompt: o.system_prompt ?? tenant.systemPrompt,
      model: o.model ?? tenant.model,
      maxTokensPerResponse: o.max_tokens ?? tenant.maxTokensPerResponse,
    },
    overrides: o,
  };
}

const none = (tenant: TenantConfig): AppliedExperiments => ({
  config: tenant,
  overrides: {},
  experiment: null,
  variant: null,
  assignments: [],
});

/**
 * Assigns the user in every running experiment of the tenant and merges the variants' overrides.
 * With no running experiment it costs one cached lookup (an empty list is cached like any other).
 */
export async function applyExperiments(
  svc: Services,
  tenant: TenantConfig,
  userId: string,
  now = Date.now(),
): Promise<AppliedExperiments> {
  const running = (await switchedOnExperiments(svc, tenant.id)).filter((d) => statusAt(d, now) === "running");
  if (running.length === 0) return none(tenant);
  const assignments = await assignUser(svc.cache, tenant.id, running, userId, now);
  const chosen = new Map(assignments.map((a) => [a.experiment, a.variant]));
  return {
    ...merge(tenant, running, chosen),
    experiment: assignments.map((a) => a.experiment).join(","),
    variant: assignments.map((a) => a.variant).join(","),
    assignments,
  };
}

/**
 * The config for an assignment made earlier (a conversation's, stored at its start). Labels stay
 * as stored; overrides apply only from experiments still running, so pausing or ending an
 * experiment stops its overrides at once, also inside conversations already under way.
 */
export async function applyAssignment(
  svc: Services,
  tenant: TenantConfig,
  stored: { experiment: string | null; variant: string | null },
  now = Date.now(),
): Promise<AppliedExperiments> {
  if (!stored.experiment || !stored.variant) return none(tenant);
  const names = stored.experiment.split(",");
  const variants = stored.variant.split(",");
  const chosen = new Map(names.map((n, i) => [n, variants[i] ?? ""]));
  const running = (await switchedOnExperiments(svc, tenant.id)).filter(
    (d) => chosen.has(d.name) && statusAt(d, now) === "running",
  );
  return {
    ...merge(tenant, running, chosen),
    experiment: stored.experiment,
    variant: stored.variant,
    assignments: names.map((n, i) => ({ experiment: n, variant: variants[i] ?? "", source: "stored" })),
  };
}
