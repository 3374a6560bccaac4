/** The tenant configuration form's fields: how each is edited, parsed and checked in the browser. */

/** A parsed value, or a problem to show next to the field. */
export type Parsed = { ok: true; value: unknown } | { ok: false; message: string };

export interface Field {
  name: string;
  label: string;
  input: "text" | "textarea" | "number" | "email" | "checkbox" | "password";
  help?: string;
  /** Reads the form control's text (or checked state) into the API's value. */
  parse(raw: string | boolean): Parsed;
  /** Writes the API's value into the form control. */
  show(value: unknown): string | boolean;
}

const ok = (value: unknown): Parsed => ({ ok: true, value });
const bad = (message: string): Parsed => ({ ok: false, message });
const str = (v: unknown) => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));

function text(
  name: string,
  label: string,
  max: number,
  opts: {
    required?: boolean;
    pattern?: RegExp;
    patternMessage?: string;
    nullable?: boolean;
    input?: "text" | "textarea" | "email";
    help?: string;
  } = {},
): Field {
  return {
    name,
    label,
    input: opts.input ?? "text",
    help: opts.help,
    show: str,
    parse(raw) {
      const s = String(raw);
      const t = name === "name" ? s.trim() : s;
      if (t === "") return opts.required ? bad("required") : ok(opts.nullable ? null : "");
      if (t.length > max) return bad(`at most ${max} characters`);
      if (opts.pattern && !opts.pattern.test(t)) return bad(opts.patternMessage ?? "invalid format");
      return ok(t);
    },
  };
}

function num(
  name: string,
  label: string,
  min: number,
  max: number,
  opts: { integer?: boolean; nullable?: boolean; help?: string } = {},
): Field {
  return {
    name,
    label,
    input: "number",
    help: opts.help,
    show: str,
    parse(raw) {
      const s = String(raw).trim();
      if (s === "") return opts.nullable ? ok(null) : bad("required");
      const n = Number(s);
      if (!Number.isFinite(n)) return bad("not a number");
      if (opts.integer && !Number.isInteger(n)) return bad("a whole number");
      if (n < min || n > max) return bad(`between ${min} and ${max}`);
      return ok(n);
    },
  };
}

/** One entry per line; each checked by `check` (an error message, or undefined when fine). */
function lines(
  name: string,
  label: string,
  maxItems: number,
  check: (s: string) => string | undefined,
  help: string,
): Field {
  return {
    name,
    label,
    input: "textarea",
    help,
    show: (v) => (Array.isArray(v) ? v.join("\n") : ""),
    parse(raw) {
      const items = String(raw)
        .split("\n")
        .map((s) => s.trim())
        .filter((s) => s !== "");
      if (items.length > maxItems) return bad(`at most ${maxItems} entries`);
      for (const i of items) {
        const problem = check(i);
        if (problem) return bad(`${i}: ${problem}`);
      }
      return ok(items);
    },
  };
}

const MODEL = /^[A-Za-z0-9@][A-Za-z0-9._:/@-]{0,127}$/;
const TURNSTILE_KEY = /^[0-9]x[A-Za-z0-9_-]{10,100}$/;

function isOrigin(s: string): string | undefined {
  try {
    const u = new URL(s);
    if ((u.protocol === "https:" || u.protocol === "http:") && u.origin === s) return undefined;
  } catch {
    // falls through
  }
  return "must be an origin like https://shop.example.com (no path, no trailing slash)";
}

function isTimeZone(s: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: s });
    return true;
  } catch {
    return false;
  }
}

