import { z } from "zod";

/**
 * The transcript of an escalated conversation, for the tenant's escalation address; `to` is empty
 * when the tenant has none, and the notice goes to its webhook (or the platform's) instead.
 */
export const EscalationNotice = z.object({
  type: z.literal("escalation"),
  id: z.uuid(),
  tenantId: z.string().min(1).max(63),
  conversationId: z.string().min(1).max(128),
  userId: z.string().min(1).max(256),
  to: z.union([z.string().min(3).max(320), z.literal("")]),
  reason: z.string().max(200),
  at: z.number().int().nonnegative(),
  transcript: z.array(z.object({ role: z.string(), content: z.string(), at: z.number() })).max(10_000),
});
export type EscalationNotice = z.infer<typeof EscalationNotice>;

/** An alert that started firing or was resolved, for one channel (email or a webhook URL). */
export const AlertNotice = z.object({
  type: z.literal("alert"),
  id: z.uuid(),
  tenantId: z.string().min(1).max(63),
  channel: z.enum(["email", "webhook"]),
  /** An email address, or the webhook's URL. */
  to: z.string().min(3).max(2048),
  alertId: z.uuid(),
  rule: z.string().max(64),
  metric: z.string().max(64),
  description: z.string().max(300),
  state: z.enum(["firing", "resolved"]),
  value: z.number(),
  threshold: z.number(),
  op: z.enum(["gt", "lt"]),
  unit: z.string().max(16),
  windowHours: z.number().int().positive(),
  events: z.number().int().nonnegative(),
  firedAt: z.number().int().nonnegative(),
  at: z.number().int().nonnegative(),
});
export type AlertNotice = z.infer<typeof AlertNotice>;

export const Notice = z.discriminatedUnion("type", [EscalationNotice, AlertNotice]);
export type Notice = z.infer<typeof Notice>;

/** A value in its unit, for people: 5200 ms -> "5.2 s", 31.25 pct -> "31.3%". */
export function formatValue(value: number, unit: string): string {
  switch (unit) {
    case "ms":
      return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
    case "pct":
      return `${value.toFixed(1)}%`;
    case "usd":
      return `$${value.toFixed(value < 1 ? 3 : 2)}`;
    case "ratio":
      return `${value.toFixed(1)}x`;
    default:
      return value.toFixed(2);
  }
}

function renderAlert(n: AlertNotice): { subject: string; text: string } {
  const value = formatValue(n.value, n.unit);
  const threshold = formatValue(n.threshold, n.unit);
  const word = n.op === "gt" ? "above" : "below";
  const state = n.state === "firing" ? "FIRING" : "RESOLVED";
  return {
    subject: `[chatedge] ${state}: ${n.metric} for ${n.tenantId} is ${value} (threshold ${word} ${threshold})`,
    text: [
      `Alert ${n.rule} of tenant ${n.tenantId} is ${n.state} at ${new Date(n.at).toISOString()}.`,
      n.description,
      `Value: ${value} over the last ${n.windowHours} h (${n.events} events); alerts when ${word} ${threshold}.`,
      `Firing since: ${new Date(n.firedAt).toISOString()}`,
      `Alert id: ${n.alertId}`,
    ].join("\n"),
  };
}

/** The email (or webhook payload) a notice becomes. */
export function render(n: Notice): { subject: string; text: string } {
  if (n.type === "alert") return renderAlert(n);
  const when = new Date(n.at).toISOString();
  const lines = n.transcript.map(
    (m) => `[${new Date(m.at).toISOString()}] ${m.role === "user" ? "Visitor" : "Assistant"}: ${m.content}`,
  );
  return {
    subject: `[chatedge] Conversation ${n.conversationId} needs a human`,
    text: [
      `A conversation of tenant ${n.tenantId} was escalated at ${when}.`,
      `Reason: ${n.reason}`,
      `Visitor: ${n.userId}`,
      "",
      "Transcript:",
      ...lines,
    ].join("\n"),
  };
}
