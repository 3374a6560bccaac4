import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  customType,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { REFUSAL_REASONS, TURN_OUTCOMES } from "./enums.ts";

export { REFUSAL_REASONS, type RefusalReason, TURN_OUTCOMES } from "./enums.ts";

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
  /** No browser visitor may use more than this fraction of the monthly token budget (1: no limit). */
  visitorMonthlyTokenShare: doublePrecision("visitor_monthly_token_share").notNull().default(0.05),
  /** Per client address, on publishable-key traffic (src/chat/address-limits.ts). */
  addressMessagesPerMinute: integer("address_messages_per_minute").notNull().default(30),
  addressConversationsPerHour: integer("address_conversations_per_hour").notNull().default(20),
  /**
   * New browser conversations per minute, all addresses together (src/chat/address-limits.ts);
   * null: the tenant's `rate_limit_per_minute`.
   */
  conversationsPerMinute: integer("conversations_per_minute"),
  fallbackModel: text("fallback_model"),
  timezone: text("timezone").notNull().default("UTC"),
  pricingOverrides: jsonb("pricing_overrides").$type<PricingOverrides>().notNull().default({}),
  allowedTools: jsonb("allowed_tools").$type<string[]>().notNull().default([]),
  /**
   * Who runs the tools a model asks for on the OpenAI route: the caller ("client", tool calls pass
   * through) or the platform ("server", the tool loop). The conversation API always runs them.
   */
  toolExecution: text("tool_execution", { enum: ["client", "server"] })
    .notNull()
    .default("client"),
  /** Tool rounds the loop runs for one message before the model must answer without tools. */
  maxToolSteps: integer("max_tool_steps").notNull().default(3),
  /** Models an OpenAI-route caller may name besides model and fallback_model. */
  allowedModels: jsonb("allowed_models").$type<string[]>().notNull().default([]),
  blockedTopics: jsonb("blocked_topics").$type<string[]>().notNull().default([]),
  escalationEmail: text("escalation_email").notNull().default(""),
  customGreeting: text("custom_greeting").notNull().default("Hello! How can I help you today?"),
  /** What the bot answers when a blocked topic comes up; empty means the platform default. */
  policyMessage: text("policy_message").notNull().default(""),
  allowedOrigins: jsonb("allowed_origins").$type<string[]>().notNull().default([]),
  /** The widget's look (web/widget): its title (null: the tenant's name), "#rrggbb" accent, https avatar. */
  widgetTitle: text("widget_title"),
  widgetAccentColor: text("widget_accent_color"),
  widgetAvatarUrl: text("widget_avatar_url"),
  widgetPosition: text("widget_position", { enum: ["bottom-right", "bottom-left"] })
    .notNull()
    .default("bottom-right"),
  /** The widget's language; null: the visitor's browser language (English when unsupported). */
  widgetLocale: text("widget_locale", { enum: ["en", "de", "fr", "es", "ja"] }),
  /** How an operator who takes a conversation over is named to the visitor (docs/handoff.md). */
  operatorNameDisplay: text("operator_name_display", { enum: ["full", "first", "none"] })
    .notNull()
    .default("full"),
  /** Cloudflare Turnstile: the public site key the widget renders with; null with the secret: off. */
  turnstileSiteKey: text("turnstile_site_key"),
  /** Turnstile's secret key for siteverify; write-only in the API (never returned). */
  turnstileSecretKey: text("turnstile_secret_key"),
  /**
   * Signs logged-in users' ids (`user_hash`, src/chat/identity.ts): made by the platform, shown once
   * when rotated, never returned; null: browsers cannot claim a user id.
   */
  identitySecret: text("identity_secret"),
  /** Days transcripts and per-event analytics are kept (src/privacy/retention.ts); null: the platform default. */
  retentionDays: integer("retention_days"),
  /** The tenant's own PII patterns (regular expressions, src/privacy/redact.ts), redacted like emails. */
  redactPatterns: jsonb("redact_patterns").$type<string[]>().notNull().default([]),
  /** Redact visitors' messages before they reach the model provider too, not only before storage. */
  redactBeforeModel: boolean("redact_before_model").notNull().default(false),
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

// ---------------------------------------------------------------------------------------------
// Analytics (src/analytics): raw events written by the queue consumer, idempotent by the event id
// made at produce time, and the per-tenant per-UTC-day rollups the dashboard reads. No foreign keys
// to tenants: the consumer writes whole batches at once, and one orphan must not fail a batch.

const tz = { withTimezone: true } as const;
const day = (name: string) => date(name, { mode: "string" });

/**
 * One answered visitor message: latency, tokens, cost, requested and called model, variant, outcome.
 * Partitioned by month of `at` (drizzle/0023, src/privacy/partitions.ts), so keys include `at`.
 */
