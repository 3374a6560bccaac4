import { firstReference, unknownAnswerOf } from "../../knowledge/reference";
import { countTextTokens, estimateRequestTokens, truncateToTokens } from "../tokens";
import { ProviderError } from "./errors";
import { sleep } from "./retry";
import type { CallOptions, ChatRequest, Provider, StreamEvent, ToolCall } from "./types";

export interface MockOptions {
  /** Pause between words, so a demo shows streaming; 0 (the default) never touches a timer. */
  delayMs?: number;
}

export const MOCK_GREETING_REPLY = "Hello! I'm the chatedge mock assistant. How can I help you today?";
export const MOCK_EMPTY_REPLY = "I didn't catch that. Could you say it again?";

const GREETINGS = new Set([
  "hi",
  "hello",
  "hey",
  "hiya",
  "howdy",
  "hi there",
  "hello there",
  "hey there",
  "good morning",
  "good afternoon",
  "good evening",
]);
const PREVIEW_WORDS = 12;
const TRAILING_PUNCTUATION = /[\s!.?,]+$/;
const WHITESPACE = /\s+/;
const ORDER = /\border\s*#?\s*(\d{1,12})\b/i;

function lastOf(req: ChatRequest) {
  return req.messages[req.messages.length - 1];
}

/**
 * The tool the mock calls and its arguments: one the text names ({"query": text}); for "order
 * <digits>", an offered tool whose name has "order" in it ({"order_id": digits}), as a model would
 * look an order up; the first when the caller requires one.
 */
function pickTool(
  req: ChatRequest,
  text: string,
): { name: string; args: Record<string, string> } | undefined {
  const tools = req.tools ?? [];
  const choice = req.toolChoice;
  const query = { query: text.slice(0, 200) };
  if (tools.length === 0 || choice === "none") return undefined;
  if (typeof choice === "object") return { name: choice.name, args: query };
  const lower = text.toLowerCase();
  const named = tools.find((t) => lower.includes(t.name.toLowerCase()));
  if (named) return { name: named.name, args: query };
  const order = ORDER.exec(text);
  const orderTool = order ? tools.find((t) => /order/i.test(t.name)) : undefined;
  if (order && orderTool) return { name: orderTool.name, args: { order_id: order[1] ?? "" } };
  const first = choice === "required" ? tools[0] : undefined;
  return first && { name: first.name, args: query };
}

/**
 * The mock's answer, a pure function of the request: a canned greeting, an echo summary, a tool
 * call, the first knowledge reference cited, or, for a question when the prompt asks for the
 * tenant's "I don't know" sentence and nothing else answers it, that sentence.
 */
export function mockReply(req: ChatRequest): { text: string } | { toolCall: ToolCall } {
  const last = lastOf(req);
  if (last?.role === "tool") {
    const preview = last.content.length > 200 ? `${last.content.slice(0, 200)}...` : last.content;
    return { text: `The tool returned: ${preview}` };
  }
  const said = last?.role === "user" ? last.content.trim() : "";
  const tool = pickTool(req, said);
  if (tool) {
    // Stringified once per reply; the query is the visitor's text so tests can see it pass through.
    return { toolCall: { id: "call_mock_1", name: tool.name, arguments: JSON.stringify(tool.args) } };
  }
  if (said === "") return { text: MOCK_EMPTY_REPLY };
  if (GREETINGS.has(said.toLowerCase().replace(TRAILING_PUNCTUATION, "")))
    return { text: MOCK_GREETING_REPLY };
  // Given the tenant's knowledge (src/knowledge), answer with the best reference, cited as a model should.
  const ref = firstReference(req.system);
  if (ref) {
    const excerpt = ref.text.replace(/\s+/g, " ").trim();
    const cut = excerpt.length > 300 ? `${excerpt.slice(0, 300)}...` : excerpt;
    return { text: `${cut} [${ref.id}]` };
  }
  const unknown = unknownAnswerOf(req.system);
  if (unknown !== undefined && said.endsWith("?")) return { text: unknown };
  const words = said.split(WHITESPACE);
  const preview = words.slice(0, PREVIEW_WORDS).join(" ") + (words.length > PREVIEW_WORDS ? " ..." : "");
  const n = words.length;
  return {
    text: `You said ${n} ${n === 1 ? "word" : "words"}: "${preview}". This is a deterministic reply from the mock model.`,
  };
}

/** Splits a reply into word pieces that keep their leading space, as real token streams do. */
export function wordPieces(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = text.indexOf(" ", 1); i !== -1; i = text.indexOf(" ", i + 1)) {
    if (i > start) out.push(text.slice(start, i));
    start = i;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

/** The built-in provider: deterministic, streaming, usage from the token estimate, no network. */
export function createMockProvider(opts: MockOptions = {}): Provider {
  const delayMs = opts.delayMs ?? 0;
  return {
    name: "mock",
    async *stream(req: ChatRequest, call: CallOptions): AsyncGenerator<StreamEvent> {
      const aborted = () =>
        new ProviderError({
          provider: "mock",
          model: req.model,
          kind: "aborted",
          retryable: false,
          message: "request aborted",
        });
      if (call.signal.aborted) throw aborted();
      const inputTokens = req.inputTokens ?? estimateRequestTokens(req);
      const reply = mockReply(req);
      if ("toolCall" in reply) {
        const { id, name, arguments: args } = reply.toolCall;
        yield { type: "tool_call", index: 0, id, name, argumentsDelta: args };
        const outputTokens = countTextTokens(name) + countTextTokens(args);
        yield { type: "usage", inputTokens, outputTokens, estimated: false };
        yield { type: "done", finishReason: "tool_calls" };
        return;
      }
      const { text, tokens, cut } = truncateToTokens(reply.text, req.maxTokens);
      const pieces = req.stream === false ? [text] : wordPieces(text);
      for (let i = 0; i < pieces.length; i++) {
        if (delayMs > 0 && i > 0) {
          try {
            await sleep(delayMs, call.signal);
          } catch {
            throw aborted();
          }
        }
        if (call.signal.aborted) throw aborted();
        yield { type: "text", delta: pieces[i] ?? "" };
      }
      yield { type: "usage", inputTokens, outputTokens: tokens, estimated: false };
      yield { type: "done", finishReason: cut ? "length" : "stop" };
    },
  };
}
