import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { REQUEST_CONVERSATION } from "../admission/types";
import { type AppEnv, execCtx, newRouter } from "../app";
import { tenantAuth } from "../auth/middleware";
import type { Env } from "../env";
import { AppError } from "../errors";
import { applyExperiments } from "../experiments/apply";
import {
  citedSources,
  groundMessage,
  knowledgeOf,
  recordUnansweredQuestion,
  saysUnknown,
} from "../knowledge/retrieve";
import { jsonBody, jsonResponse, tenantSecurity } from "../openapi";
import { redact, redactorOf } from "../privacy/redact";
import { secretKeyOnly } from "../tenants/scope";
import {
  registryRunner,
  startToolTurn,
  type ToolRunner,
  type ToolTurnSummary,
  toolDefinition,
} from "../tools/loop";
import {
  admitTurn,
  admitUnpriced,
  checkTools,
  recordUnanswered,
  screenInput,
  type TurnOutput,
  type TurnRequest,
  type TurnSummary,
} from "./engine";
import { endUserOf } from "./identity";
import { allowedModels, ModelNotFound, pinnedModel } from "./model-choice";
import {
  ChatCompletionRequest,
  type CompletionMeta,
  chunk,
  completion,
  openAiError,
  toInternal,
  toolChoiceOf,
  toolsOf,
  usageChunk,
} from "./openai-format";
import { resolveModel } from "./providers/registry";
import { RequestHold } from "./request-hold";
import { frameStream, SSE_HEADERS, sseFrame } from "./sse";

const OpenAiErrorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
      request_id: z.string(),
    }),
  })
  .openapi("OpenAIError");
const errorContent = { "application/json": { schema: OpenAiErrorBody } };

const route = createRoute({
  method: "post",
  path: "/chat/completions",
  tags: ["chat"],
  security: tenantSecurity,
  middleware: [tenantAuth, secretKeyOnly],
  summary:
    "OpenAI-compatible Chat Completions (stream and non-stream); the official openai client works with baseURL",
  request: { body: jsonBody(ChatCompletionRequest) },
  responses: {
    200: {
      description: "A chat.completion, or with stream=true an SSE stream of chat.completion.chunk",
      content: {
        "application/json": {
          schema: z.object({ id: z.string(), object: z.literal("chat.completion") }).loose(),
        },
        "text/event-stream": { schema: z.string() },
      },
    },
    400: { description: "Invalid request", content: errorContent },
    401: { description: "Invalid key", content: errorContent },
    403: { description: "A publishable key, or a deactivated tenant", content: errorContent },
    413: { description: "The body is over the size limit", content: errorContent },
    415: { description: "The body is not JSON", content: errorContent },
    429: { description: "Rate limited or over budget", content: errorContent },
    502: { description: "The model failed", content: errorContent },
  },
});

const OpenAiModel = z
  .object({
    id: z.string(),
    object: z.literal("model"),
    created: z.number().int(),
    owned_by: z.string(),
  })
  .openapi("OpenAIModel");
const ModelList = z
  .object({ object: z.literal("list"), data: z.array(OpenAiModel) })
  .openapi("OpenAIModelList");

const modelsRoute = createRoute({
  method: "get",
  path: "/models",
  tags: ["chat"],
  security: tenantSecurity,
  middleware: [tenantAuth, secretKeyOnly],
  summary: "OpenAI-compatible list of the models this key may name in /v1/chat/completions",
  responses: {
    200: jsonResponse(ModelList, "The tenant's model, its fallback, then its allowed_models"),
    401: { description: "Invalid key", content: errorContent },
    403: { description: "A publishable key, or a deactivated tenant", content: errorContent },
  },
});

const modelRoute = createRoute({
  method: "get",
  path: "/models/{model}",
  tags: ["chat"],
  security: tenantSecurity,
  middleware: [tenantAuth, secretKeyOnly],
  summary: "OpenAI-compatible: one model this key may name (404 `model_not_found` otherwise)",
  request: { params: z.object({ model: z.string().min(1).max(200) }) },
  responses: {
    200: jsonResponse(OpenAiModel, "The model"),
    401: { description: "Invalid key", content: errorContent },
    403: { description: "A publishable key, or a deactivated tenant", content: errorContent },
    404: { description: "Not a model this key may name", content: errorContent },
  },
});

/** A model as OpenAI's clients list it; `owned_by` is who serves it (chatedge knows no release date). */
function modelEntry(id: string, env: Env) {
  return {
    id,
    object: "model" as const,
    created: 0,
    owned_by: resolveModel(id, env)?.provider.name ?? "chatedge",
  };
}

/**
 * The OpenAI-compatible endpoints. Their errors come in OpenAI's shape from the app's one error
 * handler (`errorResponse` in src/app.ts), which knows these paths.
 */