export const turns = pgTable(
  "turns",
  {
    id: uuid("id").notNull(),
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    userId: text("user_id").notNull(),
    at: timestamp("at", tz).notNull(),
    /** The UTC day of `at`: the rollup row this turn counted into. */
    day: day("day").notNull(),
    turnIndex: integer("turn_index").notNull(),
    /** The model name requested, as written (maybe an alias). */
    model: text("model").notNull(),
    /** The model actually called last, an alias resolved; null when none was (blocked, hand-over). */
    calledModel: text("called_model"),
    experiment: text("experiment"),
    variant: text("variant"),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull(),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull(),
    costUsd: doublePrecision("cost_usd").notNull(),
    latencyMs: doublePrecision("latency_ms").notNull(),
    firstTokenMs: doublePrecision("first_token_ms"),
    outcome: text("outcome", { enum: TURN_OUTCOMES }).notNull(),
    error: text("error"),
    toolsUsed: jsonb("tools_used").$type<string[]>().notNull(),
    /** Each tool call the tool loop ran: name, ok, failure, latencyMs; null when none ran. */
    tools: jsonb("tools").$type<{ name: string; ok: boolean; failure: string | null; latencyMs: number }[]>(),
    channel: text("channel").notNull(),
    receivedAt: timestamp("received_at", tz).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.at] }),
    index("turns_tenant_at_idx").on(t.tenantId, t.at),
    index("turns_conversation_idx").on(t.tenantId, t.conversationId),
    // A visitor's export and erasure (src/privacy).
    index("turns_tenant_user_idx").on(t.tenantId, t.userId),
  ],
);

/**
 * One row per ended conversation: the reference design's ConversationMetrics. Partitioned by month
 * of `started_at` like turns, so keys include `started_at` (a conversation's summaries share it).
 */
export const conversations = pgTable(
  "conversations",
  {
    /** The summary event's id; a second summary of the same conversation is ignored. */
    id: uuid("id").notNull(),
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    userId: text("user_id").notNull(),
    /** The UTC day the conversation started: conversation figures count there. */
    day: day("day").notNull(),
    startedAt: timestamp("started_at", tz).notNull(),
    endedAt: timestamp("ended_at", tz).notNull(),
    turnCount: integer("turn_count").notNull(),
    resolved: boolean("resolved").notNull(),
    escalated: boolean("escalated").notNull(),
    /** The rating that counts: the latest feedback event's, else the summary's own. */
    csat: smallint("csat"),
    /** The rating the summary itself carried. */
    summaryCsat: smallint("summary_csat"),
    totalTokens: bigint("total_tokens", { mode: "number" }).notNull(),
    totalCostUsd: doublePrecision("total_cost_usd").notNull(),
    avgResponseMs: doublePrecision("avg_response_ms").notNull(),
    toolsUsed: jsonb("tools_used").$type<string[]>().notNull(),
    channel: text("channel").notNull(),
    experiment: text("experiment"),
    variant: text("variant"),
    errorCount: integer("error_count").notNull(),
    /** An operator held the conversation at some point (human handoff, docs/handoff.md). */
    humanHandled: boolean("human_handled").notNull().default(false),
    /** First operator message minus when a human was first asked for; null: no operator wrote. */
    firstHumanReplyMs: doublePrecision("first_human_reply_ms"),
    /** Who resolved it; null when it ended unresolved. Summaries from before handoff: the bot. */
    resolvedBy: text("resolved_by", { enum: ["human", "bot"] }),
    receivedAt: timestamp("received_at", tz).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.startedAt] }),
    uniqueIndex("conversations_tenant_conversation_idx").on(t.tenantId, t.conversationId, t.startedAt),
    index("conversations_tenant_started_idx").on(t.tenantId, t.startedAt),
    // A visitor's export and erasure (src/privacy).
    index("conversations_tenant_user_idx").on(t.tenantId, t.userId),
  ],
);

/** A visitor's rating of a conversation; the latest one (by time) is the conversation's CSAT. */
export const feedback = pgTable(
  "feedback",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    userId: text("user_id").notNull(),
    at: timestamp("at", tz).notNull(),
    day: day("day").notNull(),
    csat: smallint("csat").notNull(),
    comment: text("comment"),
    receivedAt: timestamp("received_at", tz).notNull().defaultNow(),
  },
  (t) => [
    index("feedback_conversation_idx").on(t.tenantId, t.conversationId, t.at),
    // Retention deletes by time (src/privacy/retention.ts).
    index("feedback_tenant_at_idx").on(t.tenantId, t.at),
  ],
);

