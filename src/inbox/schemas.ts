/** The inbox's REST shapes (docs/handoff.md); times are epoch milliseconds. */
import { z } from "@hono/zod-openapi";
import { INBOX_STATUSES } from "../handoff/types";
import { InboxEntry, InboxItem } from "./chat-schemas";

// What a chat path's app needs too lives in chat-schemas.ts; the inbox's routes get it here.
export { InboxEntry, InboxItem } from "./chat-schemas";

/** The most items one page holds. */
export const MAX_PAGE = 100;

export const InboxQuery = z
  .object({
    status: z.enum(INBOX_STATUSES).optional().openapi({
      description: "open, waiting (for a human), human (an operator holds it), resolved, ended",
    }),
    channel: z.string().min(1).max(32).optional(),
    variant: z.string().min(1).max(512).optional(),
    q: z
      .string()
      .trim()
      .min(1)
      .max(200)
      .optional()
      .openapi({ description: "Full-text search over the conversations' messages (web search syntax)" }),
    cursor: z.string().min(1).max(200).optional().openapi({ description: "The previous page's next_cursor" }),
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(25),
  })
  .strict();

export const InboxPage = z
  .object({ data: z.array(InboxItem), next_cursor: z.string().nullable() })
  .openapi("InboxPage");

export const InboxTurn = z.object({
  turn_index: z.number().int(),
  at: z.number(),
  model: z.string(),
  called_model: z.string().nullable(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cost_usd: z.number(),
  latency_ms: z.number(),
  outcome: z.string(),
  error: z.string().nullable(),
  /** The blocked topic safety matched on this turn's message or answer. */
  blocked_topic: z.string().nullable(),
  tools_used: z.array(z.string()),
  /** Each call the platform's tool loop ran; empty for turns recorded before calls were. */
  tools: z.array(
    z.object({ name: z.string(), ok: z.boolean(), failure: z.string().nullable(), latency_ms: z.number() }),
  ),
});

/** The item, its transcript, and in place of the turn count each answered message's figures. */
export const InboxConversation = InboxItem.extend({
  entries: z.array(InboxEntry),
  turns: z.array(InboxTurn).openapi({ description: "Each answered message: model, tokens, cost, latency" }),
}).openapi("InboxConversation");

// Not `id`: the admin scope's path already names the tenant `{id}` (src/tenants/scope.ts).
export const InboxIdParam = z.object({
  conversation_id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, "not a conversation id")
    .openapi({ param: { name: "conversation_id", in: "path" } }),
});

export type InboxTurn = z.infer<typeof InboxTurn>;
export type InboxConversation = z.infer<typeof InboxConversation>;
