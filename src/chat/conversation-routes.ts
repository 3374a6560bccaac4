import { createRoute, z } from "@hono/zod-openapi";
import { sendAnalytics } from "../analytics/producer";
import { execCtx, newRouter } from "../app";
import { randomToken } from "../auth/keys";
import { tenantAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { applyExperiments } from "../experiments/apply";
import { issueLiveTicket } from "../handoff/ticket";
import { AnswerSource } from "../knowledge/chat-schemas";
import { errors, jsonBody, jsonResponse, tenantSecurity } from "../openapi";
import { redactNullable, redactorOf } from "../privacy/redact";
import { DAY_MS, retentionDaysOf } from "../privacy/retention";
import { limitAddress, limitSiteStart, limitStart } from "./address-limits";
import { call, conversationAssignments, ensureOwner, own, stubOf, viewOut } from "./conversation-access";
import type { Outcome } from "./conversation-do";
import { sendMessage } from "./conversation-message";
import type { PrepareResult } from "./conversation-types";
import { endUserOf, verifiedUser, visitorAuth } from "./identity";
import { botCheckNeeded, requireBotCheck } from "./turnstile";
import { issueVisitorToken } from "./visitor-token";

const IDLE_TIMEOUT_MS = 30 * 60_000;
const CONVERSATION_STATES = ["open", "escalated", "human", "resolved", "unresolved"] as const;
const CONVERSATION_ID = /^conv_[A-Za-z0-9]{24}$/;

const ConversationParam = z.object({
  id: z
    .string()
    .regex(CONVERSATION_ID, "not a conversation id")
    .openapi({ param: { name: "id", in: "path" } }),
});

export const ConversationOut = z
  .object({
    id: z.string(),
    state: z.enum(CONVERSATION_STATES),
    turns: z.number(),
    started_at: z.string(),
    last_activity_at: z.string(),
    total_tokens: z.number(),
    total_cost_usd: z.number(),
    csat: z.number().nullable(),
  })
  .openapi("Conversation");

export const Started = ConversationOut.extend({
  greeting: z.string(),
  visitor_token: z.string().optional().openapi({
    description:
      "Publishable keys: the visitor's signed token; send it as X-Visitor-Token with every later call (a new visitor gets one here)",
  }),
}).openapi("StartedConversation");
export const Transcript = ConversationOut.extend({
  messages: z.array(
    z.object({
      seq: z.number(),
      role: z.enum(["user", "assistant", "operator", "system"]),
      /** An operator entry's display name. */
      author: z.string().nullable(),
      content: z.string(),
      at: z.string(),
    }),
  ),
}).openapi("Transcript");
export const Reply = z
  .object({
    conversation_id: z.string(),
    /** null while an operator holds the conversation (state human): the operator answers live. */
    message: z.object({ role: z.literal("assistant"), content: z.string() }).nullable(),
    state: z.enum(CONVERSATION_STATES),
    escalated: z.boolean(),
    blocked: z.boolean(),
    /** The tenant's knowledge sources the answer cites (src/knowledge); empty when it cites none. */
    sources: z.array(AnswerSource),
    usage: z.object({ input_tokens: z.number(), output_tokens: z.number(), cost_usd: z.number() }),
  })
  .openapi("Reply");

const tags = ["conversations"];
const common = { tags, security: tenantSecurity, middleware: [tenantAuth, visitorAuth] };

const startRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations",
  summary: "Start a conversation; answers its id and the tenant's greeting",
  request: {
    body: jsonBody(
      z
        .object({
          user: z.string().min(1).max(256).optional(),
          channel: z.enum(["web", "api", "mobile", "email"]).default("web"),
          user_id: z.string().min(1).max(256).optional().openapi({
            description:
              "Browsers: the logged-in user's id in the tenant's system, with user_hash; the conversation is then user:<user_id>'s, on every device",
          }),
          user_hash: z
            .string()
            .regex(/^[0-9a-fA-F]{64}$/, "not a hex HMAC-SHA256")
            .optional()
            .openapi({
              description:
                "Hex HMAC-SHA256 of user_id under the tenant's identity secret (POST /v1/identity-secret), computed by the tenant's server",
            }),
          turnstile_token: z.string().min(1).max(4096).optional().openapi({
            description:
              "Browsers of a tenant with the bot check on (GET /v1/config `turnstile`) and no visitor token yet: the Turnstile token",
          }),
        })
        .strict(),
    ),
  },
  responses: { 201: jsonResponse(Started, "The new conversation"), ...errors(400, 401, 403, 415, 429, 503) },
});

const messageRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/messages",
  summary:
    "Send the visitor's next message; the answer streams as SSE (stream=true or Accept: text/event-stream) or comes as JSON",
  request: {
    params: ConversationParam,
    body: jsonBody(
      z.object({ content: z.string().trim().min(1).max(8_000), stream: z.boolean().optional() }).strict(),
    ),
  },
  responses: {
    200: {
      description:
        "The reply (JSON), or SSE events: delta {text}, policy {text}, error {message}, done {reply}",
      content: { "application/json": { schema: Reply }, "text/event-stream": { schema: z.string() } },
    },
    ...errors(400, 401, 403, 404, 409, 413, 415, 429, 503),
  },
});

const transcriptRoute = createRoute({
  ...common,
  method: "get",
  path: "/conversations/{id}",
  summary: "The conversation's transcript and state",
  request: { params: ConversationParam },
  responses: { 200: jsonResponse(Transcript, "The transcript"), ...errors(400, 401, 404, 429, 503) },
});

const endRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/end",
  summary: "End the conversation, resolved or not; emits its summary for analytics",
  request: { params: ConversationParam, body: jsonBody(z.object({ resolved: z.boolean() }).strict()) },
  responses: {
    200: jsonResponse(ConversationOut, "The ended conversation"),
    ...errors(400, 401, 404, 415, 429, 503),
  },
});

const feedbackRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/feedback",
  summary: "Rate the conversation (CSAT 1-5) with an optional comment",
  description:
    "The latest rating counts. The same rating again changes nothing; a conversation records at most 5 ratings, and a change after that is 409.",
  request: {
    params: ConversationParam,
    body: jsonBody(
      z.object({ csat: z.number().int().min(1).max(5), comment: z.string().max(2_000).optional() }).strict(),
    ),
  },
  responses: {
    200: jsonResponse(ConversationOut, "The rated conversation"),
    ...errors(400, 401, 404, 409, 415, 429, 503),
  },
});

const liveRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/live",
  summary:
    "A ticket for the conversation's live socket (operator messages, notices): open `new WebSocket(url)` within 60 s, once",
  request: { params: ConversationParam },
  responses: {
    200: jsonResponse(
      z.object({ url: z.string(), ticket: z.string(), expires_at: z.number() }).openapi("LiveTicket"),
      "The socket's URL (the ticket in its query) and the ticket",
    ),
    ...errors(400, 401, 403, 404, 409, 429, 503),
  },
});

