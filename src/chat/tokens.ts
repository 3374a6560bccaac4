// Imported per encoding so the worker bundle carries one rank table (o200k_base, GPT-4o's), not all.
import { countTokens, decode, encode } from "gpt-tokenizer/encoding/o200k_base";
import type { ChatMessage, ChatRequest, ToolDefinition } from "./providers/types";

// Visitor text that happens to contain "<|endoftext|>" is text: by default the tokenizer throws on it.
const PLAIN = { disallowedSpecial: new Set<string>() };

// OpenAI's chat format wraps each message as <|im_start|>{role}<|im_sep|>{content}<|im_end|>:
// three framing tokens plus one for the role; every reply is primed with three more.
const PER_MESSAGE = 4;
const REPLY_PRIMING = 3;
// Each tool call and tool definition carries framing (type, name and argument keys) of about this size.
const PER_TOOL_CALL = 4;
const PER_TOOL_DEFINITION = 8;

/** Tokens in a piece of text under o200k_base. */
export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text, PLAIN);
}

/** The first `max` tokens of a text, and whether it had to be cut. */
export function truncateToTokens(text: string, max: number): { text: string; tokens: number; cut: boolean } {
  const tokens = encode(text, PLAIN);
  if (tokens.length <= max) return { text, tokens: tokens.length, cut: false };
  return { text: decode(tokens.slice(0, max)), tokens: max, cut: true };
}

function messageTokens(m: ChatMessage): number {
  let n = PER_MESSAGE + countTextTokens(m.content);
  if (m.role === "assistant" && m.toolCalls) {
    for (const call of m.toolCalls) {
      n += PER_TOOL_CALL + countTextTokens(call.name) + countTextTokens(call.arguments);
    }
  }
  if (m.role === "tool") n += countTextTokens(m.toolCallId);
  return n;
}

function toolTokens(tools: readonly ToolDefinition[]): number {
  let n = 0;
  for (const t of tools) {
    // Stringified once per request, not per chunk: schemas are small and this is an estimate.
    n += PER_TOOL_DEFINITION + countTextTokens(t.name) + countTextTokens(t.description ?? "");
    n += countTextTokens(JSON.stringify(t.parameters));
  }
  return n;
}

/** Estimated input tokens of a message list, counted the way OpenAI's chat format counts them. */
export function estimateTokens(
  messages: readonly ChatMessage[],
  opts: { system?: string; tools?: readonly ToolDefinition[] } = {},
): number {
  let n = REPLY_PRIMING;
  if (opts.system) n += PER_MESSAGE + countTextTokens(opts.system);
  for (const m of messages) n += messageTokens(m);
  if (opts.tools) n += toolTokens(opts.tools);
  return n;
}

/** Estimated input tokens of a whole request: system prompt, history and tool definitions. */
export function estimateRequestTokens(req: Pick<ChatRequest, "system" | "messages" | "tools">): number {
  return estimateTokens(req.messages, { system: req.system, tools: req.tools });
}
