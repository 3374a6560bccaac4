import { and, asc, count, eq, gt, isNull, or } from "drizzle-orm";
import { randomToken } from "../auth/keys";
import type { Db } from "../db/client";
import { type ExperimentRow, experiments, tenants } from "../db/schema";
import { AppError } from "../errors";
import { type Actor, audit, type Tx } from "../tenants/service";
import { statusAt } from "./assign";
import {
  type Definition,
  definitionProblems,
  type ExperimentCreateInput,
  type ExperimentPatchInput,
} from "./schemas";

/** Experiments a tenant may keep, finished ones included. */
export const MAX_EXPERIMENTS_PER_TENANT = 100;
/**
 * Experiments a tenant may have switched on and not ended at once. Each one costs every chat
 * request a hash and a Redis key, and their names share one analytics column (docs/experiments.md).
 */
export const MAX_ACTIVE_EXPERIMENTS = 10;

const ms = (d: Date | null) => (d ? d.getTime() : null);

/** The API's view of an experiment row. */
export function experimentOut(row: ExperimentRow, now = Date.now()) {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    name: row.name,
    description: row.description,
    variants: row.variants,
    split: row.split,
    control: row.controlVariant,
    salt: row.salt,
    active: row.active,
    status: statusAt({ active: row.active, startsAt: ms(row.startsAt), endsAt: ms(row.endsAt) }, now),
    starts_at: row.startsAt ? row.startsAt.toISOString() : null,
    ends_at: row.endsAt ? row.endsAt.toISOString() : null,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** Locks the tenant row: experiment writes of one tenant serialize, so the limits hold under races. */
async function lockTenant(tx: Tx, tenantId: string): Promise<void> {
  const [t] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).for("update");
  if (!t) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
}

/** Active and not ended (scheduled ones count: they will run). */
function liveCondition(tenantId: string, now: Date) {
  return and(
    eq(experiments.tenantId, tenantId),
    eq(experiments.active, true),
    or(isNull(experiments.endsAt), gt(experiments.endsAt, now)),
  );
}

async function liveCount(tx: Tx, tenantId: string, now: Date): Promise<number> {
  const [r] = await tx.select({ n: count() }).from(experiments).where(liveCondition(tenantId, now));
  return r?.n ?? 0;
}

function refuse(problems: { path: string; message: string }[]): never {
  const summary = problems.map((p) => `${p.path}: ${p.message}`).join("; ");
  throw new AppError("VALIDATION_FAILED", `invalid experiment: ${summary}`, { details: problems });
}

const isLive = (d: { active: boolean; endsAt: Date | null }, now: Date) =>
  d.active && (d.endsAt === null || d.endsAt.getTime() > now.getTime());

