/**
 * The operator's side of live takeover (docs/handoff.md): take a conversation over, write in it,
 * hand it back to the bot, resolve it. Tenant-scoped (src/tenants/scope.ts) and open to agents;
 * the conversation's object is named by the scope's tenant, so another tenant's ids are unknown.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppEnv, newRouter } from "../app";
import { call } from "../chat/conversation-access";
import type { Outcome } from "../chat/conversation-do";
import type { HandoffActor, HandoffResult, PrepareResult } from "../chat/conversation-types";
import { TopicMatcher } from "../chat/safety";
import { messageTokens } from "../chat/tokens";
import { AppError } from "../errors";
import { InboxEntry, InboxItem } from "../inbox/chat-schemas";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { redactorOf, redactReply } from "../privacy/redact";
import type { TenantScope } from "../tenants/scope";
import { type InboxItem as Item, inboxStatus, type TranscriptEntry } from "./types";

export const CONVERSATION_ID = /^conv_[A-Za-z0-9]{24}$/;

// Not `{id}`: under /admin/tenants/{id} that is the tenant.
const Param = z.object({
  conversation_id: z
    .string()
    .regex(CONVERSATION_ID, "not a conversation id")
    .openapi({ param: { name: "conversation_id", in: "path" } }),
});

const tags = ["inbox"];

export function itemOf(r: HandoffResult): Item {
  const v = r.view;
  return {
    id: v.conversationId,
    status: inboxStatus(v.state),
    channel: v.channel,
    experiment: v.experiment,
    variant: v.variant,
    csat: v.csat,
    total_cost_usd: v.totalCostUsd,
    turns: v.turnCount,
    started_at: v.startedAt,
    last_activity_at: v.lastActivityAt,
    waiting_since: v.waitingSince,
    holder: v.holder && { operator_id: v.holder.operatorId, name: v.holder.name },
    preview: r.preview,
  };
}

/**
 * The signed-in operator: only a person can hold a conversation (not a key, not the admin). The
 * conversation is looked up first, so another tenant's id is unknown (404) to every caller alike.
 */
async function person(c: Context<AppEnv>, id: string) {
  const op = c.get("operator");
  if (op) return op;
  const tenantId = c.get("tenant").id;
  const r = await call(
    async (): Promise<Outcome<PrepareResult>> => ({
      ok: true,
      value: await stub(c, id).prepare(tenantId, 0),
    }),
  );
  if (!r.ok && r.reason === "not_found") throw new AppError("NOT_FOUND", "no such conversation");
  throw new AppError("FORBIDDEN", "only an operator signed into the console can take over and write");
}

/** Who hands back or resolves: the holder, an owner over anyone's hold, the tenant's key or the admin. */
function actorOf(c: Context<AppEnv>): HandoffActor {
  const op = c.get("operator");
  if (op) return { operatorId: op.id, name: shownName(c, op.name), override: op.role === "owner" };
  return { operatorId: null, name: "the support team", override: true };
}

/**
 * The name a person is shown under, as the tenant allows: the conversation keeps only this one, so
 * the visitor, the transcript and the inbox all read the same (the holder's id says who it was).
 */
function shownName(c: Context<AppEnv>, name: string): string {
  const display = c.get("tenant").operatorNameDisplay;
  if (display === "none") return "Support";
  if (display === "first") return name.trim().split(/\s+/)[0] || "Support";
  return name;
}

const stub = (c: Context<AppEnv>, id: string) =>
  c.get("svc").env.CONVERSATION.getByName(`${c.get("tenant").id}:${id}`);

export const handoffRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "post",
        path: "/inbox/{conversation_id}/takeover",
        agents: true,
        tags,
        summary: "Take the conversation over: the bot stops answering and the visitor sees who joined",
        request: { params: Param },
        responses: { 200: jsonResponse(InboxItem, "The held conversation"), ...errors(400, 404, 409) },
      }),
      async (c) => {
        const { conversation_id: id } = c.req.valid("param");
        const op = await person(c, id);
        const r = await call(() =>
          stub(c, id).takeover(c.get("tenant").id, { operatorId: op.id, name: shownName(c, op.name) }),
        );
        return c.json(itemOf(r), 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/inbox/{conversation_id}/messages",
        agents: true,
        tags,
        summary: "The holder's message to the visitor, delivered live",
        request: {
          params: Param,
          body: jsonBody(z.object({ content: z.string().trim().min(1).max(8_000) }).strict()),
        },
        responses: { 201: jsonResponse(InboxEntry, "The stored entry"), ...errors(400, 404, 409, 415) },
      }),
      async (c) => {
        const { conversation_id: id } = c.req.valid("param");
        const op = await person(c, id);
        const tenant = c.get("tenant");
        const text = c.req.valid("json").content;
        // The bot's answers pass the tenant's blocked topics before a visitor sees them: so does a person's.
        const topic = new TopicMatcher(tenant.blockedTopics).match(text);
        if (topic)
          throw new AppError(
            "VALIDATION_FAILED",
            `the message touches a blocked topic (${topic}); rephrase it`,
            {
              details: [{ path: "content", message: "blocked topic" }],
            },
          );
        // Stored under the bot's rules: the tenant's redaction before it is kept or shown.
        const content = redactReply(text, "", redactorOf(tenant));
        const r = await call(() =>
          stub(c, id).operatorMessage(tenant.id, op.id, {
            content,
            tokens: messageTokens({ role: "assistant", content }),
          }),
        );
        return c.json(r.entry as TranscriptEntry, 201);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/inbox/{conversation_id}/handback",
        agents: true,
        tags,
        summary: "Hand the conversation back to the bot (the holder, or an owner)",
        request: { params: Param },
        responses: {
          200: jsonResponse(InboxItem, "The conversation, open again"),
          ...errors(400, 404, 409),
        },
      }),
      async (c) => {
        const { conversation_id: id } = c.req.valid("param");
        const r = await call(() => stub(c, id).handback(c.get("tenant").id, actorOf(c)));
        return c.json(itemOf(r), 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/inbox/{conversation_id}/resolve",
        agents: true,
        tags,
        summary: "End the conversation as resolved by a person",
        request: { params: Param },
        responses: { 200: jsonResponse(InboxItem, "The resolved conversation"), ...errors(400, 404, 409) },
      }),
      async (c) => {
        const { conversation_id: id } = c.req.valid("param");
        const r = await call(() => stub(c, id).resolve(c.get("tenant").id, actorOf(c)));
        return c.json(itemOf(r), 200);
      },
    );