/** A blocked topic hit on the visitor's input or the model's output. */
export const safetyEvents = pgTable(
  "safety_events",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    userId: text("user_id").notNull(),
    at: timestamp("at", tz).notNull(),
    day: day("day").notNull(),
    direction: text("direction", { enum: ["input", "output"] }).notNull(),
    topic: text("topic").notNull(),
    receivedAt: timestamp("received_at", tz).notNull().defaultNow(),
  },
  (t) => [index("safety_events_tenant_at_idx").on(t.tenantId, t.at)],
);

/** Per tenant per UTC day: the sums every dashboard figure is derived from. */
export const tenantDaily = pgTable(
  "tenant_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    turns: integer("turns").notNull().default(0),
    /** Turns that reached a model (ok + error): the base of latency and error rate. */
    answered: integer("answered").notNull().default(0),
    errors: integer("errors").notNull().default(0),
    /** Turns the client left mid-answer: neither answered nor errors. */
    disconnected: integer("disconnected").notNull().default(0),
    blocked: integer("blocked").notNull().default(0),
    /** Messages handed to a human without a model call. */
    human: integer("human").notNull().default(0),
    refused: integer("refused").notNull().default(0),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    costUsd: doublePrecision("cost_usd").notNull().default(0),
    latencySumMs: doublePrecision("latency_sum_ms").notNull().default(0),
    activeUsers: integer("active_users").notNull().default(0),
    conversations: integer("conversations").notNull().default(0),
    conversationTurns: bigint("conversation_turns", { mode: "number" }).notNull().default(0),
    resolved: integer("resolved").notNull().default(0),
    escalated: integer("escalated").notNull().default(0),
    csatSum: integer("csat_sum").notNull().default(0),
    csatCount: integer("csat_count").notNull().default(0),
    conversationTokens: bigint("conversation_tokens", { mode: "number" }).notNull().default(0),
    conversationCostUsd: doublePrecision("conversation_cost_usd").notNull().default(0),
    safetyEvents: integer("safety_events").notNull().default(0),
    /** Conversations an operator held; of the resolved, those a human resolved (the bot: the rest). */
    humanHandled: integer("human_handled").notNull().default(0),
    resolvedByHuman: integer("resolved_by_human").notNull().default(0),
    /** Conversations with a first human reply time, and the sum of those times. */
    humanReplies: integer("human_replies").notNull().default(0),
    humanReplyMs: doublePrecision("human_reply_ms").notNull().default(0),
    updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);

/** Who was active on a day: a row per (tenant, UTC day, user), so daily active users count once. */
export const tenantDailyUsers = pgTable(
  "tenant_daily_users",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    userId: text("user_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.userId] })],
);

/** Response-time histogram per tenant per UTC day (log-linear buckets, src/analytics/latency.ts). */
export const tenantLatencyDaily = pgTable(
  "tenant_latency_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    bucket: smallint("bucket").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.bucket] })],
);

/** Queue messages that could not be written, kept for inspection and replay. */
export const deadLetters = pgTable(
  "dead_letters",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    /** The queue's message id: a redelivered dead letter is stored once. */
    messageId: text("message_id").notNull(),
    queue: text("queue").notNull(),
    /** invalid: failed the event schema; rejected: Postgres refused the row; exhausted: out of retries. */
    reason: text("reason", { enum: ["invalid", "rejected", "exhausted"] }).notNull(),
    error: text("error").notNull(),
    /** The message body as JSON text (text, not jsonb: a body jsonb refuses must still be kept). */
    body: text("body").notNull(),
    tenantId: text("tenant_id"),
    eventId: text("event_id"),
    attempts: integer("attempts").notNull(),
    createdAt: timestamp("created_at", tz).notNull().defaultNow(),
    replayedAt: timestamp("replayed_at", tz),
    replays: integer("replays").notNull().default(0),
  },
  (t) => [
    uniqueIndex("dead_letters_message_idx").on(t.messageId),
    index("dead_letters_pending_idx").on(t.id).where(sql`${t.replayedAt} is null`),
    // Dead letters keep message bodies: retention deletes them by tenant and time.
    index("dead_letters_tenant_created_idx").on(t.tenantId, t.createdAt),
  ],
);

export type DeadLetterRow = typeof deadLetters.$inferSelect;

/**
 * Outbox of notifications (escalation transcripts, alerts): one row per message, idempotent by the
 * id made when it was queued, with how delivery went.
 */
export const notifications = pgTable(
  "notifications",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    kind: text("kind", { enum: ["escalation", "alert"] }).notNull(),
    channel: text("channel", { enum: ["email", "webhook", "none"] }).notNull(),
    recipient: text("recipient").notNull(),
    subject: text("subject").notNull(),
    body: text("body").notNull(),
    status: text("status", { enum: ["sent", "failed", "skipped"] }).notNull(),
    attempts: integer("attempts").notNull().default(1),
    error: text("error"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
  },
  (t) => [index("notifications_tenant_idx").on(t.tenantId, t.createdAt)],
);

