/**
 * The inbox shapes a chat path's app (src/api-chat.ts) needs for the handoff routes: an item and a
 * transcript entry. Apart from schemas.ts, whose query, page and conversation shapes a cold
 * isolate would otherwise build on its first chat request; test/local/bundle.test.ts holds the chat
 * app to that.
 */
import { z } from "@hono/zod-openapi";
import { INBOX_STATUSES, type InboxItem as InboxItemShape } from "../handoff/types";

export const InboxItem = z
  .object({
    id: z.string(),
    status: z.enum(INBOX_STATUSES),
    channel: z.string(),
    experiment: z.string().nullable(),
    variant: z.string().nullable(),
    csat: z.number().int().nullable(),
    total_cost_usd: z.number(),
    turns: z.number().int(),
    started_at: z.number(),
    last_activity_at: z.number(),
    waiting_since: z.number().nullable(),
    holder: z.object({ operator_id: z.string(), name: z.string() }).nullable(),
    preview: z.string().openapi({ description: "The latest message (with q: the latest one that matches)" }),
  })
  .openapi("InboxItem");

export const InboxEntry = z.object({
  seq: z.number().int(),
  role: z.enum(["user", "assistant", "operator", "system"]),
  author: z.string().nullable(),
  content: z.string(),
  at: z.number(),
});

export type InboxItem = z.infer<typeof InboxItem>;
export type InboxEntry = z.infer<typeof InboxEntry>;
// The contract's shape (src/handoff/types.ts) and this schema must not drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _sameItem: Same<InboxItem, InboxItemShape> = true;