/** Creates an experiment and its audit entry in one transaction. */
export async function createExperiment(
  db: Db,
  who: Actor,
  tenantId: string,
  input: ExperimentCreateInput,
): Promise<ExperimentRow> {
  const def: Definition = {
    variants: input.variants.map((v) => ({ name: v.name, overrides: v.overrides })),
    split: input.split,
    control: input.control ?? input.variants[0]?.name ?? "",
    startsAt: input.starts_at ? new Date(input.starts_at) : null,
    endsAt: input.ends_at ? new Date(input.ends_at) : null,
  };
  const problems = definitionProblems(def);
  if (problems.length > 0) refuse(problems);
  return db.transaction(async (tx) => {
    await lockTenant(tx, tenantId);
    const now = new Date();
    const [all] = await tx.select({ n: count() }).from(experiments).where(eq(experiments.tenantId, tenantId));
    if ((all?.n ?? 0) >= MAX_EXPERIMENTS_PER_TENANT)
      throw new AppError(
        "CONFLICT",
        `a tenant keeps at most ${MAX_EXPERIMENTS_PER_TENANT} experiments; delete finished ones`,
      );
    if (isLive({ active: input.active, endsAt: def.endsAt }, now)) {
      if ((await liveCount(tx, tenantId, now)) >= MAX_ACTIVE_EXPERIMENTS)
        throw new AppError("CONFLICT", `at most ${MAX_ACTIVE_EXPERIMENTS} experiments may be active at once`);
    }
    const [row] = await tx
      .insert(experiments)
      .values({
        id: crypto.randomUUID(),
        tenantId,
        name: input.name,
        description: input.description,
        variants: def.variants,
        split: def.split,
        controlVariant: def.control,
        salt: input.salt ?? randomToken(16),
        active: input.active,
        startsAt: def.startsAt,
        endsAt: def.endsAt,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) throw new AppError("CONFLICT", `experiment ${input.name} already exists`);
    await audit(tx, who, tenantId, "experiment.create", row.name, { definition: experimentOut(row) });
    return row;
  });
}

/** One experiment of the tenant; another tenant's name is simply not found. */
export async function getExperiment(db: Db, tenantId: string, name: string): Promise<ExperimentRow> {
  const [row] = await db
    .select()
    .from(experiments)
    .where(and(eq(experiments.tenantId, tenantId), eq(experiments.name, name)))
    .limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no experiment ${name}`);
  return row;
}

/** The tenant's experiments by name; 404 for an unknown tenant. */
export async function listExperiments(db: Db, tenantId: string): Promise<ExperimentRow[]> {
  const [t] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
  if (!t) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
  return db
    .select()
    .from(experiments)
    .where(eq(experiments.tenantId, tenantId))
    .orderBy(asc(experiments.name));
}

/** Applies a change, checks the merged definition as a whole, and audits it, in one transaction. */
export async function updateExperiment(
  db: Db,
  who: Actor,
  tenantId: string,
  name: string,
  patch: ExperimentPatchInput,
): Promise<ExperimentRow> {
  return db.transaction(async (tx) => {
    await lockTenant(tx, tenantId);
    const [before] = await tx
      .select()
      .from(experiments)
      .where(and(eq(experiments.tenantId, tenantId), eq(experiments.name, name)));
    if (!before) throw new AppError("NOT_FOUND", `no experiment ${name}`);
    const variants =
      patch.variants?.map((v) => ({ name: v.name, overrides: v.overrides })) ?? before.variants;
    const def: Definition = {
      variants,
      split: patch.split ?? before.split,
      control: patch.control ?? before.controlVariant,
      startsAt:
        patch.starts_at !== undefined
          ? patch.starts_at
            ? new Date(patch.starts_at)
            : null
          : before.startsAt,
      endsAt: patch.ends_at !== undefined ? (patch.ends_at ? new Date(patch.ends_at) : null) : before.endsAt,
    };
    const problems = definitionProblems(def);
    if (problems.length > 0) refuse(problems);
    const active = patch.active ?? before.active;
    const now = new Date();
    if (isLive({ active, endsAt: def.endsAt }, now) && !isLive(before, now)) {
      if ((await liveCount(tx, tenantId, now)) >= MAX_ACTIVE_EXPERIMENTS)
        throw new AppError("CONFLICT", `at most ${MAX_ACTIVE_EXPERIMENTS} experiments may be active at once`);
    }
    const [row] = await tx
      .update(experiments)
      .set({
        description: patch.description ?? before.description,
        variants: def.variants,
        split: def.split,
        controlVariant: def.control,
        salt: patch.salt ?? before.salt,
        active,
        startsAt: def.startsAt,
        endsAt: def.endsAt,
        updatedAt: now,
      })
      .where(eq(experiments.id, before.id))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no experiment ${name}`);
    await audit(tx, who, tenantId, "experiment.update", name, { changes: patch });
    return row;
  });
}

/** Deletes an experiment (its analytics rows stay) and audits it, in one transaction. */
export async function deleteExperiment(
  db: Db,
  who: Actor,
  tenantId: string,
  name: string,
): Promise<ExperimentRow> {
  return db.transaction(async (tx) => {
    await lockTenant(tx, tenantId);
    const [row] = await tx
      .delete(experiments)
      .where(and(eq(experiments.tenantId, tenantId), eq(experiments.name, name)))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no experiment ${name}`);
    await audit(tx, who, tenantId, "experiment.delete", name, { definition: experimentOut(row) });
    return row;
  });
}