/** Every configurable field, in the order the form shows them. */
export const FIELDS: Field[] = [
  text("name", "Name", 200, { required: true }),
  text("model", "Model", 128, {
    required: true,
    pattern: MODEL,
    patternMessage: "not a model name",
    help: "mock, mock-slow, gpt-4o-mini, claude-haiku, @cf/..., provider/model",
  }),
  text("fallback_model", "Fallback model", 128, {
    pattern: MODEL,
    patternMessage: "not a model name",
    nullable: true,
    help: "used before refusing when the budget cannot cover the main model; empty for none",
  }),
  lines(
    "allowed_models",
    "Allowed models",
    20,
    (s) => (MODEL.test(s) ? undefined : "not a model name"),
    "one per line; what API callers may name besides the model and the fallback",
  ),
  text("system_prompt", "System prompt", 32_000, { required: true, input: "textarea" }),
  text("custom_greeting", "Greeting", 2_000, { input: "textarea", help: "the widget's first message" }),
  text("policy_message", "Policy message", 2_000, {
    input: "textarea",
    help: "the answer when a blocked topic comes up; empty for the platform's",
  }),
  num("max_tokens_per_response", "Max tokens per response", 1, 200_000, { integer: true }),
  num("monthly_token_budget", "Monthly token budget", 0, 1e13, { integer: true }),
  num("daily_cost_budget_usd", "Daily cost budget (USD)", 0, 1e7, { nullable: true, help: "empty for none" }),
  num("conversation_cost_cap_usd", "Cost cap per conversation (USD)", 0, 1e5),
  num("rate_limit_per_minute", "Messages per minute (tenant)", 1, 1_000_000, { integer: true }),
  num("user_rate_limit_per_minute", "Messages per minute (per user)", 1, 100_000, { integer: true }),
  {
    ...num("visitor_monthly_token_share", "Monthly token share per visitor", 0, 1, {
      help: "the most of the monthly token budget one browser visitor may use, e.g. 0.05; 1 for no limit",
    }),
    parse(raw) {
      const n = Number(String(raw).trim());
      return String(raw).trim() !== "" && n > 0 && n <= 1 ? ok(n) : bad("above 0, at most 1");
    },
  },
  num("address_messages_per_minute", "Messages per minute (per browser address)", 1, 100_000, {
    integer: true,
  }),
  num("address_conversations_per_hour", "New conversations per hour (per browser address)", 1, 100_000, {
    integer: true,
  }),
  num("conversations_per_minute", "New conversations per minute (all browsers)", 1, 1_000_000, {
    integer: true,
    nullable: true,
    help: "empty: the tenant's messages per minute",
  }),
  {
    ...text("timezone", "Time zone", 64, { required: true, help: "IANA name, e.g. Europe/Berlin" }),
    parse(raw) {
      const s = String(raw).trim();
      return s === "" ? bad("required") : isTimeZone(s) ? ok(s) : bad("not an IANA time zone");
    },
  },
  text("escalation_email", "Escalation email", 254, {
    input: "email",
    pattern: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
    patternMessage: "not an email address",
  }),
  lines(
    "allowed_origins",
    "Allowed origins",
    100,
    isOrigin,
    "one per line; the sites whose pages may use a publishable key",
  ),
  text("turnstile_site_key", "Turnstile site key", 100, {
    pattern: TURNSTILE_KEY,
    patternMessage: "not a Turnstile site key",
    nullable: true,
    help: "Cloudflare Turnstile bot check the widget shows before a visitor's first conversation; empty for none",
  }),
  {
    // Write-only: the API never answers it, so the control starts empty and empty means "keep".
    name: "turnstile_secret_key",
    label: "Turnstile secret key",
    input: "password",
    help: "write-only, never shown: empty keeps the current one, off turns the bot check off",
    show: () => "",
    parse(raw) {
      const s = String(raw).trim();
      if (s === "") return ok(undefined);
      if (s === "off") return ok(null);
      return TURNSTILE_KEY.test(s) ? ok(s) : bad("not a Turnstile secret key");
    },
  },
  lines(
    "blocked_topics",
    "Blocked topics",
    500,
    (s) => (s.length > 200 ? "at most 200 characters" : undefined),
    "one per line",
  ),
  lines(
    "allowed_tools",
    "Allowed tools",
    128,
    (s) => (/^[A-Za-z0-9_-]{1,64}$/.test(s) ? undefined : "tool names are [A-Za-z0-9_-]{1,64}"),
    "one per line",
  ),
  text("tool_execution", "Tool execution (OpenAI route)", 6, {
    required: true,
    pattern: /^(client|server)$/,
    patternMessage: "client or server",
    help: "server: the platform runs the registered tools on /v1/chat/completions too (docs/tools.md)",
  }),
  num("max_tool_steps", "Max tool steps per message", 1, 8, { integer: true }),
  text("widget_title", "Widget title", 80, {
    nullable: true,
    help: "the chat panel's title; empty shows the tenant's name",
  }),
  text("widget_accent_color", "Widget accent colour", 7, {
    pattern: /^#[0-9a-fA-F]{6}$/,
    patternMessage: "a colour like #1d4ed8",
    nullable: true,
    help: "#rrggbb; the text on it is black or white, whichever reads better",
  }),
  text("widget_avatar_url", "Widget avatar URL", 2048, {
    pattern: /^https:\/\/[^\s]+$/,
    patternMessage: "an https URL",
    nullable: true,
  }),
  text("widget_position", "Widget position", 12, {
    required: true,
    pattern: /^bottom-(right|left)$/,
    patternMessage: "bottom-right or bottom-left",
  }),
  text("widget_locale", "Widget language", 2, {
    pattern: /^(en|de|fr|es|ja)$/,
    patternMessage: "en, de, fr, es or ja",
    nullable: true,
    help: "empty: each visitor's browser language (English when not one of the five)",
  }),
  text("operator_name_display", "Operator name shown to visitors", 5, {
    required: true,
    pattern: /^(full|first|none)$/,
    patternMessage: "full, first or none",
    help: 'full: the operator\'s name; first: the first word of it; none: "Support"',
  }),
  num("retention_days", "Retention (days)", 1, 3650, {
    integer: true,
    nullable: true,
    help: "transcripts and per-event analytics older than this are deleted; empty: the platform default (docs/privacy.md)",
  }),
  lines(
    "redact_patterns",
    "Redaction patterns",
    20,
    (s) => (s.length > 200 ? "at most 200 characters" : undefined),
    "one regular expression per line, with bounded repeats ({1,32}, not + or *), redacted like emails and card numbers (the server checks each)",
  ),
  {
    name: "redact_before_model",
    label: "Redact before the model too",
    input: "checkbox",
    show: (v) => v === true,
    parse: (raw) => ok(raw === true),
  },
  {
    name: "pricing_overrides",
    label: "Pricing overrides (JSON)",
    input: "textarea",
    help: '{"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}',
    show: (v) => JSON.stringify(v ?? {}, null, 2),
    parse(raw) {
      try {
        const v: unknown = JSON.parse(String(raw).trim() || "{}");
        if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("must be a JSON object");
        return ok(v);
      } catch (err) {
        return bad(`not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  },
  {
    name: "active",
    label: "Active (keys work)",
    input: "checkbox",
    show: (v) => v === true,
    parse: (raw) => ok(raw === true),
  },
];
