import { z } from "@hono/zod-openapi";
import type { AppError, ErrorCode } from "../errors";
import { ModelNotAllowed, ModelNotFound } from "./model-choice";
import type { ChatMessage, ToolCall, ToolChoice, ToolDefinition } from "./providers/types";

const TextPart = z.object({ type: z.literal("text"), text: z.string() }).loose();
const Content = z.union([z.string(), z.array(TextPart).min(1)]);

const ToolCallIn = z
  .object({
    id: z.string().min(1).max(128),
    type: z.literal("function"),
    function: z.object({ name: z.string().min(1).max(64), arguments: z.string().max(100_000) }).loose(),
  })
  .loose();

const MessageIn = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content: Content, name: z.string().optional() }).loose(),
  z.object({ role: z.literal("developer"), content: Content, name: z.string().optional() }).loose(),
  z.object({ role: z.literal("user"), content: Content, name: z.string().optional() }).loose(),
  z
    .object({
      role: z.literal("assistant"),
      content: Content.nullable().optional(),
      tool_calls: z.array(ToolCallIn).max(64).optional(),
      name: z.string().optional(),
    })
    .loose(),
  z.object({ role: z.literal("tool"), content: Content, tool_call_id: z.string().min(1).max(128) }).loose(),
]);

const ToolIn = z
  .object({
    type: z.literal("function"),
    function: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "tool names are [A-Za-z0-9_-]{1,64}"),
        description: z.string().max(4_000).optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
      })
      .loose(),
  })
  .loose();

/**
 * OpenAI's Chat Completions request, as much of it as chatedge honours. Unknown fields are ignored
 * (clients send many), but the fields we read are checked strictly.
 */
export const ChatCompletionRequest = z
  .object({
    model: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .openapi({ description: "Optional: the tenant's model unless this names one the tenant allows" }),
    messages: z.array(MessageIn).min(1).max(1_000),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
    max_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    stop: z
      .union([z.string(), z.array(z.string()).max(4)])
      .nullable()
      .optional(),
    tools: z.array(ToolIn).max(128).optional(),
    tool_choice: z
      .union([
        z.enum(["auto", "none", "required"]),
        z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }).loose(),
      ])
      .optional(),
    n: z.literal(1).nullable().optional(),
    // Refused rather than ignored: a client that asks for JSON or log probabilities relies on them.
    response_format: z
      .object({
        type: z.literal("text", {
          error:
            "the answer is the tenant's bot's text: response_format json_object and json_schema are not supported",
        }),
      })
      .loose()
      .nullable()
      .optional(),
    logprobs: z.literal(false, { error: "log probabilities are not returned" }).nullable().optional(),
    user: z.string().min(1).max(256).optional(),
    safety_identifier: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .openapi({ description: "The end user, as `user` names them (OpenAI's newer name for it)" }),
  })
  .loose()
  .openapi("ChatCompletionRequest");
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

function text(content: z.infer<typeof Content> | null | undefined): string {
  if (content === null || content === undefined) return "";
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

/** Splits an OpenAI request into the client's system text and the conversation in internal form. */
export function toInternal(req: ChatCompletionRequest): { system: string; messages: ChatMessage[] } {
  const system: string[] = [];
  const messages: ChatMessage[] = [];
  for (const m of req.messages) {
    if (m.role === "system" || m.role === "developer") system.push(text(m.content));
    else if (m.role === "user") messages.push({ role: "user", content: text(m.content) });
    else if (m.role === "tool")
      messages.push({ role: "tool", toolCallId: m.tool_call_id, content: text(m.content) });
    else {
      const toolCalls: ToolCall[] | undefined = m.tool_calls?.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: c.function.arguments,
      }));
      messages.push({
        role: "assistant",
        content: text(m.content),
        ...(toolCalls?.length ? { toolCalls } : {}),
      });
    }
  }
  return { system: system.join("\n\n"), messages };
}

/** The request's tools in internal form. */
export function toolsOf(req: ChatCompletionRequest): ToolDefinition[] | undefined {
  return req.tools?.map((t) => ({
    name: t.function.name,
    description: t.function.description,
    parameters: t.function.parameters ?? { type: "object", properties: {} },
  }));
}

export function toolChoiceOf(req: ChatCompletionRequest): ToolChoice | undefined {
  const c = req.tool_choice;
  if (c === undefined || typeof c === "string") return c;
  return { name: c.function.name };
}