// ---------------------------------------------------------------------------------------------
// Experiments (src/experiments, docs/experiments.md).

/** What a variant may change of the tenant's configuration; field names as in the API. */
export interface VariantOverrides {
  system_prompt?: string;
  model?: string;
  temperature?: number;
  max_tokens?: number;
}

/** One arm of an experiment. The order of the variants fixes which buckets each one gets. */
export interface ExperimentVariant {
  name: string;
  overrides: VariantOverrides;
}

/** An A/B test of a tenant's configuration; assignment and statistics in src/experiments. */
export const experiments = pgTable(
  "experiments",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    variants: jsonb("variants").$type<ExperimentVariant[]>().notNull(),
    /** Variant name -> share of users in [0, 1]; the shares sum to 1. */
    split: jsonb("split").$type<Record<string, number>>().notNull(),
    controlVariant: text("control_variant").notNull(),
    /** Mixed into the assignment hash, so two experiments never split users the same way. */
    salt: text("salt").notNull(),
    active: boolean("active").notNull().default(true),
    startsAt: timestamp("starts_at", tz),
    endsAt: timestamp("ends_at", tz),
    createdAt: timestamp("created_at", tz).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("experiments_tenant_name_idx").on(t.tenantId, t.name)],
);

export type ExperimentRow = typeof experiments.$inferSelect;

// ---------------------------------------------------------------------------------------------
// Monitoring (src/monitoring, docs/monitoring.md): hourly rollups for alert windows, all-time
// counters for Prometheus, admission refusals, queue lag, tenants' alert settings and the alerts.

/** A count column: bigint, since a tenant's all-time totals outgrow 32 bits. */
const count = (name: string) => bigint(name, { mode: "number" }).notNull().default(0);

/** The counters an hour (and a tenant's all-time total) keeps; fresh builders for each table. */
const counterColumns = () => ({
  turns: count("turns"),
  answered: count("answered"),
  errors: count("errors"),
  disconnected: count("disconnected"),
  blocked: count("blocked"),
  human: count("human"),
  inputTokens: count("input_tokens"),
  outputTokens: count("output_tokens"),
  costUsd: doublePrecision("cost_usd").notNull().default(0),
  latencySumMs: doublePrecision("latency_sum_ms").notNull().default(0),
  /** Conversations that ended in the hour (by end time, unlike tenant_daily's start day). */
  conversations: count("conversations"),
  resolved: count("resolved"),
  escalated: count("escalated"),
  csatSum: count("csat_sum"),
  csatCount: count("csat_count"),
  conversationCostUsd: doublePrecision("conversation_cost_usd").notNull().default(0),
  safetyEvents: count("safety_events"),
  refusedUser: count("refused_user"),
  refusedTenant: count("refused_tenant"),
  refusedGlobal: count("refused_global"),
  refusedAddress: count("refused_address"),
  refusedMonthlyTokens: count("refused_monthly_tokens"),
  refusedVisitorTokens: count("refused_visitor_tokens"),
  refusedDailyCost: count("refused_daily_cost"),
  refusedConversationCost: count("refused_conversation_cost"),
  /** Tool calls the tool loop ran, and those that failed (a visitor leaving is not a failure). */
  toolCalls: count("tool_calls"),
  toolFailures: count("tool_failures"),
  /** Human handoff, by end time like the conversations: held by an operator, resolved by a human. */
  humanHandled: count("human_handled"),
  resolvedByHuman: count("resolved_by_human"),
  /** Conversations with a first human reply time, and the sum of those times. */
  humanReplies: count("human_replies"),
  humanReplyMs: doublePrecision("human_reply_ms").notNull().default(0),
  updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
});

/** Per tenant, UTC day and tool: the tool loop's calls, failures and time (dashboard and Prometheus). */
export const toolDaily = pgTable(
  "tool_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    tool: text("tool").notNull(),
    calls: count("calls"),
    /** Calls that failed; a visitor leaving mid-call is not a failure. */
    failures: count("failures"),
    latencySumMs: doublePrecision("latency_sum_ms").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.tool] })],
);

/**
 * Per tenant and UTC day: answers to messages the tenant's knowledge was searched for, those that
 * cite a source (grounded) and those that are its "I don't know" (dashboard and Prometheus).
 */
export const knowledgeDaily = pgTable(
  "knowledge_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    answers: count("answers"),
    grounded: count("grounded"),
    unanswered: count("unanswered"),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);

