import { z } from "zod";

/** The transcript of an escalated conversation, for the tenant's escalation address. */
export const EscalationNotice = z.object({
  type: z.literal("escalation"),
  id: z.uuid(),
  tenantId: z.string().min(1).max(63),
  conversationId: z.string().min(1).max(128),
  userId: z.string().min(1).max(256),
  to: z.string().min(3).max(320),
  reason: z.string().max(200),
  at: z.number().int().nonnegative(),
  transcript: z.array(z.object({ role: z.string(), content: z.string(), at: z.number() })).max(10_000),
});
export type EscalationNotice = z.infer<typeof EscalationNotice>;

export const Notice = z.discriminatedUnion("type", [EscalationNotice]);
export type Notice = z.infer<typeof Notice>;

/** The email (or webhook payload) a notice becomes. */
export function render(n: Notice): { subject: string; text: string } {
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
