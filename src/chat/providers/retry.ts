import { ProviderError, toProviderError } from "./errors";
import type { ChatRequest, Provider, RetryEvent, StreamEvent } from "./types";

/** How hard to try one model before giving up on it. */
export interface RetryPolicy {
  /** Attempts after the first one. */
  maxRetries: number;
  /** Longest silence allowed: until the first event, then between events. */
  timeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A longer retry-after is not waited out: the model fails at once so the chain can move on. */
  maxRetryAfterMs: number;
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 2,
  timeoutMs: 30_000,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  maxRetryAfterMs: 10_000,
  random: Math.random,
};

/** The policy configured by PROVIDER_TIMEOUT_MS and PROVIDER_MAX_RETRIES. */
export function policyFromEnv(
  env: { PROVIDER_TIMEOUT_MS: number; PROVIDER_MAX_RETRIES: number },
  overrides: Partial<RetryPolicy> = {},
): RetryPolicy {
  return {
    ...DEFAULT_RETRY_POLICY,
    timeoutMs: env.PROVIDER_TIMEOUT_MS,
    maxRetries: env.PROVIDER_MAX_RETRIES,
    ...overrides,
  };
}

const SECONDS = /^\d+(\.\d+)?$/;
const HAS_LETTER = /[a-z]/i;

/** Milliseconds the server asked us to wait: retry-after-ms, or retry-after in seconds or as an HTTP date. */
export function parseRetryAfter(headers: Headers, now = Date.now()): number | undefined {
  // OpenAI sends this finer-grained header next to retry-after.
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (SECONDS.test(value)) return Math.ceil(Number(value) * 1000);
  // An HTTP date always names its month; this keeps Date.parse's lenience away from "-3" and such.
  if (!HAS_LETTER.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before retry number `attempt + 1`: the server's retry-after, else capped exponential backoff. */
export function retryDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  // Half fixed, half random: clients hit by the same outage spread out, yet each still backs off.
  return Math.round(ceiling / 2 + (ceiling / 2) * policy.random());
}

/** Resolves after `ms`, or rejects at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * One timer per attempt, re-armed lazily: a wait only stamps its start, so a fast stream pays no
 * timer churn per event. Only time spent waiting on the upstream counts, never time the consumer
 * takes (a slow visitor must not time out a healthy provider).
 */
class Watchdog {
  private since = 0;
  private waiting: ((reason: unknown) => void) | undefined;
  private failure: { reason: unknown } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ms: number,
    private readonly parent: AbortSignal,
    /** Aborts the upstream call, with the caller's reason or the timeout's error. */
    private readonly abort: (reason: unknown) => void,
    private readonly timeoutError: () => unknown,
  ) {
    this.arm(ms);
    parent.addEventListener("abort", this.onAbort, { once: true });
  }

  /** Settles like `p`, unless the upstream stays silent too long or the caller aborts first. */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.failure) {
      p.catch(() => {});
      return Promise.reject(this.failure.reason);
    }
    this.since = Date.now();
    return new Promise<T>((resolve, reject) => {
      this.waiting = reject;
      p.then(
        (v) => {
          this.waiting = undefined;
          resolve(v);
        },
        (e: unknown) => {
          this.waiting = undefined;
          reject(e);
        },
      );
    });
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.parent.removeEventListener("abort", this.onAbort);
  }

  private fail(reason: unknown): void {
    this.stop();
    this.failure = { reason };
    this.waiting?.(reason);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const idle = Date.now() - this.since;
      if (!this.waiting) this.arm(this.ms);
      else if (idle < this.ms) this.arm(this.ms - idle);
      else {
        const err = this.timeoutError();
        this.abort(err);
        this.fail(err);
      }
    }, ms);
  }

  private onAbort = () => {
    this.fail(this.parent.reason);
    this.abort(this.parent.reason);
  };
}

/**
 * Runs a request against one provider: retries with backoff on retryable failures (429, 5xx,
 * timeouts, dropped connections) honouring retry-after, but never once an event has been yielded,
 * since the visitor has already seen that output. Each attempt runs under a watchdog, and leaving
 * early or timing out aborts its upstream call. The attempts run in this one generator: every
 * event of a long stream passes through it, and a generator per attempt would be one more hop each.
 */
export async function* streamWithRetries(
  provider: Provider,
  req: ChatRequest,
  policy: RetryPolicy,
  signal: AbortSignal,
): AsyncGenerator<StreamEvent | RetryEvent, void, undefined> {
  const timeoutError = () =>
    new ProviderError({
      provider: provider.name,
      model: req.model,
      kind: "timeout",
      retryable: true,
      message: `${provider.name} sent nothing for ${policy.timeoutMs} ms`,
    });
  for (let n = 0; ; n++) {
    let started = false;
    try {
      // An abort listener added now would never fire: a client already gone gets no upstream call.
      if (signal.aborted) throw toProviderError(signal.reason, provider.name, req.model, signal);
      const ctl = new AbortController();
      // The caller's abort reaches the upstream call through the watchdog's own listener.
      const dog = new Watchdog(policy.timeoutMs, signal, (reason) => ctl.abort(reason), timeoutError);
      const it = provider.stream(req, { signal: ctl.signal })[Symbol.asyncIterator]();
      let complete = false;
      try {
        for (;;) {
          const r = await dog.guard(it.next());
          if (r.done) {
            complete = true;
            break;
          }
          started = true;
          yield r.value;
        }
      } catch (err) {
        throw toProviderError(err, provider.name, req.model, signal);
      } finally {
        dog.stop();
        if (!complete) {
          ctl.abort(new Error("attempt abandoned"));
          // Not awaited: a provider stuck in an await finishes its cleanup once the abort reaches it.
          it.return?.().catch(() => {});
        }
      }
      return;
    } catch (e) {
      const err = toProviderError(e, provider.name, req.model, signal);
      if (started || !err.retryable || n >= policy.maxRetries || signal.aborted) throw err;
      if (err.retryAfterMs !== undefined && err.retryAfterMs > policy.maxRetryAfterMs) throw err;
      const delayMs = retryDelay(n, policy, err.retryAfterMs);
      yield { type: "retry", model: req.model, provider: provider.name, attempt: n + 1, delayMs, error: err };
      try {
        await sleep(delayMs, signal);
      } catch (abort) {
        throw toProviderError(abort, provider.name, req.model, signal);
      }
    }
  }
}
