/** What went wrong with a provider call, coarsely: decides retries and what gets recorded. */
export type ProviderErrorKind = "http" | "timeout" | "network" | "protocol" | "aborted" | "config";

export interface ProviderErrorInit {
  provider: string;
  model: string;
  kind: ProviderErrorKind;
  message: string;
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
}

/** The one error a provider call ends with; its message is safe to log (keys are redacted). */
export class ProviderError extends Error {
  readonly provider: string;
  readonly model: string;
  readonly kind: ProviderErrorKind;
  readonly retryable: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(init: ProviderErrorInit) {
    super(init.message);
    this.name = "ProviderError";
    this.provider = init.provider;
    this.model = init.model;
    this.kind = init.kind;
    this.retryable = init.retryable;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** A plain object for logs and analytics events. */
  toJSON() {
    return {
      provider: this.provider,
      model: this.model,
      kind: this.kind,
      status: this.status,
      retryable: this.retryable,
      retryAfterMs: this.retryAfterMs,
      message: this.message,
    };
  }
}

/** Which upstream statuses are worth another attempt: throttling, timeouts and server faults. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

// Key-shaped tokens (OpenAI sk-..., Anthropic sk-ant-..., bearer strings) that upstream error
// messages sometimes echo back, masked or not.
const KEY_LIKE = /\b(sk|pk|rk|gsk|key)[-_][A-Za-z0-9_*.-]{6,}/g;

/** Removes the key itself and anything key-shaped from a message, and bounds its length. */
export function redact(message: string, secret?: string): string {
  let out = message.length > 300 ? `${message.slice(0, 300)}...` : message;
  if (secret && secret.length >= 4) out = out.split(secret).join("[redacted]");
  return out.replace(KEY_LIKE, "[redacted]");
}

/** Wraps whatever a call threw into a ProviderError, telling an abort from a network failure. */
export function toProviderError(err: unknown, provider: string, model: string, signal?: AbortSignal) {
  if (err instanceof ProviderError) return err;
  if (signal?.aborted) {
    return new ProviderError({
      provider,
      model,
      kind: "aborted",
      retryable: false,
      message: "request aborted",
    });
  }
  const text = err instanceof Error ? err.message : String(err);
  return new ProviderError({
    provider,
    model,
    kind: "network",
    retryable: true,
    message: `${provider}: network error: ${redact(text)}`,
  });
}
