import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppEnv, execCtx, newRouter } from "../app";
import { randomToken } from "../auth/keys";
import { tenantAuth } from "../auth/middleware";
import { IsolateCache } from "../cache/isolate";
import { AppError } from "../errors";
import {
  type AppliedExperiments,
  applyAssignment,
  applyExperiments,
  switchedOnExperiments,
} from "../experiments/apply";
import { errors, jsonBody, jsonResponse, tenantSecurity } from "../openapi";
import type { TenantConfig } from "../tenants/config";
import type { Outcome } from "./conversation-do";
import type { ConversationView, PrepareResult } from "./conversation-types";
import { admitTurn, releaseTurn, screenInput, startTurn, type TurnRequest, type TurnSummary } from "./engine";
import { endUserOf } from "./identity";
import type { ChatMessage } from "./providers/types";
import { asksForHuman } from "./safety";
import { frameStream, SSE_HEADERS, sseFrame } from "./sse";
import { countTextTokens, estimateTokens } from "./tokens";

/** History sent with each message is capped at this many tokens (and at what the model holds). */
export const HISTORY_TOKEN_BUDGET = 6_000;
const IDLE_TIMEOUT_MS = 30 * 60_000;
const CONVERSATION_ID = /^conv_[A-Za-z0-9]{24}$/;

const ConversationParam = z.object({
  id: z
    .string()
    .regex(CONVERSATION_ID, "not a conversation id")
    .openapi({ param: { name: "id", in: "path" } }),
});

const ConversationOut = z
  .object({
    id: z.string(),
    state: z.enum(["open", "escalated", "resolved", "unresolved"]),
    turns: z.number(),
    started_at: z.string(),
    last_activity_at: z.string(),
    total_tokens: z.number(),
    total_cost_usd: z.number(),
    csat: z.number().nullable(),
  })
  .openapi("Conversation");

const Started = ConversationOut.extend({ greeting: z.string() }).openapi("StartedConversation");
const Transcript = ConversationOut.extend({
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]), content: z.string(), at: z.string() })),
}).openapi("Transcript");
const Reply = z
  .object({
    conversation_id: z.string(),
    message: z.object({ role: z.literal("assistant"), content: z.string() }),
    state: z.enum(["open", "escalated", "resolved", "unresolved"]),
    escalated: z.boolean(),
    blocked: z.boolean(),
    usage: z.object({ input_tokens: z.number(), output_tokens: z.number(), cost_usd: z.number() }),
  })
  .openapi("Reply");

function viewOut(v: ConversationView) {
  return {
    id: v.conversationId,
    state: v.state,
    turns: v.turnCount,
    started_at: new Date(v.startedAt).toISOString(),
    last_activity_at: new Date(v.lastActivityAt).toISOString(),
    total_tokens: v.totalTokens,
    total_cost_usd: v.totalCostUsd,
    csat: v.csat,
  };
}

function stubOf(c: Context<AppEnv>, id: string) {
  const ns = c.get("svc").env.CONVERSATION;
  if (!ns)
    throw new AppError(
      "MISCONFIGURED",
      "worker misconfigured: the CONVERSATION Durable Object binding is missing",
    );
  return ns.getByName(`${c.get("tenant").id}:${id}`);
}

/** Unwraps a Conversation answer: refusals become 4xx; an object that cannot answer is a 503. */
async function call<T>(run: () => Promise<Outcome<T>>): Promise<T> {
  let out: Outcome<T>;
  try {
    out = await run();
  } catch (err) {
    console.error(JSON.stringify({ msg: "conversation object failed", error: String(err) }));
    throw new AppError("UNAVAILABLE", "conversation store unavailable; retry shortly", {
      headers: { "Retry-After": "1" },
    });
  }
  if (out.ok) return out.value;
  if (out.code === "not_found") throw new AppError("NOT_FOUND", "no such conversation");
  if (out.code === "ended") throw new AppError("CONFLICT", "conversation has ended; start a new one");
  throw new AppError("VALIDATION_FAILED", out.message);
}

/** A visitor may only touch conversations it started; another visitor's id reads as unknown. */
function own(c: Context<AppEnv>, view: ConversationView, user: string) {
  if (c.get("apiKey").kind === "publishable" && view.userId !== user)
    throw new AppError("NOT_FOUND", "no such conversation");
}

