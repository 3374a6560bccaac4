/**
 * The tool registry's writes and reads in Postgres. Every write and its audit entry share one
 * transaction; the secret is made here, returned only by create and rotate, and never audited.
 */
import { and, asc, count, eq, sql } from "drizzle-orm";
import { randomToken } from "../auth/keys.ts";
import type { Db } from "../db/client.ts";
import { type ToolRow, tools } from "../db/schema.ts";
import type { Env } from "../env.ts";
import { AppError } from "../errors.ts";
import { type Actor, audit, lockTenant } from "../tenants/service.ts";
import {
  MAX_TOOLS_PER_TENANT,
  parametersProblem,
  type ToolCreateInput,
  type ToolPatchInput,
} from "./schemas.ts";
import { targetProblem } from "./targets.ts";
import type { ToolTarget } from "./types.ts";

/** A tool secret: 40 base62 characters behind a prefix that makes it recognisable in a secret store. */
export const newToolSecret = (): string => `tsec_${randomToken(40)}`;

/** The API's view of a tool (never its secret); `allowed`: its name is in the tenant's allowed_tools. */
export function toolOut(row: ToolRow, allowedTools: readonly string[]) {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    name: row.name,
    description: row.description,
    parameters: row.parameters,
    target: row.target,
    timeout_ms: row.timeoutMs,
    enabled: row.enabled,
    allowed: allowedTools.includes(row.name),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

function refuse(path: string, message: string): never {
  throw new AppError("VALIDATION_FAILED", `invalid tool: ${path}: ${message}`, {
    details: [{ path, message }],
  });
}

/** Checks what zod cannot: the schema is usable, the target is the tenant's to use. */
function checkDefinition(
  tenantId: string,
  env: Pick<Env, "ENVIRONMENT">,
  d: { parameters?: Record<string, unknown>; target?: ToolTarget },
): void {
  if (d.parameters) {
    const problem = parametersProblem(d.parameters);
    if (problem) refuse("parameters", problem);
  }
  if (d.target) {
    const problem = targetProblem(d.target, tenantId, env);
    if (problem) refuse(problem.path, problem.message);
  }
}

/** Registers a tool; the answer is the only place its secret is ever shown. */
export async function createTool(
  db: Db,
  env: Pick<Env, "ENVIRONMENT">,
  who: Actor,
  tenantId: string,
  input: ToolCreateInput,
): Promise<{ row: ToolRow; secret: string }> {
  checkDefinition(tenantId, env, input);
  return db.transaction(async (tx) => {
    await lockTenant(tx, tenantId);
    const [all] = await tx.select({ n: count() }).from(tools).where(eq(tools.tenantId, tenantId));
    if ((all?.n ?? 0) >= MAX_TOOLS_PER_TENANT)
      throw new AppError(
        "CONFLICT",
        `a tenant keeps at most ${MAX_TOOLS_PER_TENANT} tools; delete unused ones`,
      );
    const secret = newToolSecret();
    const [row] = await tx
      .insert(tools)
      .values({
        id: crypto.randomUUID(),
        tenantId,
        name: input.name,
        description: input.description,
        parameters: input.parameters,
        target: input.target,
        timeoutMs: input.timeout_ms,
        enabled: input.enabled,
        secret,
      })
      .onConflictDoNothing()
      .returning();
    if (!row) throw new AppError("CONFLICT", `tool ${input.name} already exists`);
    await audit(tx, who, tenantId, "tool.create", row.name, { definition: toolOut(row, []) });
    return { row, secret };
  });
}

/** One tool of the tenant; another tenant's tool of the same name is simply not found. */
export async function getTool(db: Db, tenantId: string, name: string): Promise<ToolRow> {
  const [row] = await db
    .select()
    .from(tools)
    .where(and(eq(tools.tenantId, tenantId), eq(tools.name, name)))
    .limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no tool ${name}`);
  return row;
}

/** The tenant's tools by name. */
export function listTools(db: Db, tenantId: string): Promise<ToolRow[]> {
  return db.select().from(tools).where(eq(tools.tenantId, tenantId)).orderBy(asc(tools.name));
}

/** Changes a tool (its name and secret stay) and audits the change, in one transaction. */
export async function updateTool(
  db: Db,
  env: Pick<Env, "ENVIRONMENT">,
  who: Actor,
  tenantId: string,
  name: string,
  patch: ToolPatchInput,
): Promise<ToolRow> {
  checkDefinition(tenantId, env, patch);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(tools)
      .set({
        ...(patch.description !== undefined && { description: patch.description }),
        ...(patch.parameters !== undefined && { parameters: patch.parameters }),
        ...(patch.target !== undefined && { target: patch.target }),
        ...(patch.timeout_ms !== undefined && { timeoutMs: patch.timeout_ms }),
        ...(patch.enabled !== undefined && { enabled: patch.enabled }),
        updatedAt: sql`now()`,
      })
      .where(and(eq(tools.tenantId, tenantId), eq(tools.name, name)))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no tool ${name}`);
    await audit(tx, who, tenantId, "tool.update", name, { changes: patch });
    return row;
  });
}

/** Deletes a tool and audits it, in one transaction. */
export async function deleteTool(db: Db, who: Actor, tenantId: string, name: string): Promise<ToolRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .delete(tools)
      .where(and(eq(tools.tenantId, tenantId), eq(tools.name, name)))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no tool ${name}`);
    await audit(tx, who, tenantId, "tool.delete", name, { definition: toolOut(row, []) });
    return row;
  });
}

/** Gives a tool a new secret (the old one stops working at once); the answer shows it once. */
export async function rotateToolSecret(
  db: Db,
  who: Actor,
  tenantId: string,
  name: string,
): Promise<{ row: ToolRow; secret: string }> {
  return db.transaction(async (tx) => {
    const secret = newToolSecret();
    const [row] = await tx
      .update(tools)
      .set({ secret, updatedAt: sql`now()` })
      .where(and(eq(tools.tenantId, tenantId), eq(tools.name, name)))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no tool ${name}`);
    await audit(tx, who, tenantId, "tool.rotate_secret", name, {});
    return { row, secret };
  });
}