export const openAiChat = newRouter();
/**
 * OpenAI's own rate-limit headers beside the RateLimit fields, for the clients and proxies that
 * read them (routers, retry middleware): the requests of the most constrained window in force
 * (user, tenant or global), with its reset as OpenAI writes durations. No `-tokens` pair: the
 * token budgets here are monthly and daily, not a minute's. Set on answers and refusals alike.
 */
openAiChat.use("/chat/completions", async (c, next) => {
  await next();
  const h = c.res.headers;
  const limit = h.get("RateLimit-Limit");
  if (limit === null) return;
  h.set("x-ratelimit-limit-requests", limit);
  h.set("x-ratelimit-remaining-requests", h.get("RateLimit-Remaining") ?? "0");
  h.set("x-ratelimit-reset-requests", `${h.get("RateLimit-Reset") ?? "0"}s`);
});
openAiChat.openapi(modelsRoute, (c) => {
  const env = c.get("svc").env;
  const data = allowedModels(c.get("tenant")).map((id) => modelEntry(id, env));
  return c.json({ object: "list" as const, data }, 200);
});
openAiChat.openapi(modelRoute, (c) => modelAnswer(c, c.req.valid("param").model));
// An id with slashes (`@cf/meta/...`, `groq/...`) as a client that does not percent-encode it sends
// it: OpenAI's Python client builds `/models/{model}` as it is.
openAiChat.get("/models/:model{[^/]+/.+}", tenantAuth, secretKeyOnly, (c) =>
  modelAnswer(c, c.req.param("model")),
);

function modelAnswer(c: Context<AppEnv>, model: string) {
  if (!allowedModels(c.get("tenant")).includes(model)) throw new ModelNotFound(model);
  return c.json(modelEntry(model, c.get("svc").env), 200);
}
// Held from before admission until the turn has settled, whether or not its client stays.
openAiChat.openapi(route, (c) => {
  const hold = new RequestHold(execCtx(c));
  const body = c.req.valid("json");
  return hold.run(() => completions(c, body, hold));
});

