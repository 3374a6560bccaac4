import { and, asc, desc, eq, gt, isNull, type SQL } from "drizzle-orm";
import { generateKey, randomToken } from "../auth/keys";
import type { Db } from "../db/client";
import { type ApiKeyRow, apiKeys, auditLog, type TenantRow, tenants } from "../db/schema";
import { AppError } from "../errors";
import { storedPatternsProblems } from "../privacy/redact";
import type { TenantCreateInput, TenantPatchInput } from "./schemas";

/** Who did it and under which request, written with every change. */
export interface Actor {
  actor: string;
  requestId: string;
}

/** A transaction handle, as `db.transaction` passes it. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Locks the tenant row: one tenant's writes under a per-tenant limit serialize, so the limit holds. */
export async function lockTenant(tx: Tx, tenantId: string): Promise<void> {
  const [t] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).for("update");
  if (!t) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
}

/** Writes an audit entry; call it inside the transaction of the change it records. */
export async function audit(
  tx: Tx,
  who: Actor,
  tenantId: string | null,
  action: string,
  target: string,
  data: Record<string, unknown>,
) {
  await tx
    .insert(auditLog)
    .values({ tenantId, actor: who.actor, action, target, requestId: who.requestId, data });
}

/** Maps API field names (snake_case) to columns; undefined fields are left out. */
function columnsOf(input: Partial<TenantCreateInput> & { active?: boolean }): Partial<TenantRow> {
  const map = {
    name: input.name,
    systemPrompt: input.system_prompt,
    model: input.model,
    maxTokensPerResponse: input.max_tokens_per_response,
    monthlyTokenBudget: input.monthly_token_budget,
    rateLimitPerMinute: input.rate_limit_per_minute,
    userRateLimitPerMinute: input.user_rate_limit_per_minute,
    dailyCostBudgetUsd: input.daily_cost_budget_usd,
    conversationCostCapUsd: input.conversation_cost_cap_usd,
    visitorMonthlyTokenShare: input.visitor_monthly_token_share,
    addressMessagesPerMinute: input.address_messages_per_minute,
    addressConversationsPerHour: input.address_conversations_per_hour,
    conversationsPerMinute: input.conversations_per_minute,
    fallbackModel: input.fallback_model,
    timezone: input.timezone,
    pricingOverrides: input.pricing_overrides,
    allowedTools: input.allowed_tools,
    toolExecution: input.tool_execution,
    maxToolSteps: input.max_tool_steps,
    allowedModels: input.allowed_models,
    blockedTopics: input.blocked_topics,
    escalationEmail: input.escalation_email,
    customGreeting: input.custom_greeting,
    policyMessage: input.policy_message,
    allowedOrigins: input.allowed_origins,
    widgetTitle: input.widget_title,
    widgetAccentColor: input.widget_accent_color,
    widgetAvatarUrl: input.widget_avatar_url,
    widgetPosition: input.widget_position,
    widgetLocale: input.widget_locale,
    operatorNameDisplay: input.operator_name_display,
    turnstileSiteKey: input.turnstile_site_key,
    turnstileSecretKey: input.turnstile_secret_key,
    retentionDays: input.retention_days,
    redactPatterns: input.redact_patterns,
    redactBeforeModel: input.redact_before_model,
    active: input.active,
  };
  return Object.fromEntries(Object.entries(map).filter(([, v]) => v !== undefined)) as Partial<TenantRow>;
}

/** The API's view of a tenant row. */
export function tenantOut(row: TenantRow) {
  return {
    tenant_id: row.id,
    name: row.name,
    system_prompt: row.systemPrompt,
    model: row.model,
    max_tokens_per_response: row.maxTokensPerResponse,
    monthly_token_budget: row.monthlyTokenBudget,
    rate_limit_per_minute: row.rateLimitPerMinute,
    user_rate_limit_per_minute: row.userRateLimitPerMinute,
    daily_cost_budget_usd: row.dailyCostBudgetUsd,
    conversation_cost_cap_usd: row.conversationCostCapUsd,
    visitor_monthly_token_share: row.visitorMonthlyTokenShare,
    address_messages_per_minute: row.addressMessagesPerMinute,
    address_conversations_per_hour: row.addressConversationsPerHour,
    conversations_per_minute: row.conversationsPerMinute,
    fallback_model: row.fallbackModel,
    allowed_models: row.allowedModels,
    timezone: row.timezone,
    pricing_overrides: row.pricingOverrides,
    allowed_tools: row.allowedTools,
    tool_execution: row.toolExecution,
    max_tool_steps: row.maxToolSteps,
    blocked_topics: row.blockedTopics,
    escalation_email: row.escalationEmail,
    custom_greeting: row.customGreeting,
    policy_message: row.policyMessage,
    allowed_origins: row.allowedOrigins,
    widget_title: row.widgetTitle,
    widget_accent_color: row.widgetAccentColor,
    widget_avatar_url: row.widgetAvatarUrl,
    widget_position: row.widgetPosition,
    widget_locale: row.widgetLocale,
    operator_name_display: row.operatorNameDisplay,
    turnstile_site_key: row.turnstileSiteKey,
    // The secret key is write-only: whoever reads a tenant learns that it is set, never what it is.
    turnstile_enabled: row.turnstileSecretKey !== null,
    retention_days: row.retentionDays,
    redact_patterns: row.redactPatterns,
    redact_pattern_problems: storedPatternsProblems(row.redactPatterns),
    redact_before_model: row.redactBeforeModel,
    active: row.active,
    config_version: row.configVersion,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** What the audit log keeps of a write: the Turnstile secret key only as whether it was set. */
function redacted<T extends { turnstile_secret_key?: string | null }>(input: T) {
  if (input.turnstile_secret_key == null) return input;
  return { ...input, turnstile_secret_key: "[redacted]" };
}

/** A secret key without a site key would ask browsers for a check the widget cannot show. */
function checkTurnstile(row: TenantRow): void {
  if (row.turnstileSecretKey !== null && row.turnstileSiteKey === null) {
    throw new AppError("VALIDATION_FAILED", "turnstile_secret_key needs a turnstile_site_key", {
      details: [{ path: "turnstile_site_key", message: "required while turnstile_secret_key is set" }],
    });
  }
}

/** The API's view of a key row: never the hash. */
export function keyOut(row: ApiKeyRow) {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    kind: row.kind,
    name: row.name,
    prefix: row.prefix,
    last4: row.last4,
    created_at: row.createdAt.toISOString(),
    revoked_at: row.revokedAt ? row.revokedAt.toISOString() : null,
  };
}

export async function createTenant(db: Db, who: Actor, input: TenantCreateInput): Promise<TenantRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(tenants)
      .values({ id: input.tenant_id, ...columnsOf(input) } as typeof tenants.$inferInsert)
      .onConflictDoNothing()
      .returning();
    if (!row) throw new AppError("CONFLICT", `tenant ${input.tenant_id} already exists`);
    checkTurnstile(row);
    await audit(tx, who, row.id, "tenant.create", row.id, { config: redacted(input) });
    return row;
  });
}

