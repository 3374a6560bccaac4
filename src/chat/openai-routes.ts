import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AppEnv, execCtx, newRouter } from "../app";
import { tenantAuth } from "../auth/middleware";
import { AppError, codeOf, errorSummary } from "../errors";
import { applyExperiments } from "../experiments/apply";
import { jsonBody, tenantSecurity } from "../openapi";
import { secretKeyOnly } from "../tenants/scope";
import {
  checkTools,
  prepareTurn,
  recordUnanswered,
  screenInput,
  type TurnOutput,
  type TurnRequest,
  type TurnSummary,
} from "./engine";
import { endUserOf } from "./identity";
import { ModelNotAllowed, pinnedModel } from "./model-choice";
import {
  ChatCompletionRequest,
  type CompletionMeta,
  chunk,
  completion,
  openAiError,
  refusalAbout,
  toInternal,
  toolChoiceOf,
  toolsOf,
  usageBody,
} from "./openai-format";
import { frameStream, SSE_HEADERS, sseFrame } from "./sse";

const OpenAiErrorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string(),
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
    429: { description: "Rate limited or over budget", content: errorContent },
    502: { description: "The model failed", content: errorContent },
  },
});

/** OpenAI clients read `{error:{message,type,param,code}}`, so this route answers errors that way. */
function openAiErrorResponse(c: Context<AppEnv>, err: Error): Response {
  const rid = c.get("requestId") ?? "unknown";
  if (err instanceof AppError) {
    const about = err instanceof ModelNotAllowed ? err.openAi : refusalAbout(err.code, err.details);
    return c.json(openAiError(err.code, err.message, rid, about), err.status, err.headers);
  }
  if (err instanceof HTTPException && err.status < 500) {
    return c.json(openAiError(codeOf(err.status), err.message || "bad request", rid), err.status);
  }
  console.error(JSON.stringify({ msg: "unhandled error", requestId: rid, ...errorSummary(err) }));
  return c.json(openAiError("INTERNAL", "internal error", rid), 500);
}

/** The OpenAI-compatible endpoint. */
export const openAiChat = newRouter();
openAiChat.onError((err, c) => openAiErrorResponse(c, err));
openAiChat.openapi(route, async (c) => {
  const body = c.req.valid("json");
  const { system, messages } = toInternal(body);
  if (!messages.some((m) => m.role === "user")) {
    throw new AppError("VALIDATION_FAILED", "messages must contain at least one user message");
  }
  const tools = toolsOf(body);
  checkTools(c.get("tenant"), tools);
  const userId = endUserOf(c, body.user);
  // Checked before experiments assign the user: a refused request leaves no trace.
  const pinned = pinnedModel(c.get("tenant"), body.model);
  // The user's experiment variants override the tenant's config, and the caller's temperature
  // too: an experiment on it would mean nothing if every caller could pin it. The model is the
  // tenant's (or the variant's) unless the caller names another one the tenant allows.
  const exp = await applyExperiments(c.get("svc"), c.get("tenant"), userId);
  const abort = new AbortController();
  const rid = c.get("requestId");
  const req: TurnRequest = {
    env: c.get("svc").env,
    ctx: execCtx(c),
    tenant: exp.config,
    userId,
    // Stateless API: a caller that wants the per-conversation cap names its conversation.
    conversationId: c.req.header("x-conversation-id")?.slice(0, 128) || `req:${rid}`,
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
  };
  const meta: CompletionMeta = {
    id: `chatcmpl-${rid}`,
    created: Math.floor(Date.now() / 1000),
    model: req.model,
  };

  const blocked = screenInput(req);
  if (blocked) {
    recordUnanswered(req, { outcome: "blocked", topic: blocked.topic });
    const answer = completion(meta, blocked.text, [], "content_filter", { inputTokens: 0, outputTokens: 0 });
    if (!body.stream) return c.json(answer, 200);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify(chunk(meta, { role: "assistant", content: blocked.text })));
      yield sseFrame(JSON.stringify(chunk(meta, {}, "content_filter")));
      yield sseFrame("[DONE]");
    })();
    return c.body(
      frameStream(frames, () => {}),
      200,
      SSE_HEADERS,
    );
  }

  const turn = await prepareTurn(req);
  meta.model = turn.model;
  if (!body.stream) {
    let text = "";
    let failed: string | undefined;
    for await (const out of turn.events) {
      if (out.type === "text") text += out.delta;
      else if (out.type === "policy") text += (text ? "\n\n" : "") + out.text;
      else if (out.type === "failed") failed = out.message;
    }
    const s = await turn.summary;
    if (failed && !text && s.toolCalls.length === 0)
      throw new AppError("UPSTREAM_ERROR", failed, { headers: turn.headers });
    meta.model = s.model; // the model that answered: the fallback, when the first one failed
    const finish = finishOf(s);
    return c.json(completion(meta, text, s.toolCalls, finish, s), 200, turn.headers);
  }

  const includeUsage = body.stream_options?.include_usage === true;
  const frames = (async function* () {
    yield sseFrame(JSON.stringify(chunk(meta, { role: "assistant", content: "" })));
    for await (const out of turn.events) yield frameOf(meta, out);
    const s = await turn.summary;
    meta.model = s.model; // the chunks from here on name the model that answered
    const finish = finishOf(s);
    yield sseFrame(JSON.stringify(chunk(meta, {}, finish)));
    if (includeUsage) {
      yield sseFrame(
        JSON.stringify({ ...chunk(meta, {}), choices: [], usage: usageBody(s.inputTokens, s.outputTokens) }),
      );
    }
    yield sseFrame("[DONE]");
  })();
  return c.body(
    frameStream(frames, () => abort.abort(new Error("client disconnected"))),
    200,
    { ...SSE_HEADERS, ...turn.headers },
  );
});

/** OpenAI's finish_reason for a finished turn: blocked output is a content filter stop. */
function finishOf(s: TurnSummary): string {
  if (s.outcome === "blocked") return "content_filter";
  return s.finishReason === "error" ? "stop" : s.finishReason;
}

function frameOf(meta: CompletionMeta, out: TurnOutput): Uint8Array {
  switch (out.type) {
    case "text":
      return sseFrame(JSON.stringify(chunk(meta, { content: out.delta })));
    case "policy":
      return sseFrame(JSON.stringify(chunk(meta, { content: out.text })));
    case "tool_call": {
      const fn: Record<string, string> = { arguments: out.argumentsDelta };
      if (out.name) fn.name = out.name;
      const call: Record<string, unknown> = { index: out.index, function: fn };
      if (out.id) Object.assign(call, { id: out.id, type: "function" });
      return sseFrame(JSON.stringify(chunk(meta, { tool_calls: [call] })));
    }
    case "failed":
      // Mid-stream failure: OpenAI clients raise an APIError on an `error` object in the stream.
      return sseFrame(
        JSON.stringify({
          error: { message: out.message, type: "server_error", param: null, code: "upstream_error" },
        }),
      );
  }
}