/** Per tenant, UTC day and knowledge source: the answers that cite it (no foreign key: history outlives it). */
export const knowledgeSourceDaily = pgTable(
  "knowledge_source_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    sourceId: uuid("source_id").notNull(),
    citations: count("citations"),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.sourceId] })],
);

/** Per tenant per UTC hour: what alert windows are summed from. */
export const tenantHourly = pgTable(
  "tenant_hourly",
  {
    tenantId: text("tenant_id").notNull(),
    hour: timestamp("hour", tz).notNull(),
    ...counterColumns(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.hour] })],
);

/** Response-time histogram per tenant per UTC hour (the buckets of tenant_latency_daily). */
export const tenantLatencyHourly = pgTable(
  "tenant_latency_hourly",
  {
    tenantId: text("tenant_id").notNull(),
    hour: timestamp("hour", tz).notNull(),
    bucket: smallint("bucket").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.hour, t.bucket] })],
);

/** Per tenant, since the beginning: the Prometheus counters (monotonic). */
export const tenantTotals = pgTable("tenant_totals", {
  tenantId: text("tenant_id").primaryKey(),
  ...counterColumns(),
});

/**
 * Per tenant, since the beginning: answered turns per Prometheus histogram bucket (`le` in seconds,
 * Infinity past the last bound; HISTOGRAM_BOUNDS_SECONDS in src/analytics/latency.ts). Cumulated at
 * read, these are the histogram's counters.
 */
export const tenantLatencyTotals = pgTable(
  "tenant_latency_totals",
  {
    tenantId: text("tenant_id").notNull(),
    le: doublePrecision("le").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.le] })],
);

/**
 * First-token-time histogram per tenant per UTC day: answered streamed turns only (those with a
 * `first_token_ms`), in the buckets of tenant_latency_daily.
 */
export const tenantFirstTokenDaily = pgTable(
  "tenant_first_token_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    bucket: smallint("bucket").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.bucket] })],
);

/**
 * Per tenant, since the beginning: answered streamed turns per Prometheus bucket of their first-token
 * time (the bounds of tenant_latency_totals), with the sum of those times (the histogram's `_sum`).
 */
export const tenantFirstTokenTotals = pgTable(
  "tenant_first_token_totals",
  {
    tenantId: text("tenant_id").notNull(),
    le: doublePrecision("le").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
    sumMs: doublePrecision("sum_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.le] })],
);

/**
 * Time-to-first-human-reply histogram per tenant per UTC day (the buckets of tenant_latency_daily):
 * conversations with a first operator message, on the day they started, like their other figures.
 */
export const tenantHumanReplyDaily = pgTable(
  "tenant_human_reply_daily",
  {
    tenantId: text("tenant_id").notNull(),
    day: day("day").notNull(),
    bucket: smallint("bucket").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day, t.bucket] })],
);

/** Admission refusals, counted in the isolate and sent as one event per tenant, reason and flush. */
export const refusals = pgTable(
  "refusals",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    at: timestamp("at", tz).notNull(),
    reason: text("reason", { enum: REFUSAL_REASONS }).notNull(),
    count: integer("count").notNull(),
    receivedAt: timestamp("received_at", tz).notNull().defaultNow(),
  },
  (t) => [index("refusals_tenant_at_idx").on(t.tenantId, t.at)],
);

