import { z } from "@hono/zod-openapi";
import { CUSTOM_PATTERN_LIMITS, patternProblem, patternSetProblem } from "../privacy/redact";
import { TENANT_ID, TenantIdParam } from "./chat-schemas";

// The shapes a chat path's app needs too live in chat-schemas.ts; the admin API gets them here.
export { PublicConfig, TENANT_ID, TenantIdParam } from "./chat-schemas";

const MODEL = /^[A-Za-z0-9@][A-Za-z0-9._:/@-]{0,127}$/;
/** Turnstile site and secret keys: "0x4AAA...", and the documented test keys "1x0000...AA". */
const TURNSTILE_KEY = /^[0-9]x[A-Za-z0-9_-]{10,100}$/;

const origin = z
  .string()
  .max(253)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "https:" || u.protocol === "http:") && u.origin === s;
    } catch {
      return false;
    }
  }, "must be an origin like https://shop.example.com (scheme, host, optional port; no path)");

const httpsUrl = z
  .string()
  .max(2_048)
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === "https:" && u.href === s && !u.username && !u.password;
    } catch {
      return false;
    }
  }, "must be an https URL in its normal form (https://cdn.example.com/avatar.png)");

const price = z.object({ input: z.number().min(0).max(10_000), output: z.number().min(0).max(10_000) });

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