export async function getTenant(db: Db, id: string): Promise<TenantRow> {
  const [row] = await db.select().from(tenants).where(eq(tenants.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no tenant ${id}`);
  return row;
}

/** Lists tenants in id order; the cursor is the last id of the previous page. */
export async function listTenants(
  db: Db,
  opts: { limit: number; cursor?: string; includeInactive: boolean },
) {
  const conds: SQL[] = [];
  if (opts.cursor) conds.push(gt(tenants.id, opts.cursor));
  if (!opts.includeInactive) conds.push(eq(tenants.active, true));
  const rows = await db
    .select()
    .from(tenants)
    .where(and(...conds))
    .orderBy(asc(tenants.id))
    .limit(opts.limit + 1);
  const page = rows.slice(0, opts.limit);
  const last = page.at(-1);
  return { rows: page, nextCursor: rows.length > opts.limit && last ? last.id : null };
}

/** Applies a partial update, bumps the config version and records what changed. */
export async function updateTenant(
  db: Db,
  who: Actor,
  id: string,
  patch: TenantPatchInput,
): Promise<TenantRow> {
  return db.transaction(async (tx) => {
    const [before] = await tx.select().from(tenants).where(eq(tenants.id, id)).for("update");
    if (!before) throw new AppError("NOT_FOUND", `no tenant ${id}`);
    const [row] = await tx
      .update(tenants)
      .set({ ...columnsOf(patch), configVersion: before.configVersion + 1, updatedAt: new Date() })
      .where(eq(tenants.id, id))
      .returning();
    if (!row) throw new AppError("NOT_FOUND", `no tenant ${id}`);
    checkTurnstile(row);
    const action = patch.active === false ? "tenant.deactivate" : "tenant.update";
    await audit(tx, who, id, action, id, { changes: redacted(patch) });
    return row;
  });
}

export async function createApiKey(
  db: Db,
  who: Actor,
  tenantId: string,
  input: { kind: "secret" | "publishable"; name: string },
): Promise<{ row: ApiKeyRow; key: string }> {
  const made = await generateKey(input.kind);
  return db.transaction(async (tx) => {
    const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
    if (!tenant) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
    const [row] = await tx
      .insert(apiKeys)
      .values({
        id: `key_${randomToken(16)}`,
        tenantId,
        kind: input.kind,
        name: input.name,
        prefix: made.prefix,
        hash: made.hash,
        last4: made.last4,
      })
      .returning();
    if (!row) throw new AppError("INTERNAL", "key was not stored");
    await audit(tx, who, tenantId, "key.create", row.id, {
      kind: row.kind,
      name: row.name,
      prefix: row.prefix,
    });
    return { row, key: made.key };
  });
}

export async function listApiKeys(db: Db, tenantId: string): Promise<ApiKeyRow[]> {
  await getTenant(db, tenantId);
  return db.select().from(apiKeys).where(eq(apiKeys.tenantId, tenantId)).orderBy(asc(apiKeys.createdAt));
}

/** Revokes a key of this tenant; a key of another tenant is not found, whatever its id. */
export async function revokeApiKey(db: Db, who: Actor, tenantId: string, keyId: string): Promise<ApiKeyRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)))
      .returning();
    if (!row) {
      const [existing] = await tx
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId)));
      if (existing) return existing;
      throw new AppError("NOT_FOUND", `no key ${keyId} for tenant ${tenantId}`);
    }
    await audit(tx, who, tenantId, "key.revoke", keyId, { prefix: row.prefix });
    return row;
  });
}

export async function listAudit(db: Db, tenantId: string, limit: number) {
  await getTenant(db, tenantId);
  const rows = await db
    .select()
    .from(auditLog)
    .where(eq(auditLog.tenantId, tenantId))
    .orderBy(desc(auditLog.id))
    .limit(limit);
  return rows.map((r) => ({
    id: r.id,
    tenant_id: r.tenantId,
    actor: r.actor,
    action: r.action,
    target: r.target,
    request_id: r.requestId,
    data: r.data,
    created_at: r.createdAt.toISOString(),
  }));
}