/** How long queue messages waited before their batch was written, per queue per minute. */
export const queueLag = pgTable(
  "queue_lag",
  {
    queue: text("queue").notNull(),
    minute: timestamp("minute", tz).notNull(),
    messages: integer("messages").notNull(),
    lagSumMs: doublePrecision("lag_sum_ms").notNull(),
    lagMaxMs: doublePrecision("lag_max_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.queue, t.minute] })],
);

/** Per queue, since the beginning: messages written and their summed wait (Prometheus counters). */
export const queueTotals = pgTable("queue_totals", {
  queue: text("queue").primaryKey(),
  messages: bigint("messages", { mode: "number" }).notNull(),
  lagSumMs: doublePrecision("lag_sum_ms").notNull(),
});

/** A tenant's overrides of one alert rule; absent fields take the platform default. */
export interface AlertRuleOverride {
  threshold?: number;
  window_hours?: number;
  min_events?: number;
  enabled?: boolean;
}

/** A tenant's alert settings: rule overrides and where alerts go besides the escalation email. */
export const alertSettings = pgTable("alert_settings", {
  tenantId: text("tenant_id")
    .primaryKey()
    .references(() => tenants.id),
  rules: jsonb("rules").$type<Record<string, AlertRuleOverride>>().notNull().default({}),
  webhookUrl: text("webhook_url"),
  /**
   * Signs what is POSTed to webhook_url (HMAC-SHA256). Stored as it is because it must sign; shown
   * only when set or rotated, never in a read.
   */
  webhookSecret: text("webhook_secret"),
  updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
});

/**
 * Alerts: a row opens when a rule starts firing and is resolved when it stops. At most one firing
 * row per tenant and rule (the partial unique index), which is what keeps a firing alert from
 * being sent again.
 */
export const alerts = pgTable(
  "alerts",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    rule: text("rule").notNull(),
    state: text("state", { enum: ["firing", "resolved"] }).notNull(),
    /** The value that crossed the threshold, then the latest value seen while firing. */
    value: doublePrecision("value").notNull(),
    firstValue: doublePrecision("first_value").notNull(),
    threshold: doublePrecision("threshold").notNull(),
    windowHours: integer("window_hours").notNull(),
    events: integer("events").notNull(),
    firedAt: timestamp("fired_at", tz).notNull(),
    resolvedAt: timestamp("resolved_at", tz),
    evaluatedAt: timestamp("evaluated_at", tz).notNull(),
  },
  (t) => [
    uniqueIndex("alerts_firing_idx").on(t.tenantId, t.rule).where(sql`${t.state} = 'firing'`),
    index("alerts_tenant_fired_idx").on(t.tenantId, t.firedAt),
  ],
);

export type AlertRow = typeof alerts.$inferSelect;

// ---------------------------------------------------------------------------------------------
// Tools (src/tools, docs/tools.md): what a tenant's bot may call.

/** Where a tool is reached: a signed https request, or a script in the Workers for Platforms namespace. */
export type ToolTargetColumn = { kind: "https"; url: string } | { kind: "dispatch"; script: string };

/** A tool a tenant registered; `allowed_tools` in the tenant's config decides whether the bot may use it. */
export const tools = pgTable(
  "tools",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    description: text("description").notNull(),
    /** JSON Schema (an object schema) of the arguments. */
    parameters: jsonb("parameters").$type<Record<string, unknown>>().notNull(),
    target: jsonb("target").$type<ToolTargetColumn>().notNull(),
    timeoutMs: integer("timeout_ms").notNull().default(5000),
    enabled: boolean("enabled").notNull().default(true),
    /**
     * Signs every request to the tool (HMAC-SHA256). Stored as it is because it must sign; made by
     * the platform, shown only at creation and rotation, never in a read.
     */
    secret: text("secret").notNull(),
    createdAt: timestamp("created_at", tz).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("tools_tenant_name_idx").on(t.tenantId, t.name)],
);

export type ToolRow = typeof tools.$inferSelect;

/**
 * A tenant's support staff, signed into the console as themselves (src/operators/). Owners manage
 * the tenant and its operators; agents read and answer conversations. Email is unique per tenant.
 */
export const operators = pgTable(
  "operators",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    email: text("email").notNull(),
    name: text("name").notNull(),
    role: text("role", { enum: ["owner", "agent"] }).notNull(),
    /** `pbkdf2-sha256$<iterations>$<salt>$<hash>` (src/operators/password.ts); null until the invite is accepted. */
    passwordHash: text("password_hash"),
    /** Failed sign-ins in a row, and until when sign-in is refused after too many (never in the password check). */
    failedSignIns: integer("failed_sign_ins").notNull().default(0),
    lockedUntil: timestamp("locked_until", { withTimezone: true }),
    /**
     * When the failed sign-ins count is forgotten: a day after the first failure of a run, or when
     * the lock that run reached ends (src/operators/service.ts claimAccount).
     */
    failedUntil: timestamp("failed_until", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** Removed operators keep their row (the audit log names them) but cannot sign in. */
    removedAt: timestamp("removed_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("operators_tenant_email_idx").on(t.tenantId, t.email)],
);

export type OperatorRow = typeof operators.$inferSelect;

/** Console sessions: only the SHA-256 of the cookie's token is stored; revoked by setting revoked_at. */
export const operatorSessions = pgTable(
  "operator_sessions",
  {
    id: text("id").primaryKey(),
    operatorId: uuid("operator_id")
      .notNull()
      .references(() => operators.id),
    tenantId: text("tenant_id").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("operator_sessions_operator_idx").on(t.operatorId)],
);

/**
 * Which conversations a console session has a live socket into, until when: the socket lives in the
 * conversation's Durable Object, which cannot see a session end, so ending one (sign-out, "sign out
 * everywhere", the operator's removal) reads its rows here and closes those sockets at once
 * (src/handoff/operator-sockets.ts). A row is written, under a lock on its session, before the
 * socket opens, and ends at the socket's age limit.
 */
export const operatorSockets = pgTable(
  "operator_sockets",
  {
    sessionId: text("session_id")
      .notNull()
      .references(() => operatorSessions.id),
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    /** The last registration that wrote the row: a socket refused after it takes back only its own. */
    registration: text("registration"),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.conversationId] })],
);