/** OpenAI's error `type` for each of our codes, so SDK error classes line up. */
function openAiType(code: ErrorCode): string {
  switch (code) {
    case "UNAUTHORIZED":
      return "authentication_error";
    case "FORBIDDEN":
      return "permission_error";
    case "NOT_FOUND":
      return "not_found_error";
    case "RATE_LIMITED":
    case "BUDGET_EXCEEDED":
      return "rate_limit_error";
    case "UPSTREAM_ERROR":
    case "UNAVAILABLE":
    case "INTERNAL":
    case "MISCONFIGURED":
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

/** OpenAI's own `code` for an error and the `param` it is about (null: none). */
export interface OpenAiAbout {
  param: string | null;
  code: string | null;
}

/** `messages.0.content` as OpenAI writes a param: `messages[0].content`. */
function paramOf(details: unknown): string | null {
  const first = Array.isArray(details) ? (details[0] as { path?: unknown } | undefined) : undefined;
  const path = typeof first?.path === "string" && first.path !== "" ? first.path : null;
  return path?.replace(/\.(\d+)(?=\.|$)/g, "[$1]") ?? null;
}

/**
 * OpenAI's `code` and `param` for one of our errors. OpenAI's own code where it has one: a bad key
 * is `invalid_api_key`; a rate limit is `rate_limit_exceeded` with the level as `param` (`user`,
 * `tenant`, `global`, `address`); a budget is `insufficient_quota` with the budget as `param`
 * (`monthly_tokens`, `daily_cost`, `conversation_cost`, ...), read from the refusal's details
 * (`level`, `budget`). Anything else has a null code, as OpenAI's own errors do, and a validation
 * failure names its first offending field as `param`.
 */
export function openAiAbout(code: ErrorCode, details: unknown): OpenAiAbout {
  const d = typeof details === "object" && details !== null ? (details as Record<string, unknown>) : {};
  const name = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
  switch (code) {
    case "UNAUTHORIZED":
      return { code: "invalid_api_key", param: null };
    case "RATE_LIMITED":
      return { code: "rate_limit_exceeded", param: name(d.level) };
    case "BUDGET_EXCEEDED":
      return { code: "insufficient_quota", param: name(d.budget) };
    case "VALIDATION_FAILED":
      return { code: null, param: paramOf(details) };
    default:
      return { code: null, param: null };
  }
}

/**
 * OpenAI's error body: `{error: {message, type, param, code}}`, with our request id alongside.
 * `about` overrides what `openAiAbout` says of the code (a refused model is `model_not_found`).
 */
export function openAiError(
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: unknown,
  about: OpenAiAbout = openAiAbout(code, details),
) {
  return {
    error: { message, type: openAiType(code), param: about.param, code: about.code, request_id: requestId },
  };
}

/** An application error in OpenAI's shape; a refused or unknown model is OpenAI's `model_not_found`. */
export function openAiAppError(err: AppError, requestId: string) {
  const about = err instanceof ModelNotAllowed || err instanceof ModelNotFound ? err.openAi : undefined;
  return openAiError(err.code, err.message, requestId, err.details, about);
}

export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
  /** stream_options.include_usage: every chunk but the final usage chunk then says `usage: null`. */
  includeUsage?: boolean;
}

/** One streamed chunk in OpenAI's `chat.completion.chunk` shape. */
export function chunk(meta: CompletionMeta, delta: Record<string, unknown>, finish: string | null = null) {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...(meta.includeUsage ? { usage: null } : {}),
  };
}

/** The final chunk with stream_options.include_usage: no choices, the turn's usage. */
export function usageChunk(meta: CompletionMeta, inputTokens: number, outputTokens: number) {
  return { ...chunk(meta, {}), choices: [], usage: usageBody(inputTokens, outputTokens) };
}

export function usageBody(inputTokens: number, outputTokens: number) {
  return {
    prompt_tokens: inputTokens,
    completion_tokens: outputTokens,
    total_tokens: inputTokens + outputTokens,
  };
}

/** The whole answer in OpenAI's `chat.completion` shape. */
export function completion(
  meta: CompletionMeta,
  content: string,
  toolCalls: ToolCall[],
  finish: string,
  usage: { inputTokens: number; outputTokens: number },
) {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: toolCalls.length && !content ? null : content,
    refusal: null,
  };
  if (toolCalls.length) {
    message.tool_calls = toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage: usageBody(usage.inputTokens, usage.outputTokens),
  };
}
