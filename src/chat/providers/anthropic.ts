import { ProviderError, redact } from "./errors";
import { bodyOf, type Caller, cutError, parseJson, postJson } from "./http";
import { parseSse } from "./sse";
import type { CallOptions, ChatRequest, FinishReason, Provider, StreamEvent, Usage } from "./types";
import { closing, OutputTally } from "./usage";

export interface AnthropicConfig {
  /** Without the version path, e.g. https://api.anthropic.com (the SDK's convention). */
  baseUrl: string;
  apiKey: string;
}

const API_VERSION = "2023-06-01";

type Block =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: string };

interface WireMessage {
  role: "user" | "assistant";
  content: Block[];
}

interface WireUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

interface WireEvent {
  type?: string;
  index?: number;
  message?: { usage?: WireUsage };
  content_block?: { type?: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: WireUsage;
  error?: { type?: string; message?: string };
}

interface WireResponse {
  content?: Array<{ type?: string; text?: string; id?: string; name?: string; input?: unknown }>;
  stop_reason?: string | null;
  usage?: WireUsage;
}

function parseInput(args: string): unknown {
  try {
    return JSON.parse(args || "{}");
  } catch {
    // Anthropic wants an object; a model's broken JSON is kept visible rather than dropped.
    return { _raw: args };
  }
}

/** The request body of POST /v1/messages: system lifted out, tool results as user blocks, turns merged. */
export function anthropicBody(req: ChatRequest): Record<string, unknown> {
  const system: string[] = req.system ? [req.system] : [];
  const messages: WireMessage[] = [];
  const push = (role: WireMessage["role"], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = messages[messages.length - 1];
    // The Messages API wants user and assistant turns to alternate; same-role neighbours merge.
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const m of req.messages) {
    if (m.role === "system") system.push(m.content);
    else if (m.role === "user") push("user", m.content ? [{ type: "text", text: m.content }] : []);
    else if (m.role === "tool")
      push("user", [{ type: "tool_result", tool_use_id: m.toolCallId, content: m.content }]);
    else {
      const blocks: Block[] = m.content ? [{ type: "text", text: m.content }] : [];
      for (const c of m.toolCalls ?? []) {
        blocks.push({ type: "tool_use", id: c.id, name: c.name, input: parseInput(c.arguments) });
      }
      push("assistant", blocks);
    }
  }
  const choice = req.toolChoice;
  return {
    model: req.model,
    max_tokens: req.maxTokens,
    system: system.length > 0 ? system.join("\n\n") : undefined,
    messages,
    stream: req.stream !== false,
    // Anthropic's scale is 0..1 where OpenAI's is 0..2.
    temperature: req.temperature === undefined ? undefined : Math.min(1, req.temperature),
    stop_sequences: req.stop && req.stop.length > 0 ? req.stop : undefined,
    tools: req.tools?.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })),
    tool_choice:
      choice === undefined
        ? undefined
        : typeof choice === "object"
          ? { type: "tool", name: choice.name }
          : { type: choice === "required" ? "any" : choice },
  };
}

function finishOf(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case "max_tokens":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      return "stop";
  }
}

// Cached prompt tokens are input too; the budget counts them.
const inputOf = (u: WireUsage) =>
  (u.input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0);

/** An `error` event mid-stream (overloaded, api_error): retryable like the matching HTTP statuses. */
function streamError(caller: Caller, err: WireEvent["error"]): ProviderError {
  const type = err?.type ?? "error";
  const status = type === "overloaded_error" ? 529 : type === "rate_limit_error" ? 429 : undefined;
  return new ProviderError({
    provider: caller.provider,
    model: caller.model,
    kind: "http",
    status,
    retryable: status !== undefined || type === "api_error",
    message: `anthropic stream error ${type}: ${redact(err?.message ?? "", caller.secret)}`,
  });
}