/** The conversation API for widgets and servers. */
export const conversations = newRouter()
  .openapi(startRoute, async (c) => {
    const body = c.req.valid("json");
    const tenant = c.get("tenant");
    // The start's windows first (its address's, a returning visitor's), so a script sending junk
    // tokens gets at most its hourly starts' worth of siteverify calls; then the bot check, before
    // any visitor or conversation exists. The whole tenant's minute counts in the same call, unless
    // there is a bot check to pass: then after it, so junk tokens take none of the site's starts.
    const checked = botCheckNeeded(c);
    await limitStart(c, { site: !checked });
    const known = c.get("visitor");
    const verified = await verifiedUser(c, body);
    await requireBotCheck(c, body.turnstile_token);
    if (checked) await limitSiteStart(c);
    const id = `conv_${randomToken(24)}`;
    // A browser without a (valid) visitor token is a new visitor: it gets one, and keeps it. The
    // token names a user only when this start verified it: a claim is never renewed unchecked.
    let visitorToken: string | undefined;
    if (c.get("apiKey").kind === "publishable") {
      const issued = await issueVisitorToken(c.get("svc").env, tenant.id, known?.visitorId, verified);
      c.set("visitor", issued.visitor);
      visitorToken = issued.token;
    }
    const userId = endUserOf(c, body.user);
    // The variant is decided once, here, and kept with the conversation: every turn uses it.
    const exp = await applyExperiments(c.get("svc"), tenant, userId);
    const { view, inbox } = await call(() =>
      stubOf(c, id).start({
        tenantId: tenant.id,
        conversationId: id,
        userId,
        channel: body.channel,
        greeting: tenant.customGreeting,
        experiment: exp.experiment,
        variant: exp.variant,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        retentionMs: retentionDaysOf(c.get("svc").env, tenant.retentionDays) * DAY_MS,
      }),
    );
    conversationAssignments.set(`${tenant.id}:${id}`, { experiment: exp.experiment, variant: exp.variant });
    // The new conversation reaches the inbox with this isolate's analytics, in one pack.
    if (inbox) sendAnalytics(c.get("svc").env, execCtx(c), inbox);
    return c.json({ ...viewOut(view), greeting: tenant.customGreeting, visitor_token: visitorToken }, 201, {
      "Cache-Control": "no-store",
    });
  })
  .openapi(transcriptRoute, async (c) => {
    const { id } = c.req.valid("param");
    await limitAddress(c, "read");
    const user = endUserOf(c, undefined);
    const t = await call(() => stubOf(c, id).transcript(c.get("tenant").id));
    own(c, t.view, user);
    const messages = t.messages.map((m) => ({
      seq: m.seq,
      role: m.role,
      author: m.author ?? null,
      content: m.content,
      at: new Date(m.at).toISOString(),
    }));
    // Visitors' words: no shared or browser cache keeps them.
    return c.json({ ...viewOut(t.view), messages }, 200, { "Cache-Control": "no-store" });
  })
  .openapi(endRoute, async (c) => {
    const { id } = c.req.valid("param");
    await limitAddress(c, "message");
    const stub = stubOf(c, id);
    const tenantId = c.get("tenant").id;
    await ensureOwner(c, stub, tenantId);
    const view = await call(() =>
      stub.end(tenantId, { resolved: c.req.valid("json").resolved, reason: "requested" }),
    );
    return c.json(viewOut(view), 200);
  })
  .openapi(feedbackRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    await limitAddress(c, "message");
    const stub = stubOf(c, id);
    const tenantId = c.get("tenant").id;
    await ensureOwner(c, stub, tenantId);
    const view = await call(() =>
      stub.feedback(tenantId, {
        csat: body.csat,
        comment: redactNullable(body.comment ?? null, redactorOf(c.get("tenant"))),
      }),
    );
    return c.json(viewOut(view), 200);
  })
  .openapi(liveRoute, async (c) => {
    const { id } = c.req.valid("param");
    await limitAddress(c, "message");
    const tenantId = c.get("tenant").id;
    // Only the conversation's own visitor (or the tenant's server) gets a ticket, bound to its user:
    // a browser without a visitor token is refused before the conversation's object is woken.
    const user = endUserOf(c, undefined);
    const r = await call(
      async (): Promise<Outcome<PrepareResult>> => ({
        ok: true,
        value: await stubOf(c, id).prepare(tenantId, 0),
      }),
    );
    if (!r.ok && r.reason === "not_found") throw new AppError("NOT_FOUND", "no such conversation");
    const view = r.view as NonNullable<typeof r.view>;
    own(c, view, user);
    if (!r.ok) throw new AppError("CONFLICT", "conversation has ended; start a new one");
    const { ticket, claims } = await issueLiveTicket(c.get("svc").env, {
      tenantId,
      conversationId: id,
      userId: view.userId,
    });
    const url = new URL(`/v1/conversations/${id}/live`, c.req.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    return c.json({ url: url.toString(), ticket, expires_at: claims.expiresAt }, 200, {
      "Cache-Control": "no-store",
    });
  })
  .openapi(messageRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const wantsStream = body.stream ?? (c.req.header("accept") ?? "").includes("text/event-stream");
    return sendMessage(c, id, body.content, wantsStream);
  });