async function completions(
  c: Context<AppEnv>,
  body: z.infer<typeof ChatCompletionRequest>,
  hold: RequestHold,
) {
  const { system, messages } = toInternal(body);
  if (!messages.some((m) => m.role === "user")) {
    throw new AppError("VALIDATION_FAILED", "messages must contain at least one user message", {
      details: [{ path: "messages", message: "no message has the role user" }],
    });
  }
  const tools = toolsOf(body);
  checkTools(c.get("tenant"), tools);
  // `safety_identifier` is OpenAI's newer name for the end user `user` named.
  const userId = endUserOf(c, body.user ?? body.safety_identifier);
  // Checked before experiments assign the user: a refused request leaves no trace.
  const pinned = pinnedModel(c.get("tenant"), body.model);
  // The user's experiment variants override the tenant's config, and the caller's temperature
  // too: an experiment on it would mean nothing if every caller could pin it. The model is the
  // tenant's (or the variant's) unless the caller names another one the tenant allows.
  const exp = await applyExperiments(c.get("svc"), c.get("tenant"), userId);
  const abort = new AbortController();
  const rid = c.get("requestId");
  // The completion's id and its request-scoped conversation are the request id the worker made; a
  // caller's own X-Request-Id (which proxies forward across many calls) names neither.
  const turnId = rid === c.req.header("x-request-id") ? crypto.randomUUID() : rid;
  const req: TurnRequest = {
    env: c.get("svc").env,
    ctx: execCtx(c),
    tenant: exp.config,
    userId,
    // Stateless API: a caller that wants the per-conversation cap names its conversation.
    conversationId: c.req.header("x-conversation-id")?.slice(0, 128) || `${REQUEST_CONVERSATION}${turnId}`,
    channel: "api",
    turnIndex: messages.filter((m) => m.role === "user").length - 1,
    messages,
    clientSystem: system || undefined,
    tools,
    toolChoice: toolChoiceOf(body),
    temperature: exp.overrides.temperature ?? body.temperature ?? undefined,
    stop: typeof body.stop === "string" ? [body.stop] : (body.stop ?? undefined),
    model: pinned ?? exp.config.model,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    stream: body.stream === true,
    experiment: exp.experiment,
    variant: exp.variant,
    signal: abort.signal,
    timing: c.get("timing"),
  };
  const includeUsage = body.stream === true && body.stream_options?.include_usage === true;
  const meta: CompletionMeta = {
    id: `chatcmpl-${turnId}`,
    created: Math.floor(Date.now() / 1000),
    model: req.model,
    includeUsage,
  };

  const blocked = screenInput(req);
  // The tenant's knowledge (src/knowledge): reference data for the prompt, and when nothing
  // relevant is found, the instruction to answer the tenant's "I don't know" sentence. Cited sources
  // travel in `chatedge_sources`, an extension field OpenAI clients ignore.
  const question = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const grounding = blocked ? undefined : await groundMessage(c.get("svc"), req.tenant.id, question);
  req.knowledge = knowledgeOf(grounding);
  req.grounding = grounding;
  // An answer that is the tenant's "I don't know" lists the question for the tenant to answer.
  const noteUnknown = async (text: string, ownPool: boolean) => {
    if (!saysUnknown(text, grounding)) return;
    const redacted = redact(question, redactorOf(req.tenant));
    await recordUnansweredQuestion(c.get("svc"), req.tenant.id, redacted, { ownPool });
  };
  if (blocked) {
    // Refused by the policy, not the model: still one request in every rate window.
    const headers = await admitUnpriced(req);
    recordUnanswered(req, { outcome: "blocked", topic: blocked.topic });
    const answer = {
      ...completion(meta, blocked.text, [], "content_filter", { inputTokens: 0, outputTokens: 0 }),
      chatedge_sources: [],
    };
    if (!body.stream) return c.json(answer, 200, headers);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify(chunk(meta, { role: "assistant", content: blocked.text })));
      yield sseFrame(JSON.stringify({ ...chunk(meta, {}, "content_filter"), chatedge_sources: [] }));
      if (includeUsage) yield sseFrame(JSON.stringify(usageChunk(meta, 0, 0)));
      yield sseFrame("[DONE]");
    })();
    return c.body(
      frameStream(frames, () => {}, c.get("timing")),
      200,
      { ...SSE_HEADERS, ...headers },
    );
  }

  // A tenant that runs its tools on the server offers its registered tools; the loop runs them.
  const runner = await serverTools(c, req);
  const turn = startToolTurn(req, await admitTurn(req), req.messages, runner);
  // A streamed answer's "I don't know" is listed within the hold, whether or not its client reads
  // the stream to its end (the handler has returned by then: the listing opens its own pool).
  const listed = body.stream
    ? turn.summary.then((s) => (s.outcome === "ok" ? noteUnknown(s.text, true) : undefined))
    : undefined;
  hold.until(listed ?? turn.summary);
  meta.model = turn.model;
  if (!body.stream) {
    let text = "";
    let failed: FailedOutput | undefined;
    for await (const out of turn.events) {
      if (out.type === "text") text += out.delta;
      else if (out.type === "policy") text += (text ? "\n\n" : "") + out.text;
      else if (out.type === "failed") failed = out;
    }
    const s = await turn.summary;
    // A failure after part of an answer (a tool loop's later step) is a failure too: a 200 would
    // pass the part off as the whole.
    if (failed) throw failureError(failed, s, turn.headers);
    meta.model = s.model; // the model that answered: the fallback, when the first one failed
    const finish = finishOf(s);
    const sources = citedSources(text, grounding);
    await noteUnknown(text, false);
    return c.json(
      { ...completion(meta, text, s.toolCalls, finish, s), chatedge_sources: sources },
      200,
      turn.headers,
    );
  }

  // The status waits for the turn's first output, as OpenAI's does: a model that fails before it
  // answers is an HTTP error a client can retry, not a 200 with an error inside.
  let first = await turn.events.next();
  while (!first.done && first.value.type === "tool") first = await turn.events.next();
  if (!first.done && first.value.type === "failed") {
    const failed = first.value;
    // Run to its end (not `return()`, which would cut a tool loop short of counting the failed
    // step): settled and recorded as the failure it is.
    while (!(await turn.events.next()).done);
    throw failureError(failed, await turn.summary, turn.headers);
  }
  const frames = (async function* () {
    yield sseFrame(JSON.stringify(chunk(meta, { role: "assistant", content: "" })));
    const text = textFrame(meta);
    let out = first;
    let failed = false;
    try {
      for (; !out.done; out = await turn.events.next()) {
        const o = out.value;
        if (o.type === "text") yield text(o.delta);
        else if (o.type !== "tool") {
          failed ||= o.type === "failed";
          yield frameOf(meta, o, rid);
        }
      }
    } finally {
      // The client went away mid-stream: end the turn (its upstream call, its settlement) too.
      if (!out.done) await turn.events.return(undefined);
    }
    const s = await turn.summary;
    // A stream that failed part-way ends at its error: no finish chunk that would call it whole.
    if (failed) return;
    meta.model = s.model; // the chunks from here on name the model that answered
    const finish = finishOf(s);
    const sources = citedSources(s.text, grounding);
    await listed; // listed before the stream ends, for a client that reads it to its end
    yield sseFrame(JSON.stringify({ ...chunk(meta, {}, finish), chatedge_sources: sources }));
    if (includeUsage) yield sseFrame(JSON.stringify(usageChunk(meta, s.inputTokens, s.outputTokens)));
    yield sseFrame("[DONE]");
  })();
  return c.body(
    frameStream(frames, () => abort.abort(new Error("client disconnected")), c.get("timing")),
    200,
    { ...SSE_HEADERS, ...turn.headers },
  );
}

