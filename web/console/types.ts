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

export type MetricUnit = "ms" | "pct" | "usd" | "score" | "ratio";
export type MetricState = "ok" | "warning" | "alert" | "insufficient_data" | "off";

/** One alert rule's metric as monitoring shows it (src/monitoring/routes.ts MonitoringMetric). */
export interface MetricView {
  rule: string;
  value: number | null;
  unit: MetricUnit;
  target: string;
  threshold: number;
  op: "gt" | "lt";
  window_hours: number;
  min_events: number;
  events: number;
  enabled: boolean;
  state: MetricState;
  baseline?: number;
  current?: number;
}

export interface Volume {
  window_hours: number;
  requests: number;
  turns: number;
  answered: number;
  errors: number;
  blocked: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  conversations: number;
  safety_violations: number;
  rate_limit_refusals: { user: number; tenant: number; global: number };
  budget_refusals: { monthly_tokens: number; daily_cost: number; conversation_cost: number };
  daily_active_users_today: number;
}

export interface Alert {
  id: string;
  tenant_id: string;
  rule: string;
  metric: string;
  state: "firing" | "resolved";
  value: number;
  first_value: number;
  threshold: number;
  window_hours: number;
  events: number;
  fired_at: string;
  resolved_at: string | null;
  evaluated_at: string;
}

export interface Monitoring {
  tenant_id: string;
  at: string;
  metrics: Record<string, MetricView>;
  volume: Volume;
  /** Alerts firing now. */
  alerts: Alert[];
}

export interface PlatformMonitoring {
  at: string;
  tenants: { active: number; inactive: number };
  metrics: Record<string, MetricView>;
  volume: Volume;
  queues: {
    queue: string;
    messages_5m: number;
    avg_lag_seconds: number | null;
    max_lag_seconds: number | null;
    last_write: string;
  }[];
  alerts_firing: Record<string, number>;
}

export interface SettingsRule {
  rule: string;
  metric: string;
  description: string;
  unit: MetricUnit;
  op: "gt" | "lt";
  threshold: number;
  default_threshold: number;
  window_hours: number;
  min_events: number;
  enabled: boolean;
}

export interface AlertSettings {
  tenant_id: string;
  webhook_url: string | null;
  overrides: Record<string, unknown>;
  rules: SettingsRule[];
}

/** What one rule override may change; null removes the rule's override. */
export interface RuleOverride {
  threshold?: number;
  window_hours?: number;
  min_events?: number;
  enabled?: boolean;
}

export interface AlertSettingsPut {
  rules?: Record<string, RuleOverride | null>;
  webhook_url?: string | null;
}

export interface Evaluation {
  at: string;
  tenants: number;
  evaluated: number;
  insufficient: number;
  fired: Alert[];
  resolved: Alert[];
  still_firing: number;
  notices: number;
}