const tags = ["conversations"];
const common = { tags, security: tenantSecurity, middleware: [tenantAuth] };

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
        })
        .strict(),
    ),
  },
  responses: { 201: jsonResponse(Started, "The new conversation"), ...errors(400, 401, 403, 415) },
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
  responses: { 200: jsonResponse(Transcript, "The transcript"), ...errors(400, 401, 404) },
});

const endRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/end",
  summary: "End the conversation, resolved or not; emits its summary for analytics",
  request: { params: ConversationParam, body: jsonBody(z.object({ resolved: z.boolean() }).strict()) },
  responses: { 200: jsonResponse(ConversationOut, "The ended conversation"), ...errors(400, 401, 404, 415) },
});

const feedbackRoute = createRoute({
  ...common,
  method: "post",
  path: "/conversations/{id}/feedback",
  summary: "Rate the conversation (CSAT 1-5) with an optional comment",
  request: {
    params: ConversationParam,
    body: jsonBody(
      z.object({ csat: z.number().int().min(1).max(5), comment: z.string().max(2_000).optional() }).strict(),
    ),
  },
  responses: { 200: jsonResponse(ConversationOut, "The rated conversation"), ...errors(400, 401, 404, 415) },
});

/** The conversation API for widgets and servers. */
export const conversations = newRouter()
  .openapi(startRoute, async (c) => {
    const body = c.req.valid("json");
    const tenant = c.get("tenant");
    const id = `conv_${randomToken(24)}`;
    const userId = endUserOf(c, body.user);
    // The variant is decided once, here, and kept with the conversation: every turn uses it.
    const exp = await applyExperiments(c.get("svc"), tenant, userId);
    const view = await call(() =>
      stubOf(c, id).start({
        tenantId: tenant.id,
        conversationId: id,
        userId,
        channel: body.channel,
        greeting: tenant.customGreeting,
        experiment: exp.experiment,
        variant: exp.variant,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
      }),
    );
    conversationUsers.set(`${tenant.id}:${id}`, userId);
    return c.json({ ...viewOut(view), greeting: tenant.customGreeting }, 201);
  })
  .openapi(transcriptRoute, async (c) => {
    const { id } = c.req.valid("param");
    const user = endUserOf(c, undefined);
    const t = await call(() => stubOf(c, id).transcript(c.get("tenant").id));
    own(c, t.view, user);
    const messages = t.messages.map((m) => ({
      role: m.role,
      content: m.content,
      at: new Date(m.at).toISOString(),
    }));
    return c.json({ ...viewOut(t.view), messages }, 200);
  })
  .openapi(endRoute, async (c) => {
    const { id } = c.req.valid("param");
    const stub = stubOf(c, id);
    const tenantId = c.get("tenant").id;
    own(c, (await call(() => stub.transcript(tenantId))).view, endUserOf(c, undefined));
    const view = await call(() =>
      stub.end(tenantId, { resolved: c.req.valid("json").resolved, reason: "requested" }),
    );
    return c.json(viewOut(view), 200);
  })
  .openapi(feedbackRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const stub = stubOf(c, id);
    const tenantId = c.get("tenant").id;
    own(c, (await call(() => stub.transcript(tenantId))).view, endUserOf(c, undefined));
    const view = await call(() =>
      stub.feedback(tenantId, { csat: body.csat, comment: body.comment ?? null }),
    );
    return c.json(viewOut(view), 200);
  })
  .openapi(messageRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const wantsStream = body.stream ?? (c.req.header("accept") ?? "").includes("text/event-stream");
    return sendMessage(c, id, body.content, wantsStream);
  });

// Conversation -> its end user, isolate-wide, so a server's message can be admitted against the
// right user without first asking the Conversation object. Bounded; entries are immutable facts.
const conversationUsers = new IsolateCache<string>(20_000, 3_600_000);

const HUMAN_REPLY =
  "I've passed our conversation to a member of the team; they will get back to you shortly. You can keep writing here in the meantime.";

