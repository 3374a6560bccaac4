import { env } from "cloudflare:workers";
import type { ProviderError } from "../../../src/chat/providers/errors";
import type { ProviderEnv } from "../../../src/chat/providers/registry";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../../src/chat/providers/retry";
import type { ChatEvent, FinishReason, ToolCall, Usage } from "../../../src/chat/providers/types";

/** The fake LLM server started by global setup (local/fake-llm.ts). */
export const FAKE = env.FAKE_LLM_URL;

let seq = 0;
/** An API key no other test uses: the fake counts requests and queues faults per key. */
export function uniqueKey(stem = "sk-test"): string {
  seq += 1;
  return `${stem}-${Date.now().toString(36)}-${seq}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** How many requests the fake saw on `path` with this key. */
export async function attempts(key: string, path = "/v1/chat/completions"): Promise<number> {
  const res = await fetch(`${FAKE}/__stats?key=${encodeURIComponent(key)}`);
  return ((await res.json()) as { requests: Record<string, number> }).requests[path] ?? 0;
}

/** Queues faults for the next requests carrying this key, one per request. */
export async function queueFaults(key: string, faults: string[]): Promise<void> {
  const res = await fetch(`${FAKE}/__control`, { method: "POST", body: JSON.stringify({ key, faults }) });
  if (res.status !== 200) throw new Error(`queueFaults: ${res.status}`);
}

/** The request bodies the fake recorded for this key, oldest first. */
export async function recorded(
  key: string,
): Promise<Array<{ body: Record<string, unknown>; headers: Record<string, string> }>> {
  const res = await fetch(`${FAKE}/__requests?key=${encodeURIComponent(key)}`);
  return (
    (await res.json()) as {
      requests: Array<{ body: Record<string, unknown>; headers: Record<string, string> }>;
    }
  ).requests;
}

/** Runs an async iterable to its end and keeps every item; a throw is returned as `error`. */
export async function drain<T>(it: AsyncIterable<T>): Promise<{ events: T[]; error?: unknown }> {
  const events: T[] = [];
  try {
    for await (const ev of it) events.push(ev);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

/** The text assembled from text events. */
export const textOf = (events: ReadonlyArray<{ type: string; delta?: string }>) =>
  events
    .filter((e) => e.type === "text")
    .map((e) => e.delta)
    .join("");

/** A retry policy with short, deterministic waits. */
export function fastPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    ...DEFAULT_RETRY_POLICY,
    baseDelayMs: 20,
    maxDelayMs: 40,
    timeoutMs: 3_000,
    random: () => 0,
    ...overrides,
  };
}

/** A provider environment pointing every HTTP provider at the fake. */
export function fakeEnv(overrides: Partial<ProviderEnv> & Record<string, unknown> = {}): ProviderEnv {
  return {
    OPENAI_BASE_URL: `${FAKE}/v1`,
    ANTHROPIC_BASE_URL: FAKE,
    OPENAI_COMPAT_PROVIDERS: {},
    ...overrides,
  };
}

export const never = () => new AbortController().signal;

/** A whole run, gathered (the tests' view of a run). */
export interface ChatResult {
  text: string;
  toolCalls: ToolCall[];
  usage?: Usage;
  finishReason?: FinishReason;
  /** The model that answered (or failed last) and its provider. */
  model?: string;
  provider?: string;
  error?: ProviderError;
  retries: number;
  fallbacks: number;
}

/** Drains a run into one result, assembling tool-call deltas by index. */
export async function collect(events: AsyncIterable<ChatEvent>): Promise<ChatResult> {
  const text: string[] = [];
  const calls: ToolCall[] = [];
  const result: ChatResult = { text: "", toolCalls: calls, retries: 0, fallbacks: 0 };
  for await (const ev of events) {
    switch (ev.type) {
      case "text":
        text.push(ev.delta);
        break;
      case "tool_call": {
        const call = calls[ev.index] ?? { id: "", name: "", arguments: "" };
        calls[ev.index] = call;
        if (ev.id) call.id = ev.id;
        if (ev.name) call.name = ev.name;
        call.arguments += ev.argumentsDelta;
        break;
      }
      case "usage":
        result.usage = {
          inputTokens: ev.inputTokens,
          outputTokens: ev.outputTokens,
          estimated: ev.estimated,
        };
        break;
      case "retry":
        result.retries += 1;
        break;
      case "fallback":
        result.fallbacks += 1;
        break;
      case "done":
        result.finishReason = ev.finishReason;
        result.model = ev.model;
        result.provider = ev.provider;
        break;
      case "error":
        result.error = ev.error;
        result.model = ev.model;
        result.provider = ev.error.provider;
        break;
    }
  }
  result.text = text.join("");
  // Indexes normally count from 0 without gaps; a gap from a sloppy upstream leaves no hole.
  result.toolCalls = calls.filter((c) => c !== undefined);
  return result;
}
