/**
 * The inbox's reads in every tenant scope (docs/handoff.md): `/inbox` and `/inbox/{id}`. Reads are
 * open to agents; the writes (take over, answer, hand back, resolve) are src/handoff's.
 */
import { newRouter } from "../app";
import { AppError } from "../errors";
import { errors, jsonResponse } from "../openapi";
import type { TenantScope } from "../tenants/scope";
import { InboxConversation, InboxIdParam, InboxPage, InboxQuery } from "./schemas";
import { entriesOf, indexedEntries, indexedItem, itemOfView, listInbox, turnsOf } from "./service";

export const inboxRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/inbox",
        tags: ["inbox"],
        summary: "The tenant's conversations, newest activity first: status, filters, full-text search",
        request: { query: InboxQuery },
        responses: { 200: jsonResponse(InboxPage, "A page of conversations"), ...errors(400) },
      }),
      async (c) => {
        const page = await listInbox(c.get("svc").dbh.db, c.get("tenant").id, c.req.valid("query"));
        return c.json(page, 200);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/inbox/{conversation_id}",
        tags: ["inbox"],
        summary: "One conversation: its transcript (entries by seq) and each answered message's figures",
        request: { params: InboxIdParam },
        responses: { 200: jsonResponse(InboxConversation, "The conversation"), ...errors(400, 404) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const { conversation_id: id } = c.req.valid("param");
        const db = svc.dbh.db;
        const [live, item, turns] = await Promise.all([
          // The object holds the transcript until retention or erasure; it is ahead of the index.
          svc.env.CONVERSATION.getByName(`${tenant.id}:${id}`)
            .transcript(tenant.id)
            .catch((err: unknown) => {
              console.error(JSON.stringify({ msg: "inbox: transcript unavailable", error: String(err) }));
              return undefined;
            }),
          indexedItem(db, tenant.id, id),
          turnsOf(db, tenant.id, id),
        ]);
        if (live?.ok) {
          const { view, messages } = live.value;
          return c.json({ ...itemOfView(view, messages), entries: entriesOf(messages), turns }, 200);
        }
        if (!item) throw new AppError("NOT_FOUND", `no conversation ${id}`);
        return c.json({ ...item, entries: await indexedEntries(db, tenant.id, id), turns }, 200);
      },
    );