/**
 * The tenant's registered tools when it runs them on the server (`tool_execution: "server"`), put
 * on `req` so admission counts their definitions; a caller's own tools are refused then, since
 * nothing could run them. None for a tenant whose callers run their tools.
 */
async function serverTools(c: Context<AppEnv>, req: TurnRequest): Promise<ToolRunner> {
  if (req.tenant.toolExecution !== "server") return { tools: [], invoke: noInvoke };
  if (req.tools?.length) {
    throw new AppError("VALIDATION_FAILED", "this tenant runs its tools on the server; send no tools", {
      details: [{ path: "tools", message: "tool_execution is server: the registered tools are offered" }],
    });
  }
  const runner = await registryRunner(c.get("svc"), c.get("svc").env, req.tenant, {
    conversationId: req.conversationId,
    requestId: c.get("requestId"),
    user: req.userId,
  });
  if (runner.tools.length > 0) req.tools = runner.tools.map(toolDefinition);
  return runner;
}

// Never called (no tools are offered), and like any invoker it answers rather than throws.
const noInvoke: ToolRunner["invoke"] = async (tool) => ({
  ok: false,
  name: tool.name,
  failure: "not_allowed",
  content: `Error: the tool ${tool.name} is not available to you.`,
  latencyMs: 0,
});

type FailedOutput = Extract<TurnOutput, { type: "failed" }>;

/**
 * The error for a turn the model did not answer: 502. `x-should-retry: false` tells OpenAI's
 * clients not to try again when another attempt cannot help or would do harm:
 * - the provider called its failure final (it refused the request itself: too long for the
 *   model's context, a parameter the model does not take; or the platform's setup: a key, a model),
 *   and the worker has tried the fallback already;
 * - a tool ran on the server: a retry of the request would run it again.
 * The provider's own message is not passed on: a 400 it answers may be about the request or about
 * the platform's account with it, which is not the caller's to read.
 */
function failureError(failed: FailedOutput, s: ToolTurnSummary, headers: Record<string, string>): AppError {
  const cause = failed.cause;
  const final = cause !== undefined && !cause.retryable;
  if (!final && s.tools.length === 0) return new AppError("UPSTREAM_ERROR", failed.message, { headers });
  const refused =
    final && cause.status !== undefined && cause.status >= 400 && cause.status < 500
      ? `the model provider refused the request (HTTP ${cause.status}): it may be too long for the model's context or use a parameter the model does not take; retrying it unchanged will not help`
      : failed.message;
  return new AppError("UPSTREAM_ERROR", refused, { headers: { ...headers, "x-should-retry": "false" } });
}

/** OpenAI's finish_reason for a finished turn: blocked output is a content filter stop. */
function finishOf(s: TurnSummary): string {
  if (s.outcome === "blocked") return "content_filter";
  return s.finishReason === "error" ? "stop" : s.finishReason;
}

/**
 * The frame of a text delta, as `frameOf` writes it. Every text chunk of a stream has the same
 * shape but for its text, so the rest is serialised once and only the text per chunk.
 */
function textFrame(meta: CompletionMeta): (delta: string) => Uint8Array {
  const MARK = '"content":""';
  // A JSON string cannot hold MARK unescaped (its quotes would be \"), so it splits the shape in two.
  const whole = JSON.stringify(chunk(meta, { content: "" }));
  const at = whole.indexOf(MARK);
  const head = `${whole.slice(0, at)}"content":`;
  const tail = whole.slice(at + MARK.length);
  return (delta) => sseFrame(head + JSON.stringify(delta) + tail);
}

function frameOf(meta: CompletionMeta, out: TurnOutput, requestId: string): Uint8Array {
  switch (out.type) {
    case "text":
      return sseFrame(JSON.stringify(chunk(meta, { content: out.delta })));
    case "policy":
      return sseFrame(JSON.stringify(chunk(meta, { content: out.text })));
    case "tool_call": {
      const fn: Record<string, string> = { arguments: out.argumentsDelta };
      if (out.name) fn.name = out.name;
      const call: Record<string, unknown> = { index: out.index, function: fn };
      // The engine gives every call an id on its first delta, and OpenAI's clients need `type` there.
      if (out.id) Object.assign(call, { id: out.id, type: "function" });
      return sseFrame(JSON.stringify(chunk(meta, { tool_calls: [call] })));
    }
    case "failed":
      // Mid-stream failure: OpenAI clients raise an APIError on an `error` object in the stream.
      return sseFrame(JSON.stringify(openAiError("UPSTREAM_ERROR", out.message, requestId)));
  }
}
