import type { ProviderError } from "./errors";

/** A tool call the model made; `arguments` is the JSON text exactly as the model wrote it. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One message of the conversation in the internal, provider-neutral shape. */
export type ChatMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: readonly ToolCall[] }
  | { role: "tool"; toolCallId: string; content: string };

/** A tool the model may call; `parameters` is a JSON Schema object. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** One call to one upstream model. The route resolves the model and clamps maxTokens first. */
export interface ChatRequest {
  /** The upstream model id (the registry maps public names like "claude-haiku" to it). */
  model: string;
  /** The tenant's system prompt; each provider puts it where its protocol wants it. */
  system?: string;
  messages: readonly ChatMessage[];
  maxTokens: number;
  temperature?: number;
  stop?: readonly string[];
  tools?: readonly ToolDefinition[];
  toolChoice?: ToolChoice;
  /** false asks the upstream for one JSON answer instead of SSE; the events are the same. */
  stream?: boolean;
  /** The route's own input estimate, reused when an upstream reports no usage. */
  inputTokens?: number;
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

/** Token counts of one call; `estimated` when the upstream did not report them. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
}

/**
 * What one provider attempt yields: output deltas, then exactly one usage and one done event.
 * Tool-call deltas for one call share an index; id and name come with its first delta.
 */
export type StreamEvent =
  | { type: "text"; delta: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; argumentsDelta: string }
  | ({ type: "usage" } & Usage)
  | { type: "done"; finishReason: FinishReason };

/** Emitted before waiting to retry the same model (never once output has started). */
export interface RetryEvent {
  type: "retry";
  model: string;
  provider: string;
  attempt: number;
  delayMs: number;
  error: ProviderError;
}

/**
 * What a chain run yields to the route. It never throws: it ends with one `done` or one `error`.
 * After output has started a failure still ends with an estimated `usage`, then `error`.
 */
export type ChatEvent =
  | Exclude<StreamEvent, { type: "done" }>
  | { type: "done"; finishReason: FinishReason; model: string; provider: string }
  | RetryEvent
  | { type: "fallback"; from: string; to: string; error: ProviderError }
  | { type: "error"; error: ProviderError; model: string; afterOutput: boolean };

export interface CallOptions {
  /** Aborts the upstream call: client gone, timeout, or the chain moving on. */
  signal: AbortSignal;
}

/** One upstream protocol. A call throws ProviderError on failure, never anything else. */
export interface Provider {
  /** "openai", "anthropic", "workers-ai", "mock", or the configured name of an OpenAI-compatible API. */
  readonly name: string;
  stream(req: ChatRequest, opts: CallOptions): AsyncIterable<StreamEvent>;
}
