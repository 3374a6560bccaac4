// The wire half of the fake LLM server (local/fake-llm.ts): the deterministic reply plan and its
// encodings as OpenAI chat.completion(.chunk) and Anthropic Messages bodies and SSE events.

import { firstReference, unknownAnswerOf } from "../src/knowledge/reference.ts";

export type Protocol = "openai" | "anthropic";
export type Json = Record<string, unknown>;
export type Turn = { role: string; text: string; toolResult: boolean };
export type Plan = {
  pieces: string[];
  tool?: { id: string; name: string; args: string; fragments: string[] };
  finish: "stop" | "length" | "tool";
  input: number;
  output: number;
  usage: boolean;
};

const CREATED = 1_700_000_000;
const MARKERS = /\[\[[^\]]*\]\]/g;

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const pieces = (s: string) => s.split(" ").map((w, i) => (i === 0 ? w : ` ${w}`));

function textOf(content: unknown): { text: string; toolResult: boolean } {
  if (typeof content === "string") return { text: content, toolResult: false };
  if (!Array.isArray(content)) return { text: "", toolResult: false };
  const parts: string[] = [];
  let toolResult = false;
  for (const block of content as Json[]) {
    if (block.type === "text" && typeof block.text === "string") parts.push(block.text);
    if (block.type === "tool_result") {
      toolResult = true;
      parts.push(textOf(block.content).text);
    }
  }
  return { text: parts.join(" "), toolResult };
}

/** The conversation's turns as plain text, from either protocol's message shapes. */
export function turnsOf(body: Json): Turn[] {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  return messages.map((m) => {
    const { text, toolResult } = textOf(m.content);
    return { role: String(m.role), text, toolResult: toolResult || m.role === "tool" };
  });
}

function toolNames(proto: Protocol, body: Json): string[] {
  if (!Array.isArray(body.tools)) return [];
  const choice = body.tool_choice as Json | string | undefined;
  if (choice === "none" || (typeof choice === "object" && choice?.type === "none")) return [];
  return (body.tools as Json[]).map((t) => String(proto === "openai" ? (t.function as Json)?.name : t.name));
}

const ORDER = /\border\s*#?\s*(\d{1,12})\b/i;
const LONG = /\[\[words:(\d{1,5})\]\]/;

/**
 * Which tool the model calls, if any, and with what arguments. A user message naming an offered
 * tool calls it with {"query": <message>}; one asking about "order <digits>" calls the offered tool
 * whose name contains "order" with {"order_id": "<digits>"}. Markers in the latest user message
 * stage the tool loop's faults: `[[call:<name>]]` calls that tool (offered or not), `[[args:<text>]]`
 * sends <text> verbatim as the arguments, `[[again]]` calls a tool again after every tool result.
 */
function toolCallOf(
  proto: Protocol,
  body: Json,
  turns: Turn[],
  said: string,
): { tool?: string; args: string } {
  const offered = toolNames(proto, body);
  const last = turns[turns.length - 1];
  const user = [...turns].reverse().find((t) => t.role === "user" && !t.toolResult)?.text ?? "";
  const forced = /\[\[call:([^\]]+)\]\]/.exec(user)?.[1];
  const raw = /\[\[args:([^\]]*)\]\]/.exec(user)?.[1];
  if (!last || offered.length === 0) return { args: "" };
  if (last.toolResult && !user.includes("[[again]]")) return { args: "" };
  const question = last.toolResult ? user.replace(MARKERS, "").trim() : said;
  const named = offered.find((n) => question.includes(n));
  const order = ORDER.exec(question);
  const tool = forced ?? named ?? (order ? offered.find((n) => /order/i.test(n)) : undefined);
  if (!tool) return { args: "" };
  const args = raw ?? JSON.stringify(!named && order ? { order_id: order[1] } : { query: question });
  return { tool, args };
}

/**
 * What to answer, derived from the request alone: a tool call when the last user message names a
 * request tool; the tenant's exact "I don't know" sentence when the system text asks for it
 * (src/knowledge) without references and the message is a question ("?") no tool answers; else
 * an echo. Usage counts
 * words so tests can predict it.
 */
export function plan(proto: Protocol, body: Json, reqNo: number): Plan {
  const turns = turnsOf(body);
  const system = proto === "anthropic" ? textOf(body.system).text : "";
  const input = words(system) + turns.reduce((n, t) => n + words(t.text), 0);
  const last = turns[turns.length - 1];
  const said = (last?.text ?? "").replace(MARKERS, "").trim();
  const usage = !(last?.text ?? "").includes("[[nousage]]");
  const max = Number(body.max_completion_tokens ?? body.max_tokens ?? Number.POSITIVE_INFINITY);
  const { tool, args } = toolCallOf(proto, body, turns, said);
  if (tool) {
    const third = Math.ceil(args.length / 3);
    const fragments = [args.slice(0, third), args.slice(third, 2 * third), args.slice(2 * third)];
    // Claude usually says something before it calls a tool; OpenAI models usually do not.
    const lead = proto === "anthropic" ? pieces(`Let me use ${tool}.`) : [];
    // `[[noids]]`: a tool call without an id, as some OpenAI-compatible servers send them.
    const noIds = (last?.text ?? "").includes("[[noids]]");
    const id = noIds ? "" : proto === "openai" ? `call_fake_${reqNo}` : `toolu_fake_${reqNo}`;
    return {
      pieces: lead,
      tool: { id, name: tool, args, fragments },
      finish: "tool",
      input,
      output: lead.length + 4,
      usage,
    };
  }
  const systemText =
    proto === "anthropic"
      ? system
      : turns
          .filter((t) => t.role === "system" || t.role === "developer")
          .map((t) => t.text)
          .join("\n");
  // With references it echoes as ever (it does not answer from them); without, a question gets the
  // tenant's sentence the knowledge block asks for.
  const unknown =
    last?.toolResult || !said.endsWith("?") || firstReference(systemText)
      ? undefined
      : unknownAnswerOf(systemText);
  const reply =
    unknown ?? (last?.toolResult ? `Tool result received: ${said}` : `Fake ${proto} reply: ${said}`);
  let out = pieces(reply);
  // `[[words:<n>]]` pads the reply to n words ("word", one chunk each): a long stream from a short
  // question (bench/chat.ts streams 500).
  const long = LONG.exec(last?.text ?? "");
  if (long) while (out.length < Number(long[1])) out.push(" word");
  const cut = out.length > max;
  if (cut) out = out.slice(0, max);
  return { pieces: out, finish: cut ? "length" : "stop", input, output: out.length, usage };
}

