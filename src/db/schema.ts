import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

/** Per-model price overrides, USD per million tokens. */
export type PricingOverrides = Record<string, { input: number; output: number }>;

/** A tenant and its whole bot configuration (the reference design's TenantConfig, and more). */
export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  systemPrompt: text("system_prompt").notNull(),
  model: text("model").notNull().default("gpt-4o-mini"),
  maxTokensPerResponse: integer("max_tokens_per_response").notNull().default(500),
  monthlyTokenBudget: bigint("monthly_token_budget", { mode: "number" }).notNull().default(1_000_000),
  rateLimitPerMinute: integer("rate_limit_per_minute").notNull().default(60),
  userRateLimitPerMinute: integer("user_rate_limit_per_minute").notNull().default(30),
  dailyCostBudgetUsd: doublePrecision("daily_cost_budget_usd"),
  conversationCostCapUsd: doublePrecision("conversation_cost_cap_usd").notNull().default(0.5),
  fallbackModel: text("fallback_model"),
  timezone: text("timezone").notNull().default("UTC"),
  pricingOverrides: jsonb("pricing_overrides").$type<PricingOverrides>().notNull().default({}),
  allowedTools: jsonb("allowed_tools").$type<string[]>().notNull().default([]),
  blockedTopics: jsonb("blocked_topics").$type<string[]>().notNull().default([]),
  escalationEmail: text("escalation_email").notNull().default(""),
  customGreeting: text("custom_greeting").notNull().default("Hello! How can I help you today?"),
  allowedOrigins: jsonb("allowed_origins").$type<string[]>().notNull().default([]),
  active: boolean("active").notNull().default(true),
  configVersion: integer("config_version").notNull().default(1),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** API keys: only the SHA-256 of the key is stored; the unique prefix finds it without a scan. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: text("kind", { enum: ["secret", "publishable"] }).notNull(),
    name: text("name").notNull().default(""),
    prefix: text("prefix").notNull(),
    hash: text("hash").notNull(),
    last4: text("last4").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("api_keys_prefix_idx").on(t.prefix), index("api_keys_tenant_idx").on(t.tenantId)],
);

/** Who changed what: every admin write lands here in the same transaction as the change. */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id"),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target").notNull(),
    requestId: text("request_id").notNull(),
    data: jsonb("data").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
  },
  (t) => [index("audit_log_tenant_idx").on(t.tenantId, t.createdAt)],
);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