/** Every configurable field of a tenant, with its bounds; creation and updates share it. */
const configFields = {
  name: z.string().trim().min(1).max(200),
  system_prompt: z.string().min(1).max(32_000),
  model: z.string().regex(MODEL, "unknown model name format"),
  max_tokens_per_response: z.number().int().min(1).max(200_000),
  monthly_token_budget: z.number().int().min(0).max(1e13),
  rate_limit_per_minute: z.number().int().min(1).max(1_000_000),
  user_rate_limit_per_minute: z.number().int().min(1).max(100_000),
  daily_cost_budget_usd: z.number().min(0).max(1e7).nullable(),
  conversation_cost_cap_usd: z.number().min(0).max(1e5),
  /** No browser visitor may use more of the monthly token budget than this fraction; 1 turns it off. */
  visitor_monthly_token_share: z
    .number()
    .gt(0, "must be above 0 (1 turns the share off)")
    .max(1, "a fraction of the monthly budget: at most 1"),
  /** Per client address, on publishable-key traffic: messages per minute, new conversations per hour. */
  address_messages_per_minute: z.number().int().min(1).max(100_000),
  address_conversations_per_hour: z.number().int().min(1).max(100_000),
  /** New browser conversations per minute, all addresses together; null: `rate_limit_per_minute`. */
  conversations_per_minute: z.number().int().min(1).max(1_000_000).nullable(),
  fallback_model: z.string().regex(MODEL).nullable(),
  /** What an OpenAI-route caller may name besides `model` and `fallback_model`; empty: just those. */
  allowed_models: z.array(z.string().regex(MODEL, "unknown model name format")).max(20),
  timezone: z.string().max(64).refine(isTimeZone, "not an IANA time zone"),
  pricing_overrides: z.record(z.string().regex(MODEL), price).refine((o) => Object.keys(o).length <= 100, {
    message: "at most 100 overrides",
  }),
  allowed_tools: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "tool names are [A-Za-z0-9_-]{1,64}"))
    .max(128),
  /** OpenAI route: "server" runs the tenant's registered tools in the platform's tool loop. */
  tool_execution: z.enum(["client", "server"]),
  /** Tool rounds per message before the model must answer without tools (docs/tools.md). */
  max_tool_steps: z.number().int().min(1).max(8),
  blocked_topics: z.array(z.string().trim().min(1).max(200)).max(500),
  escalation_email: z.union([z.email(), z.literal("")]),
  custom_greeting: z.string().max(2_000),
  policy_message: z.string().max(2_000),
  allowed_origins: z.array(origin).max(100),
  /** The widget's title bar; null: the tenant's name. */
  widget_title: z.string().trim().min(1).max(80).nullable(),
  /** The widget's accent (bubble, header, the visitor's messages); its text is black or white, whichever reads. */
  widget_accent_color: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, "a hex colour like #2457d6")
    .nullable(),
  /** An image shown in the bubble and the title bar: an https URL (the page's CSP must allow it in img-src). */
  widget_avatar_url: httpsUrl.nullable(),
  widget_position: z.enum(["bottom-right", "bottom-left"]),
  /** The widget's language; null: the visitor's browser language, English when unsupported. */
  widget_locale: z.enum(["en", "de", "fr", "es", "ja"]).nullable(),
  /** How a person who takes a conversation over is named to the visitor: full name, first name, or "Support". */
  operator_name_display: z.enum(["full", "first", "none"]),
  /** Days transcripts and per-event analytics are kept; null: the platform default (capped at the platform maximum). */
  retention_days: z.number().int().min(1).max(3650).nullable(),
  /** The tenant's own PII patterns (docs/privacy.md): bounded, compiled, bounded work per position. */
  redact_patterns: z
    .array(
      z.string().superRefine((p, ctx) => {
        const problem = patternProblem(p);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
    )
    .max(CUSTOM_PATTERN_LIMITS.count)
    .superRefine((ps, ctx) => {
      const problem = patternSetProblem(ps);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  /** Redact visitors' messages before the model provider sees them, not only before storage. */
  redact_before_model: z.boolean(),
  /** Cloudflare Turnstile's public site key; the widget renders the check with it. */
  turnstile_site_key: z.string().regex(TURNSTILE_KEY, "not a Turnstile site key").nullable(),
};

/** Settings accepted on writes and never answered: the API says `turnstile_enabled` instead. */
const writeOnlyFields = {
  /** Turnstile's secret key, for siteverify; setting it (with a site key) turns the bot check on, null off. */
  turnstile_secret_key: z.string().regex(TURNSTILE_KEY, "not a Turnstile secret key").nullable(),
};

const ConfigFields = z.object({ ...configFields, ...writeOnlyFields });

export const TenantCreate = ConfigFields.partial()
  .extend({
    tenant_id: z.string().regex(TENANT_ID, "tenant_id is 1-63 of [a-z0-9-], not starting or ending with -"),
    name: configFields.name,
    system_prompt: configFields.system_prompt,
  })
  .strict()
  .openapi("TenantCreate");

export const TenantPatch = ConfigFields.partial()
  .extend({ active: z.boolean().optional() })
  .strict()
  .refine((o) => Object.keys(o).length > 0, "nothing to update")
  .openapi("TenantPatch");

export type TenantCreateInput = z.infer<typeof TenantCreate>;
export type TenantPatchInput = z.infer<typeof TenantPatch>;

export const Tenant = z
  .object({
    tenant_id: z.string(),
    ...configFields,
    turnstile_enabled: z.boolean().openapi({
      description:
        "A Turnstile secret key is set: browsers pass the bot check before their first conversation",
    }),
    redact_pattern_problems: z
      .array(z.object({ pattern: z.string().nullable(), problem: z.string() }))
      .openapi({
        description:
          "Stored redact_patterns a write would now refuse (saved before the work bound of 2026-12-07; pattern null: the patterns together). They are still applied; rewrite them with bounded repeats",
      }),
    active: z.boolean(),
    config_version: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Tenant");

export const TenantList = z
  .object({ tenants: z.array(Tenant), next_cursor: z.string().nullable() })
  .openapi("TenantList");

export const KeyCreate = z
  .object({
    kind: z.enum(["secret", "publishable"]),
    name: z.string().trim().max(100).default(""),
  })
  .strict()
  .openapi("KeyCreate");

export const ApiKey = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    kind: z.enum(["secret", "publishable"]),
    name: z.string(),
    prefix: z.string(),
    last4: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");

export const CreatedKey = ApiKey.extend({
  key: z.string().openapi({ description: "The key itself. Shown once; only its hash is stored." }),
}).openapi("CreatedKey");

export const KeyIdParam = TenantIdParam.extend({
  keyId: z
    .string()
    .regex(/^key_[A-Za-z0-9]{16}$/, "not a key id")
    .openapi({ param: { name: "keyId", in: "path" } }),
});

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .regex(/^[a-z0-9-]{1,63}$/, "cursor is the last tenant id of the previous page")
    .optional(),
  include_inactive: z.enum(["true", "false"]).default("false"),
});

export const AuditEntry = z
  .object({
    id: z.number(),
    tenant_id: z.string().nullable(),
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    request_id: z.string(),
    data: z.record(z.string(), z.unknown()),
    created_at: z.string(),
  })
  .openapi("AuditEntry");
