/** A tenant's alert settings: stored overrides, the rules they make, and the alert webhook. */
import { and, eq, isNotNull, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { alertSettings, tenants } from "../db/schema.ts";
import { AppError } from "../errors.ts";
import { newWebhookSecret } from "../notify/webhook.ts";
import { type Actor, audit } from "../tenants/service.ts";
import {
  type AlertSettingsInput,
  effectiveRules,
  handoffWaitSeconds,
  mergeOverrides,
  RULES,
} from "./rules.ts";

export interface AlertSettingsView {
  tenant_id: string;
  webhook_url: string | null;
  /**
   * The webhook's signing secret, only in the answer to the PUT that set a new webhook_url: it is
   * shown once (rotate it to get a new one), never in a GET.
   */
  webhook_secret?: string;
  /** Seconds a conversation may wait for a human before an alert; 0: off (the handoff_wait rule). */
  handoff_wait_alert_seconds: number;
  /** What the tenant changed, per rule. */
  overrides: Record<string, unknown>;
  /** Every rule as it applies: defaults with the overrides. */
  rules: {
    rule: string;
    metric: string;
    description: string;
    unit: string;
    op: "gt" | "lt";
    threshold: number;
    default_threshold: number;
    window_hours: number;
    min_events: number;
    enabled: boolean;
    /** False for handoff_wait: it reads the conversations waiting now, with no window or minimum. */
    windowed: boolean;
  }[];
}

function view(
  tenantId: string,
  overrides: Record<string, never>,
  webhookUrl: string | null,
): AlertSettingsView {
  return {
    tenant_id: tenantId,
    webhook_url: webhookUrl,
    handoff_wait_alert_seconds: handoffWaitSeconds(overrides),
    overrides,
    rules: effectiveRules(overrides).map((r) => ({
      rule: r.name,
      metric: RULES[r.name].metric,
      description: RULES[r.name].description,
      unit: RULES[r.name].unit,
      op: RULES[r.name].op,
      threshold: r.threshold,
      default_threshold: RULES[r.name].threshold,
      window_hours: r.windowHours,
      min_events: r.minEvents,
      enabled: r.enabled,
      windowed: RULES[r.name].events !== "waiting_conversations",
    })),
  };
}

/** 404 unless the tenant exists. */
export async function requireTenant(db: Pick<Db, "select">, tenantId: string): Promise<void> {
  const [t] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
  if (!t) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
}

export async function getAlertSettings(db: Db, tenantId: string): Promise<AlertSettingsView> {
  await requireTenant(db, tenantId);
  const [row] = await db.select().from(alertSettings).where(eq(alertSettings.tenantId, tenantId));
  return view(tenantId, (row?.rules ?? {}) as Record<string, never>, row?.webhookUrl ?? null);
}

/** Applies a PUT: overrides merged per rule (null removes one), webhook replaced when given; audited. */
export async function putAlertSettings(
  db: Db,
  tenantId: string,
  input: AlertSettingsInput,
  who: Actor,
): Promise<AlertSettingsView> {
  return db.transaction(async (tx) => {
    await requireTenant(tx, tenantId);
    // Row lock: two concurrent PUTs merge one after the other instead of losing an override.
    const [row] = await tx
      .select()
      .from(alertSettings)
      .where(eq(alertSettings.tenantId, tenantId))
      .for("update");
    const rules = mergeOverrides(row?.rules ?? {}, input.rules, input.handoff_wait_alert_seconds);
    const webhookUrl = input.webhook_url === undefined ? (row?.webhookUrl ?? null) : input.webhook_url;
    // Each webhook has its own secret: a new URL gets a new one (the old receiver's secret must not
    // sign for the new one), the same URL keeps it, no URL has none.
    const newSecret = webhookUrl !== null && webhookUrl !== (row?.webhookUrl ?? null);
    const webhookSecret =
      webhookUrl === null ? null : newSecret ? newWebhookSecret() : (row?.webhookSecret ?? null);
    await tx
      .insert(alertSettings)
      .values({ tenantId, rules, webhookUrl, webhookSecret })
      .onConflictDoUpdate({
        target: alertSettings.tenantId,
        set: { rules, webhookUrl, webhookSecret, updatedAt: sql`now()` },
      });
    // The webhook may carry a token: the audit log records that it changed, not its value.
    await audit(tx, who, tenantId, "alert_settings.update", tenantId, {
      rules: input.rules ?? {},
      ...(input.handoff_wait_alert_seconds === undefined
        ? {}
        : { handoff_wait_alert_seconds: input.handoff_wait_alert_seconds }),
      webhook_url_changed: input.webhook_url !== undefined,
    });
    const out = view(tenantId, rules as Record<string, never>, webhookUrl);
    return newSecret && webhookSecret ? { ...out, webhook_secret: webhookSecret } : out;
  });
}

/** The answer to a rotation: the new secret, shown this once. */
export interface RotatedWebhookSecret {
  tenant_id: string;
  webhook_url: string;
  webhook_secret: string;
}

/** Replaces the webhook's signing secret (the old one stops signing at once); audited. 409 without a webhook. */
export async function rotateWebhookSecret(
  db: Db,
  tenantId: string,
  who: Actor,
): Promise<RotatedWebhookSecret> {
  return db.transaction(async (tx) => {
    await requireTenant(tx, tenantId);
    const secret = newWebhookSecret();
    const [row] = await tx
      .update(alertSettings)
      .set({ webhookSecret: secret, updatedAt: sql`now()` })
      .where(and(eq(alertSettings.tenantId, tenantId), isNotNull(alertSettings.webhookUrl)))
      .returning({ url: alertSettings.webhookUrl });
    if (!row?.url) throw new AppError("CONFLICT", "no alert webhook to sign: set webhook_url first");
    await audit(tx, who, tenantId, "alert_settings.rotate_webhook_secret", tenantId, {});
    return { tenant_id: tenantId, webhook_url: row.url, webhook_secret: secret };
  });
}
