import { env } from "cloudflare:workers";
import type { ProviderEnv } from "../../../src/chat/providers/registry";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../../src/chat/providers/retry";

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