async function sendMessage(
  c: Context<AppEnv>,
  id: string,
  content: string,
  stream: boolean,
): Promise<Response> {
  const tenant = c.get("tenant");
  const stub = stubOf(c, id);
  const abort = new AbortController();
  const at = Date.now();
  const userTokens = countTextTokens(content) + 4;

  // History loads in parallel with admission: the input estimate is an upper bound (the history
  // budget), so the reservation holds whatever history comes back.
  const historyBudget = HISTORY_TOKEN_BUDGET;
  const prepared = call(
    async (): Promise<Outcome<PrepareResult>> => ({
      ok: true,
      value: await stub.prepare(tenant.id, historyBudget),
    }),
  );
  const newMessage: ChatMessage = { role: "user", content };
  const early = () =>
    prepared.then(
      (r) => (r.ok ? r.view : undefined),
      () => undefined,
    );
  // The end user a message counts against: a browser's visitor id, or for servers the user the
  // conversation was started for (remembered in this isolate; else read before admission).
  const convKey = `${tenant.id}:${id}`;
  let user: string;
  let view: ConversationView | undefined;
  if (c.get("apiKey").kind === "publishable") user = endUserOf(c, undefined);
  else {
    const known = conversationUsers.get(convKey);
    if (!known) view = await early();
    user = known ?? view?.userId ?? endUserOf(c, undefined);
  }
  // The conversation's variant was fixed at its start and is stored with it. A tenant with
  // experiments waits for it before admission (a variant may change the model and the limits);
  // the others load history and admit in parallel, as ever.
  const svc = c.get("svc");
  const stored =
    (await switchedOnExperiments(svc, tenant.id)).length > 0 ? (view ?? (await early())) : undefined;
  const exp = await applyAssignment(svc, tenant, stored ?? { experiment: null, variant: null });
  const base = { tenant: exp.config, userId: user, conversationId: id };
  const screenReq: TurnRequest = turnRequest(c, base, [newMessage], 0, abort.signal, exp);
  const blocked = screenInput(screenReq);
  const human = !blocked && asksForHuman(content);
  const estimate = estimateTokens([newMessage], { system: exp.config.systemPrompt }) + historyBudget;
  const admitReq = { ...screenReq, inputTokens: estimate };
  const admitting = blocked || human ? undefined : admitTurn(admitReq);
  // Both run at once; when the conversation turns out unusable, an admitted turn is released.
  const [state, admission] = await Promise.allSettled([prepared, admitting ?? Promise.resolve(undefined)]);
  const release = () => {
    if (admission.status === "fulfilled" && admission.value) releaseTurn(admitReq, admission.value);
  };
  if (state.status === "rejected") {
    release();
    throw state.reason;
  }
  const p = state.value;
  if (p.ok) conversationUsers.set(convKey, p.view.userId);
  if (!p.ok || (c.get("apiKey").kind === "publishable" && p.view?.userId !== user)) {
    release();
    if (!p.ok && p.reason === "ended")
      throw new AppError("CONFLICT", "conversation has ended; start a new one");
    throw new AppError("NOT_FOUND", "no such conversation");
  }
  if (admission.status === "rejected") throw admission.reason;
  const admitted = admission.value;

  const record = (s: TurnSummary | undefined, replyText: string, escalate?: string) =>
    call(() =>
      stub.recordTurn(tenant.id, {
        at,
        user: { content, tokens: userTokens },
        assistant: replyText
          ? {
              content: replyText,
              tokens: countTextTokens(replyText) + 4,
              toolCalls: s?.toolCalls.length ? s.toolCalls : undefined,
            }
          : null,
        inputTokens: s?.inputTokens ?? 0,
        outputTokens: s?.outputTokens ?? 0,
        costUsd: s?.costUsd ?? 0,
        latencyMs: s?.latencyMs ?? 0,
        outcome: s?.outcome ?? (blocked ? "blocked" : "ok"),
        toolsUsed: [...new Set((s?.toolCalls ?? []).map((t) => t.name))],
        escalate,
        escalationEmail: tenant.escalationEmail,
      }),
    );

  // Answers that need no model: a blocked topic, or a visitor asking for a human.
  if (!admitted) {
    const text = blocked ? blocked.text : HUMAN_REPLY;
    const r = await record(undefined, text, human ? "visitor asked for a human" : undefined);
    const reply = replyOf(
      id,
      text,
      r.view.state,
      r.escalatedNow || p.view.state === "escalated",
      Boolean(blocked),
      undefined,
    );
    if (!stream) return c.json(reply, 200);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify({ text }), blocked ? "policy" : "delta");
      yield sseFrame(JSON.stringify(reply), "done");
    })();
    return c.body(
      frameStream(frames, () => {}),
      200,
      SSE_HEADERS,
    );
  }

  const withHistory: ChatMessage[] = [...p.history.map(toChat), newMessage];
  // Recorded under the conversation's own assignment, also if its experiment stopped meanwhile.
  const { experiment, variant } = p.view;
  const ready = startTurn(
    { ...admitReq, turnIndex: p.view.turnCount, experiment, variant },
    admitted,
    withHistory,
  );
  const gather = async (onText?: (t: string, event: string) => void) => {
    let text = "";
    let failed: string | undefined;
    let policy = false;
    for await (const out of ready.events) {
      if (out.type === "text") {
        text += out.delta;
        onText?.(out.delta, "delta");
      } else if (out.type === "policy") {
        text += (text ? "\n\n" : "") + out.text;
        policy = true;
        onText?.(out.text, "policy");
      } else if (out.type === "failed") failed = out.message;
    }
    const s = await ready.summary;
    const willEscalate =
      s.outcome === "error" && p.view.consecutiveFailures + 1 >= 2 && p.view.state !== "escalated";
    const shown = failed ? (willEscalate ? `${failed} ${HUMAN_REPLY}` : failed) : text;
    const r = await record(s, failed ? "" : text);
    return {
      s,
      r,
      failed,
      policy,
      shown,
      reply: replyOf(id, shown, r.view.state, r.view.state === "escalated", policy, s),
    };
  };
  if (!stream) {
    const g = await gather();
    return c.json(g.reply, 200, ready.headers);
  }
  const frames = (async function* () {
    const queue: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    let finished: Awaited<ReturnType<typeof gather>> | undefined;
    let failure: unknown;
    const done = gather((t, event) => {
      queue.push(sseFrame(JSON.stringify({ text: t }), event));
      wake?.();
    }).then(
      (g) => {
        finished = g;
        wake?.();
      },
      (err) => {
        failure = err;
        wake?.();
      },
    );
    while (!finished && failure === undefined) {
      if (queue.length === 0) await new Promise<void>((r) => (wake = r));
      while (queue.length) yield queue.shift() as Uint8Array;
    }
    await done;
    while (queue.length) yield queue.shift() as Uint8Array;
    if (failure !== undefined || !finished) {
      yield sseFrame(
        JSON.stringify({ message: "the conversation could not be updated; please retry" }),
        "error",
      );
      return;
    }
    if (finished.failed) yield sseFrame(JSON.stringify({ message: finished.shown }), "error");
    yield sseFrame(JSON.stringify(finished.reply), "done");
  })();
  return c.body(
    frameStream(frames, () => abort.abort(new Error("client disconnected"))),
    200,
    { ...SSE_HEADERS, ...ready.headers },
  );
}