/** The SSE body of a streamed completion, chunk by chunk, ending in [DONE]. */
export function openAiEvents(p: Plan, model: string, id: string, withUsage: boolean): string[] {
  const chunk = (choices: unknown[], usage: unknown = null) =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created: CREATED,
      model,
      system_fingerprint: "fp_fake",
      choices,
      ...(withUsage ? { usage } : {}),
    })}\n\n`;
  const choice = (delta: Json, finish: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finish,
  });
  const out = [chunk([choice({ role: "assistant", content: p.tool ? null : "", refusal: null })])];
  for (const piece of p.pieces) out.push(chunk([choice({ content: piece })]));
  if (p.tool) {
    const t = p.tool;
    out.push(
      chunk([
        choice({
          tool_calls: [
            t.id
              ? { index: 0, id: t.id, type: "function", function: { name: t.name, arguments: "" } }
              : { index: 0, function: { name: t.name, arguments: "" } },
          ],
        }),
      ]),
    );
    for (const f of t.fragments)
      out.push(chunk([choice({ tool_calls: [{ index: 0, function: { arguments: f } }] })]));
  }
  out.push(chunk([choice({}, p.finish === "tool" ? "tool_calls" : p.finish)]));
  if (withUsage && p.usage) out.push(chunk([], openAiUsage(p)));
  out.push("data: [DONE]\n\n");
  return out;
}

function openAiUsage(p: Plan) {
  return {
    prompt_tokens: p.input,
    completion_tokens: p.output,
    total_tokens: p.input + p.output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A non-streamed chat.completion. */
export function openAiCompletion(p: Plan, model: string, id: string): Json {
  const t = p.tool;
  const message = {
    role: "assistant",
    content: t ? null : p.pieces.join(""),
    refusal: null,
    annotations: [],
    ...(t
      ? {
          tool_calls: [
            {
              ...(t.id ? { id: t.id } : {}),
              type: "function",
              function: { name: t.name, arguments: t.args },
            },
          ],
        }
      : {}),
  };
  const finish = p.finish === "tool" ? "tool_calls" : p.finish;
  return {
    id,
    object: "chat.completion",
    created: CREATED,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage: openAiUsage(p),
    service_tier: "default",
    system_fingerprint: "fp_fake",
  };
}

const stopReason = (p: Plan) =>
  p.finish === "tool" ? "tool_use" : p.finish === "length" ? "max_tokens" : "end_turn";

/** The SSE body of a streamed message: message_start ... message_stop, with a ping. */
export function anthropicEvents(p: Plan, model: string, id: string): string[] {
  const ev = (type: string, data: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const usage = {
    input_tokens: p.input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: 1,
  };
  const message = {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage,
  };
  const out = [
    ev("message_start", { message }),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
  ];
  out.push(ev("ping", {}));
  for (const text of p.pieces)
    out.push(ev("content_block_delta", { index: 0, delta: { type: "text_delta", text } }));
  out.push(ev("content_block_stop", { index: 0 }));
  if (p.tool) {
    const t = p.tool;
    out.push(
      ev("content_block_start", {
        index: 1,
        content_block: { type: "tool_use", id: t.id, name: t.name, input: {} },
      }),
    );
    for (const partial_json of t.fragments) {
      out.push(ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json } }));
    }
    out.push(ev("content_block_stop", { index: 1 }));
  }
  out.push(
    ev("message_delta", {
      delta: { stop_reason: stopReason(p), stop_sequence: null },
      usage: { output_tokens: p.output },
    }),
  );
  out.push(ev("message_stop", {}));
  return out;
}

/** A non-streamed message. */
export function anthropicMessage(p: Plan, model: string, id: string): Json {
  const content: Json[] = p.pieces.length > 0 ? [{ type: "text", text: p.pieces.join("") }] : [];
  if (p.tool)
    content.push({ type: "tool_use", id: p.tool.id, name: p.tool.name, input: JSON.parse(p.tool.args) });
  const usage = {
    input_tokens: p.input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: p.output,
  };
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason(p),
    stop_sequence: null,
    usage,
  };
}

/** An error body in the protocol's own shape. */
export function errorBody(proto: Protocol, status: number, message: string): Json {
  if (proto === "openai") {
    const type = status === 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";
    return { error: { message, type, param: null, code: status === 429 ? "rate_limit_exceeded" : null } };
  }
  const type =
    status === 429
      ? "rate_limit_error"
      : status === 529
        ? "overloaded_error"
        : status === 401
          ? "authentication_error"
          : status >= 500
            ? "api_error"
            : "invalid_request_error";
  return { type: "error", error: { type, message } };
}
