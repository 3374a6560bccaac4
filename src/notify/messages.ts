import { z } from "zod";

/** Conversations an alert names at most (the longest waiting; src/monitoring/windows.ts lists them). */
export const MAX_LINKED_CONVERSATIONS = 10;

/**
 * Where the console is, for links: PUBLIC_BASE_URL, else the origin the notice was made on (the
 * request that escalated); absent both, a link is the path alone.
 */
const Origin = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .transform((u) => new URL(u).origin);

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
  /** The newest entries, each cut to a few thousand characters (src/chat/conversation-do.ts). */
  transcript: z.array(z.object({ role: z.string(), content: z.string(), at: z.number() })).max(10_000),
  /** How many earlier entries the transcript leaves out. */
  omitted: z.number().int().nonnegative().optional(),
  /** The origin of the request that escalated: the console link's base without PUBLIC_BASE_URL. */
  origin: Origin.optional(),
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
  /** handoff_wait: the conversations waiting longer than the threshold, longest first (linked). */
  conversations: z
    .array(z.object({ id: z.string().min(1).max(128), waitingSince: z.number().int().nonnegative() }))
    .max(MAX_LINKED_CONVERSATIONS)
    .optional(),
  origin: Origin.optional(),
});
export type AlertNotice = z.infer<typeof AlertNotice>;

export const Notice = z.discriminatedUnion("type", [EscalationNotice, AlertNotice]);
export type Notice = z.infer<typeof Notice>;

/**
 * The console's page of a conversation (the inbox's transcript and live view):
 * `${base}/console/#/t/<tenant>/inbox/<conversation>`, ids URL-encoded.
 */
export function conversationLink(base: string | undefined, tenantId: string, conversationId: string): string {
  const path = `/console/#/t/${encodeURIComponent(tenantId)}/inbox/${encodeURIComponent(conversationId)}`;
  return base ? `${new URL(base).origin}${path}` : path;
}

/** The links a notice carries: the escalated conversation, or the conversations an alert names. */
export function noticeLinks(n: Notice, publicBaseUrl?: string): string[] {
  const base = publicBaseUrl ?? n.origin;
  if (n.type === "escalation") return [conversationLink(base, n.tenantId, n.conversationId)];
  return (n.conversations ?? []).map((c) => conversationLink(base, n.tenantId, c.id));
}

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
    case "s":
      return value >= 120 ? `${(value / 60).toFixed(1)} min` : `${Math.round(value)} s`;
    default:
      return value.toFixed(2);
  }
}

function renderAlert(n: AlertNotice, links: string[]): { subject: string; text: string } {
  const value = formatValue(n.value, n.unit);
  const threshold = formatValue(n.threshold, n.unit);
  const word = n.op === "gt" ? "above" : "below";
  const state = n.state === "firing" ? "FIRING" : "RESOLVED";
  if (n.rule === "handoff_wait") {
    const waiting = (n.conversations ?? []).map(
      (c, i) => `- waiting since ${new Date(c.waitingSince).toISOString()}: ${links[i] ?? c.id}`,
    );
    return {
      subject:
        n.state === "firing"
          ? `[chatedge] FIRING: a visitor of ${n.tenantId} has waited ${value} for a human`
          : `[chatedge] RESOLVED: no visitor of ${n.tenantId} waits longer than ${threshold}`,
      text: [
        `Alert ${n.rule} of tenant ${n.tenantId} is ${n.state} at ${new Date(n.at).toISOString()}.`,
        n.description,
        `Longest wait: ${value}, ${n.events} ${n.events === 1 ? "conversation" : "conversations"} waiting; alerts when a wait is ${word} ${threshold}.`,
        ...(waiting.length > 0 ? ["Waiting longer than that (open to take over):", ...waiting] : []),
        `Firing since: ${new Date(n.firedAt).toISOString()}`,
        `Alert id: ${n.alertId}`,
      ].join("\n"),
    };
  }
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

const SPEAKER: Record<string, string> = { user: "Visitor", assistant: "Assistant", operator: "Operator" };

/** The email (or webhook payload) a notice becomes; links use `publicBaseUrl` (PUBLIC_BASE_URL) first. */
export function render(n: Notice, publicBaseUrl?: string): { subject: string; text: string } {
  const links = noticeLinks(n, publicBaseUrl);
  if (n.type === "alert") return renderAlert(n, links);
  const when = new Date(n.at).toISOString();
  const lines = n.transcript.map(
    (m) => `[${new Date(m.at).toISOString()}] ${SPEAKER[m.role] ?? "Note"}: ${m.content}`,
  );
  return {
    subject: `[chatedge] Conversation ${n.conversationId} needs a human`,
    text: [
      `A conversation of tenant ${n.tenantId} was escalated at ${when}.`,
      `Reason: ${n.reason}`,
      `Visitor: ${n.userId}`,
      `Open it in the console to take it over: ${links[0]}`,
      "",
      "Transcript:",
      ...(n.omitted ? [`(${n.omitted} earlier messages are not shown here; the console has them all)`] : []),
      ...lines,
    ].join("\n"),
  };
}