async function* readStream(caller: Caller, req: ChatRequest, res: Response): AsyncGenerator<StreamEvent> {
  const tally = new OutputTally();
  // Content blocks are indexed across text and tool_use; our tool-call indexes count tool_use only.
  const toolIndex = new Map<number, number>();
  let input: number | undefined;
  let output: number | undefined;
  let finish: FinishReason = "stop";
  let stopped = false;
  for await (const sse of parseSse(bodyOf(caller, res))) {
    if (sse.event === "ping") continue;
    const ev = parseJson<WireEvent>(caller, sse.data);
    switch (ev.type) {
      case "message_start": {
        // Its output_tokens is a placeholder; the real count comes with message_delta.
        const u = ev.message?.usage;
        if (u) input = inputOf(u);
        break;
      }
      case "content_block_start": {
        const block = ev.content_block;
        if (block?.type !== "tool_use") break;
        const index = toolIndex.size;
        toolIndex.set(ev.index ?? 0, index);
        yield tally.see({ type: "tool_call", index, id: block.id, name: block.name, argumentsDelta: "" });
        break;
      }
      case "content_block_delta": {
        const d = ev.delta;
        if (d?.type === "text_delta" && d.text) yield tally.see({ type: "text", delta: d.text });
        else if (d?.type === "input_json_delta" && d.partial_json) {
          const index = toolIndex.get(ev.index ?? 0) ?? 0;
          yield tally.see({ type: "tool_call", index, argumentsDelta: d.partial_json });
        }
        break;
      }
      case "message_delta": {
        if (ev.delta?.stop_reason) finish = finishOf(ev.delta.stop_reason);
        // output_tokens here is cumulative; newer API versions repeat the input count too.
        if (ev.usage?.output_tokens !== undefined) output = ev.usage.output_tokens;
        if (ev.usage?.input_tokens !== undefined) input = inputOf(ev.usage);
        break;
      }
      case "message_stop":
        stopped = true;
        break;
      case "error":
        throw streamError(caller, ev.error);
    }
    if (stopped) break;
  }
  if (!stopped) throw cutError(caller);
  const usage: Usage =
    input !== undefined && output !== undefined
      ? { inputTokens: input, outputTokens: output, estimated: false }
      : tally.estimate(req);
  yield* closing(usage, finish);
}

async function* readMessage(caller: Caller, req: ChatRequest, res: Response): AsyncGenerator<StreamEvent> {
  const body = parseJson<WireResponse>(caller, await res.text());
  const tally = new OutputTally();
  let index = 0;
  for (const block of body.content ?? []) {
    if (block.type === "text" && block.text) yield tally.see({ type: "text", delta: block.text });
    else if (block.type === "tool_use") {
      // One stringify per tool call of a whole response: the stream path never re-serializes.
      const args = JSON.stringify(block.input ?? {});
      yield tally.see({
        type: "tool_call",
        index: index++,
        id: block.id,
        name: block.name,
        argumentsDelta: args,
      });
    }
  }
  const u = body.usage;
  const usage: Usage =
    u && u.output_tokens !== undefined
      ? { inputTokens: inputOf(u), outputTokens: u.output_tokens, estimated: false }
      : tally.estimate(req);
  yield* closing(usage, finishOf(body.stop_reason));
}

/** A provider speaking the Anthropic Messages API, streaming or not. */
export function createAnthropicProvider(cfg: AnthropicConfig): Provider {
  const url = `${cfg.baseUrl.replace(/\/+$/, "")}/v1/messages`;
  const headers = { "x-api-key": cfg.apiKey, "anthropic-version": API_VERSION };
  return {
    name: "anthropic",
    async *stream(req: ChatRequest, opts: CallOptions) {
      const caller: Caller = { provider: "anthropic", model: req.model, secret: cfg.apiKey };
      const streaming = req.stream !== false;
      const res = await postJson(
        caller,
        url,
        streaming ? { ...headers, accept: "text/event-stream" } : headers,
        anthropicBody(req),
        opts.signal,
      );
      yield* streaming ? readStream(caller, req, res) : readMessage(caller, req, res);
    },
  };
}
