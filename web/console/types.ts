/** The API answers the console reads (subsets of the server's zod schemas in src/). */

export interface Tenant {
  tenant_id: string;
  name: string;
  system_prompt: string;
  model: string;
  max_tokens_per_response: number;
  monthly_token_budget: number;
  rate_limit_per_minute: number;
  user_rate_limit_per_minute: number;
  daily_cost_budget_usd: number | null;
  conversation_cost_cap_usd: number;
  fallback_model: string | null;
  timezone: string;
  pricing_overrides: Record<string, { input: number; output: number }>;
  allowed_tools: string[];
  blocked_topics: string[];
  escalation_email: string;
  custom_greeting: string;
  policy_message: string;
  allowed_origins: string[];
  active: boolean;
  config_version: number;
  created_at: string;
  updated_at: string;
}

export interface TenantList {
  tenants: Tenant[];
  next_cursor: string | null;
}

export interface PublicConfig {
  tenant_id: string;
  name: string;
  greeting: string;
  model: string;
}

export interface ApiKey {
  id: string;
  kind: "secret" | "publishable";
  name: string;
  prefix: string;
  last4: string;
  created_at: string;
  revoked_at: string | null;
}

export interface CreatedKey extends ApiKey {
  key: string;
}

export interface Figures {
  total_conversations: number;
  avg_turns_per_conversation: number | null;
  resolution_rate_pct: number | null;
  escalation_rate_pct: number | null;
  avg_csat: number | null;
  csat_responses: number;
  total_turns: number;
  total_tokens: number;
  total_cost_usd: number;
  avg_response_time_ms: number | null;
  p50_response_time_ms: number | null;
  p99_response_time_ms: number | null;
  error_rate_pct: number | null;
  daily_active_users: number;
  cost_per_conversation_usd: number | null;
  safety_violations_blocked: number;
}

export interface Dashboard {
  tenant_id: string;
  days: number;
  from: string;
  to: string;
  totals: Figures;
  series: (Figures & { day: string })[];
}

export interface Usage {
  tenant_id: string;
  timezone: string;
  month: {
    month: string;
    token_budget: number;
    tokens_used: number;
    tokens_reserved: number;
    tokens_left: number;
    cost_usd: number;
    resets_at: string;
  };
  today: { date: string; cost_usd: number; budget_usd: number | null; left_usd: number | null };
  daily: { date: string; cost_usd: number; input_tokens: number; output_tokens: number; messages: number }[];
  total_7d_usd: number;
  avg_daily_7d_usd: number;
  window: { seconds: number; tenant_limit: number; tenant_used: number; active_users: number };
}

export interface Experiment {
  name: string;
  description: string;
  variants: { name: string; overrides: Record<string, unknown> }[];
  split: Record<string, number>;
  control: string;
  status: "running" | "scheduled" | "ended" | "inactive";
  starts_at: string | null;
  ends_at: string | null;
  created_at: string;
}

type Estimate = { value: number; ci95: [number, number] } | null;
type Comparison = { difference: number; p_value: number } | null;

export interface Results {
  experiment: string;
  status: string;
  control: string;
  since: string;
  min_sample_per_arm: number;
  variants: {
    name: string;
    control: boolean;
    split: number;
    users: number;
    conversations: number;
    resolution_rate: Estimate;
    escalation_rate: Estimate;
    csat: Estimate;
    csat_responses: number;
    cost_per_conversation_usd: Estimate;
    p50_latency_ms: number | null;
    vs_control: { resolution_rate: Comparison; csat: Comparison } | null;
    verdict: string;
  }[];
  srm: { p_value: number; flagged: boolean } | null;
}