function toChat(m: {
  role: "user" | "assistant";
  content: string;
  toolCalls?: { id: string; name: string; arguments: string }[];
}): ChatMessage {
  return m.role === "user"
    ? { role: "user", content: m.content }
    : { role: "assistant", content: m.content, ...(m.toolCalls ? { toolCalls: m.toolCalls } : {}) };
}

function replyOf(
  id: string,
  text: string,
  state: ConversationView["state"],
  escalated: boolean,
  blocked: boolean,
  s: TurnSummary | undefined,
) {
  return {
    conversation_id: id,
    message: { role: "assistant" as const, content: text },
    state,
    escalated,
    blocked,
    usage: {
      input_tokens: s?.inputTokens ?? 0,
      output_tokens: s?.outputTokens ?? 0,
      cost_usd: s?.costUsd ?? 0,
    },
  };
}

function turnRequest(
  c: Context<AppEnv>,
  base: { tenant: TenantConfig; userId: string; conversationId: string },
  messages: ChatMessage[],
  turnIndex: number,
  signal: AbortSignal,
  exp: AppliedExperiments,
): TurnRequest {
  return {
    env: c.get("svc").env,
    ctx: execCtx(c),
    ...base,
    channel: "web",
    turnIndex,
    messages,
    model: base.tenant.model,
    temperature: exp.overrides.temperature,
    experiment: exp.experiment,
    variant: exp.variant,
    signal,
  };
}
