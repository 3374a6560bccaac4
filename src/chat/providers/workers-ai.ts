import { ProviderError, redact, toProviderError } from "./errors";
import { type Caller, cutError, parseJson } from "./http";
import { OpenAiChunkReader, openAiMessages, openAiTools, type WireChunk } from "./openai";
import { parseSse } from "./sse";
import type { CallOptions, ChatRequest, FinishReason, Provider, StreamEvent, Usage } from "./types";
import { closing, OutputTally } from "./usage";

/**
 * The slice of the Workers AI binding this provider uses. `env.AI` (an `Ai`) has it; tests pass a
 * stand-in, since the real binding only works with a Cloudflare account (`wrangler dev --remote`
 * or a deployed worker).
 */
export interface AiBinding {
  run(model: string, inputs: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<unknown>;
}

interface WireToolCall {
  id?: string;
  name?: string;
  arguments?: unknown;
}

interface WireOutput {
  response?: unknown;
  tool_calls?: WireToolCall[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  choices?: unknown[];
}

/** The inputs of a text-generation model: OpenAI-style messages and tools. */
export function workersAiInputs(req: ChatRequest): Record<string, unknown> {
  return {
    messages: openAiMessages(req),
    max_tokens: req.maxTokens,
    temperature: req.temperature,
    stream: req.stream !== false,
    tools: openAiTools(req),
  };
}

// Workers AI raises plain errors with a code in the text ("3040: Capacity temporarily exceeded");
// these are the transient ones.
const TRANSIENT =
  /capacity|temporar|unavailable|overloaded|timed? ?out|rate limit|too many|\b(3040|3043|3046)\b/i;

function bindingError(caller: Caller, err: unknown, signal: AbortSignal): ProviderError {
  if (signal.aborted || err instanceof ProviderError)
    return toProviderError(err, caller.provider, caller.model, signal);
  const text = redact(err instanceof Error ? err.message : String(err));
  return new ProviderError({
    provider: caller.provider,
    model: caller.model,
    kind: "http",
    retryable: TRANSIENT.test(text),
    message: `workers-ai: ${text}`,
  });
}

function wireUsage(u: WireOutput["usage"]): Usage | undefined {
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return undefined;
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens, estimated: false };
}

/** Workers AI hands tool arguments back as an object; our events carry JSON text. */
function toolEvent(call: WireToolCall, index: number): StreamEvent {
  const args = typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments ?? {});
  // Without an id of its own, the engine gives the call a unique one.
  return { type: "tool_call", index, id: call.id, name: call.name, argumentsDelta: args };
}

/** Workers AI reports no finish reason: tool calls, or a reply that used the whole allowance, tell it. */
function finishOf(req: ChatRequest, usage: Usage | undefined, tools: number): FinishReason {
  if (tools > 0) return "tool_calls";
  return usage && usage.outputTokens >= req.maxTokens ? "length" : "stop";
}

async function* readStream(caller: Caller, req: ChatRequest, body: ReadableStream<Uint8Array>) {
  const tally = new OutputTally();
  const openAiShape = new OpenAiChunkReader(caller);
  let usage: Usage | undefined;
  let tools = 0;
  let sawDone = false;
  for await (const sse of parseSse(body)) {
    if (sse.data === "[DONE]") {
      sawDone = true;
      break;
    }
    const out = parseJson<WireOutput>(caller, sse.data);
    // Newer models (gpt-oss and friends) stream chat.completion.chunk objects instead.
    if (out.choices) {
      for (const ev of openAiShape.read(out as WireChunk)) yield tally.see(ev);
      continue;
    }
    if (typeof out.response === "string" && out.response)
      yield tally.see({ type: "text", delta: out.response });
    for (const call of out.tool_calls ?? []) yield tally.see(toolEvent(call, tools++));
    usage = wireUsage(out.usage) ?? usage;
  }
  if (!sawDone) throw cutError(caller);
  usage = usage ?? openAiShape.usage;
  const finish = openAiShape.finish ?? finishOf(req, usage, tools);
  yield* closing(usage ?? tally.estimate(req), finish);
}

async function* readResult(req: ChatRequest, out: WireOutput) {
  const tally = new OutputTally();
  if (typeof out.response === "string" && out.response)
    yield tally.see({ type: "text", delta: out.response });
  const calls = out.tool_calls ?? [];
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    if (call) yield tally.see(toolEvent(call, i));
  }
  const usage = wireUsage(out.usage);
  yield* closing(usage ?? tally.estimate(req), finishOf(req, usage, calls.length));
}

/** A provider calling Workers AI text-generation models through the AI binding. */
export function createWorkersAiProvider(ai: AiBinding): Provider {
  return {
    name: "workers-ai",
    async *stream(req: ChatRequest, opts: CallOptions): AsyncGenerator<StreamEvent> {
      const caller: Caller = { provider: "workers-ai", model: req.model };
      let out: unknown;
      try {
        out = await ai.run(req.model, workersAiInputs(req), { signal: opts.signal });
      } catch (err) {
        throw bindingError(caller, err, opts.signal);
      }
      try {
        if (out instanceof ReadableStream) yield* readStream(caller, req, out);
        else yield* readResult(req, (out ?? {}) as WireOutput);
      } catch (err) {
        // A failure while reading the stream is the connection's, so it is retryable like one.
        throw toProviderError(err, caller.provider, caller.model, opts.signal);
      }
    },
  };
}
