import { ProviderError, redact } from "./errors";
import { bodyOf, type Caller, cutError, parseJson, postJson } from "./http";
import { SseReader } from "./sse";
import type { CallOptions, ChatRequest, FinishReason, Provider, StreamEvent, Usage } from "./types";
import { closing, OutputTally, openAiFinish } from "./usage";

/** An OpenAI Chat Completions endpoint: OpenAI itself or any compatible server (Groq, Together, Ollama, vLLM). */
export interface OpenAiConfig {
  /** "openai", or the configured name of a compatible API. */
  name: string;
  /** Up to and including the version, e.g. https://api.openai.com/v1 or http://localhost:11434/v1. */
  baseUrl: string;
  /** Optional: local servers such as Ollama take none. */
  apiKey?: string;
  /** OpenAI wants max_completion_tokens; compatible servers mostly still only know max_tokens. */
  flavor: "openai" | "compatible";
}

interface WireToolCall {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

/** One chat.completion.chunk, as far as we read it. */
export interface WireChunk {
  choices?: Array<{
    delta?: { content?: string | null; tool_calls?: WireToolCall[] | null };
    finish_reason?: string | null;
  }>;
  usage?: WireUsage | null;
  error?: { message?: string; type?: string };
}

interface WireCompletion {
  choices?: Array<{
    message?: { content?: string | null; tool_calls?: WireToolCall[] | null };
    finish_reason?: string | null;
  }>;
  usage?: WireUsage | null;
}

/** The conversation as OpenAI-style messages; Workers AI takes the same shape. */
export function openAiMessages(req: ChatRequest): unknown[] {
  const messages: unknown[] = [];
  if (req.system) messages.push({ role: "system", content: req.system });
  for (const m of req.messages) {
    if (m.role === "tool") messages.push({ role: "tool", tool_call_id: m.toolCallId, content: m.content });
    else if (m.role === "assistant" && m.toolCalls && m.toolCalls.length > 0) {
      const calls = m.toolCalls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      }));
      messages.push({ role: "assistant", content: m.content || null, tool_calls: calls });
    } else messages.push({ role: m.role, content: m.content });
  }
  return messages;
}

/** Tool definitions as OpenAI-style functions. */
export function openAiTools(req: ChatRequest): unknown[] | undefined {
  return req.tools?.map((t) => ({
    type: "function",
    function: { name: t.name, description: t.description, parameters: t.parameters },
  }));
}

/** The request body of POST /chat/completions. */
export function openAiBody(req: ChatRequest, flavor: OpenAiConfig["flavor"]): Record<string, unknown> {
  const stream = req.stream !== false;
  const choice = req.toolChoice;
  return {
    model: req.model,
    messages: openAiMessages(req),
    [flavor === "openai" ? "max_completion_tokens" : "max_tokens"]: req.maxTokens,
    stream,
    stream_options: stream ? { include_usage: true } : undefined,
    temperature: req.temperature,
    stop: req.stop && req.stop.length > 0 ? req.stop : undefined,
    tools: openAiTools(req),
    tool_choice:
      choice === undefined || typeof choice === "string"
        ? choice
        : { type: "function", function: { name: choice.name } },
  };
}

function wireUsage(u: WireUsage | null | undefined): Usage | undefined {
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return undefined;
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens, estimated: false };
}

/**
 * Turns chat.completion.chunk objects into events; shared with Workers AI models that answer in
 * the OpenAI shape. Remembers the finish reason and usage, which arrive in separate, late chunks.
 */
export class OpenAiChunkReader {
  finish: FinishReason | undefined;
  usage: Usage | undefined;

  constructor(private readonly caller: Caller) {}

  /** Events for one chunk, in order. */
  read(chunk: WireChunk): StreamEvent[] {
    if (chunk.error) {
      // OpenAI reports failures after the headers went out as an error object inside the stream.
      throw new ProviderError({
        provider: this.caller.provider,
        model: this.caller.model,
        kind: "http",
        retryable: true,
        message: `${this.caller.provider} stream error: ${redact(chunk.error.message ?? chunk.error.type ?? "unknown", this.caller.secret)}`,
      });
    }
    const out: StreamEvent[] = [];
    const choice = chunk.choices?.[0];
    if (choice) {
      const delta = choice.delta;
      if (delta?.content) out.push({ type: "text", delta: delta.content });
      if (delta?.tool_calls) for (const c of delta.tool_calls) out.push(toolDelta(c));
      if (choice.finish_reason) this.finish = openAiFinish(choice.finish_reason);
    }
    const usage = wireUsage(chunk.usage);
    if (usage) this.usage = usage;
    return out;
  }
}

function toolDelta(c: WireToolCall): StreamEvent {
  const ev: StreamEvent = {
    type: "tool_call",
    index: c.index ?? 0,
    argumentsDelta: c.function?.arguments ?? "",
  };
  if (c.id) ev.id = c.id;
  if (c.function?.name) ev.name = c.function.name;
  return ev;
}

/**
 * A streamed answer: posts, then reads the SSE body in this one generator (a generator per call,
 * none per event between the network and the caller).
 */
async function* readStream(
  caller: Caller,
  req: ChatRequest,
  post: () => Promise<Response>,
): AsyncGenerator<StreamEvent> {
  const res = await post();
  const reader = new OpenAiChunkReader(caller);
  const tally = new OutputTally();
  const sse = new SseReader(bodyOf(caller, res));
  let sawDone = false;
  try {
    read: for (let events = await sse.read(); events; events = await sse.read()) {
      for (const e of events) {
        if (e.data === "[DONE]") {
          sawDone = true;
          break read;
        }
        for (const ev of reader.read(parseJson<WireChunk>(caller, e.data))) yield tally.see(ev);
      }
    }
  } finally {
    sse.release();
  }
  // Some compatible servers skip [DONE]; a finish reason is proof enough that the reply is whole.
  if (!sawDone && reader.finish === undefined) throw cutError(caller);
  yield* closing(reader.usage ?? tally.estimate(req), reader.finish ?? "stop");
}

async function* readCompletion(
  caller: Caller,
  req: ChatRequest,
  post: () => Promise<Response>,
): AsyncGenerator<StreamEvent> {
  const res = await post();
  const body = parseJson<WireCompletion>(caller, await res.text());
  const choice = body.choices?.[0];
  const tally = new OutputTally();
  if (choice?.message?.content) yield tally.see({ type: "text", delta: choice.message.content });
  const calls = choice?.message?.tool_calls ?? [];
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    if (call) yield tally.see(toolDelta({ ...call, index: i }));
  }
  yield* closing(wireUsage(body.usage) ?? tally.estimate(req), openAiFinish(choice?.finish_reason));
}

/** A provider speaking OpenAI Chat Completions, streaming or not. */
export function createOpenAiProvider(cfg: OpenAiConfig): Provider {
  const url = `${cfg.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const headers: Record<string, string> = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
  const streamHeaders = { ...headers, accept: "text/event-stream" };
  return {
    name: cfg.name,
    // The call is the reader's generator itself, posting when first read (as a generator would).
    stream(req: ChatRequest, opts: CallOptions) {
      const caller: Caller = { provider: cfg.name, model: req.model, secret: cfg.apiKey };
      const streaming = req.stream !== false;
      const post = () =>
        postJson(caller, url, streaming ? streamHeaders : headers, openAiBody(req, cfg.flavor), opts.signal);
      return streaming ? readStream(caller, req, post) : readCompletion(caller, req, post);
    },
  };
}