/** One-use tokens an operator proves an email address with: an invitation or a magic sign-in link. */
export const operatorTokens = pgTable(
  "operator_tokens",
  {
    /** SHA-256 of the token the link carries. */
    id: text("id").primaryKey(),
    operatorId: uuid("operator_id")
      .notNull()
      .references(() => operators.id),
    tenantId: text("tenant_id").notNull(),
    purpose: text("purpose", { enum: ["invite", "magic"] }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
  },
  (t) => [index("operator_tokens_operator_idx").on(t.operatorId)],
);

// ---------------------------------------------------------------------------------------------
// Knowledge (src/knowledge, docs/knowledge.md): a tenant's own content, chunked and searched on
// every visitor message.

/** Postgres full-text search vector; written by the database (a generated column), never by code. */
const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

/** A question-and-answer pair of a `qa` source. */
export type KnowledgePair = { question: string; answer: string };

/** A tenant's knowledge settings; no row means the defaults (on, platform's "I don't know"). */
export const knowledgeSettings = pgTable("knowledge_settings", {
  tenantId: text("tenant_id")
    .primaryKey()
    .references(() => tenants.id),
  /** Off: no retrieval, no "I don't know"; the bot answers from its system prompt alone. */
  enabled: boolean("enabled").notNull().default(true),
  /** What the bot says when nothing relevant is found; empty means the platform's sentence. */
  unknownAnswerMessage: text("unknown_answer_message").notNull().default(""),
  /** The lowest keyword rank (ts_rank_cd normalised to [0, 1)) a chunk needs to count as relevant. */
  minScore: doublePrecision("min_score").notNull().default(0.1),
  /** Tokens of reference text a prompt may carry. */
  maxContextTokens: integer("max_context_tokens").notNull().default(1500),
  /** Semantic search (src/knowledge/embed.ts): "none", Workers AI, or an OpenAI-compatible embeddings API. */
  embeddingProvider: text("embedding_provider", { enum: ["none", "workers-ai", "openai"] })
    .notNull()
    .default("none"),
  embeddingModel: text("embedding_model"),
  /** The OpenAI-compatible API's base URL (".../v1"); checked like webhook targets. */
  embeddingBaseUrl: text("embedding_base_url"),
  /** Write-only in the API (never returned), like the Turnstile secret. */
  embeddingApiKey: text("embedding_api_key"),
  /** The lowest cosine similarity a chunk needs to count as relevant on the semantic side. */
  minSimilarity: doublePrecision("min_similarity").notNull().default(0.3),
  updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
});

/** One source of a tenant's knowledge: a document, Q&A pairs, or a URL fetched by the consumer. */
export const knowledgeSources = pgTable(
  "knowledge_sources",
  {
    id: uuid("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    kind: text("kind", { enum: ["document", "qa", "url"] }).notNull(),
    /** How a document's text is read; a URL's comes from its Content-Type. */
    format: text("format", { enum: ["markdown", "text", "html", "pdf_text"] }),
    title: text("title").notNull(),
    url: text("url"),
    content: text("content"),
    pairs: jsonb("pairs").$type<KnowledgePair[]>(),
    status: text("status", { enum: ["queued", "indexing", "ready", "failed"] })
      .notNull()
      .default("queued"),
    error: text("error"),
    /** Bumped by every update; a queue message names the version it indexes. */
    version: integer("version").notNull().default(1),
    /** The version whose chunks answer; null until the first indexing lands. */
    indexedVersion: integer("indexed_version"),
    chunkCount: integer("chunk_count").notNull().default(0),
    createdAt: timestamp("created_at", tz).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", tz).notNull().defaultNow(),
    indexedAt: timestamp("indexed_at", tz),
  },
  (t) => [index("knowledge_sources_tenant_idx").on(t.tenantId, t.createdAt)],
);

/** A searchable piece of a source: unique by (source, version, ordinal), so re-delivery adds nothing. */
export const knowledgeChunks = pgTable(
  "knowledge_chunks",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    sourceId: uuid("source_id")
      .notNull()
      .references(() => knowledgeSources.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    ordinal: integer("ordinal").notNull(),
    /** The headings above the chunk, outermost first, joined by " > ". */
    heading: text("heading").notNull().default(""),
    content: text("content").notNull(),
    tokens: integer("tokens").notNull(),
    tsv: tsvector("tsv")
      .notNull()
      .generatedAlwaysAs(
        sql`setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', content), 'B')`,
      ),
    /**
     * The chunk's embedding, L2-normalised, when the tenant configured a model; `real[]` so the local
     * PostgreSQL without pgvector can rank by cosine in SQL, and pgvector casts it (`embedding::vector`).
     */
    embedding: real("embedding").array(),
    /** Which model made `embedding`: vectors of another model are never compared with the question's. */
    embeddingModel: text("embedding_model"),
  },
  (t) => [
    uniqueIndex("knowledge_chunks_source_version_ordinal_idx").on(t.sourceId, t.version, t.ordinal),
    index("knowledge_chunks_tsv_idx").using("gin", t.tsv),
    index("knowledge_chunks_tenant_idx").on(t.tenantId),
  ],
);

/** A visitor question that no source answered, for the tenant to see what content is missing. */
export const knowledgeUnanswered = pgTable(
  "knowledge_unanswered",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    question: text("question").notNull(),
    /** Lower case, punctuation and extra spaces dropped: what groups repeats of one question. */
    normalized: text("normalized").notNull(),
    at: timestamp("at", tz).notNull().defaultNow(),
  },
  (t) => [
    index("knowledge_unanswered_tenant_idx").on(t.tenantId, t.normalized),
    // The retention sweep's (src/privacy/retention.ts): a tenant's questions past its cutoff.
    index("knowledge_unanswered_tenant_at_idx").on(t.tenantId, t.at),
  ],
);

export type KnowledgeSourceRow = typeof knowledgeSources.$inferSelect;

// ---------------------------------------------------------------------------------------------
// Privacy (src/privacy, docs/privacy.md).

/**
 * Tombstones of erased visitors: queue messages about them that arrive after the erasure are
 * dropped, not written. Only a hash of tenant and user is kept (no personal data), and only as long
 * as a message can still be in flight (the retention sweep deletes older ones).
 */
export const erasures = pgTable("erasures", {
  /** SHA-256 hex of `${tenantId}:${userId}` (src/privacy/erasure.ts). */
  subjectHash: text("subject_hash").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  erasedAt: timestamp("erased_at", tz).notNull().defaultNow(),
});

// ---------------------------------------------------------------------------------------------
// The inbox (src/inbox, docs/handoff.md): the console's index of conversations, written by the
// analytics consumer from the conversation objects' `inbox` events. No foreign keys to tenants,
// like the analytics tables: one orphan must not fail a batch.

/** One row per conversation: its latest state; an event with an older `version` never overwrites it. */
export const inboxConversations = pgTable(
  "inbox_conversations",
  {
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    userId: text("user_id").notNull(),
    status: text("status", { enum: ["open", "waiting", "human", "resolved", "ended"] }).notNull(),
    channel: text("channel").notNull(),
    experiment: text("experiment"),
    variant: text("variant"),
    csat: smallint("csat"),
    totalCostUsd: doublePrecision("total_cost_usd").notNull(),
    totalTokens: bigint("total_tokens", { mode: "number" }).notNull(),
    turnCount: integer("turn_count").notNull(),
    startedAt: timestamp("started_at", tz).notNull(),
    lastActivityAt: timestamp("last_activity_at", tz).notNull(),
    waitingSince: timestamp("waiting_since", tz),
    holderOperatorId: text("holder_operator_id"),
    holderName: text("holder_name"),
    /** The object's highest entry seq when it emitted the event this row holds. */
    version: integer("version").notNull(),
    /** That event's time: among events of one version, the later one wins. */
    eventAt: timestamp("event_at", tz).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.conversationId] }),
    // The inbox list's keyset order; retention deletes by it too.
    index("inbox_conversations_activity_idx").on(t.tenantId, t.lastActivityAt, t.conversationId),
    // The waiting-too-long alert (src/monitoring).
    index("inbox_conversations_waiting_idx")
      .on(t.tenantId, t.waitingSince)
      .where(sql`${t.status} = 'waiting'`),
    // A visitor's export and erasure (src/privacy).
    index("inbox_conversations_user_idx").on(t.tenantId, t.userId),
  ],
);

/** A conversation's transcript entries as stored (redacted), searchable by full text. */
export const inboxEntries = pgTable(
  "inbox_entries",
  {
    tenantId: text("tenant_id").notNull(),
    conversationId: text("conversation_id").notNull(),
    seq: integer("seq").notNull(),
    userId: text("user_id").notNull(),
    role: text("role", { enum: ["user", "assistant", "operator", "system"] }).notNull(),
    author: text("author"),
    content: text("content").notNull(),
    at: timestamp("at", tz).notNull(),
    tsv: tsvector("tsv").notNull().generatedAlwaysAs(sql`to_tsvector('english', content)`),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.conversationId, t.seq] }),
    index("inbox_entries_tsv_idx").using("gin", t.tsv),
    // Retention deletes by time; erasure by user.
    index("inbox_entries_tenant_at_idx").on(t.tenantId, t.at),
    index("inbox_entries_user_idx").on(t.tenantId, t.userId),
  ],
);
