import { isRetryableStatus, ProviderError, redact, toProviderError } from "./errors";
import { parseRetryAfter } from "./retry";

/** Who is calling, for error messages; `secret` is scrubbed from anything the upstream echoes. */
export interface Caller {
  provider: string;
  model: string;
  secret?: string;
}

/** Pulls the human message out of OpenAI ({error:{message}}) and Anthropic ({type:"error",error:{message}}) bodies. */
function upstreamMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof body.error === "string") return body.error;
    if (body.error && typeof body.error.message === "string") return body.error.message;
    if (typeof body.message === "string") return body.message;
  } catch {
    // Not JSON (a proxy's HTML page, say): the start of the text is the best we have.
  }
  return text.slice(0, 200);
}

/** POSTs JSON upstream; a non-2xx answer or a failed connection becomes a ProviderError. */
export async function postJson(
  caller: Caller,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    throw toProviderError(err, caller.provider, caller.model, signal);
  }
  if (res.ok) return res;
  let text = "";
  try {
    text = await res.text();
  } catch {
    // The body itself failed; the status alone still says enough.
  }
  const status = res.status;
  const detail = redact(upstreamMessage(text), caller.secret);
  throw new ProviderError({
    provider: caller.provider,
    model: caller.model,
    kind: "http",
    status,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(res.headers),
    message: `${caller.provider} answered ${status}${detail ? `: ${detail}` : ""}`,
  });
}

/** Parses one JSON payload of a stream; garbage from upstream is a protocol error, not a crash. */
export function parseJson<T>(caller: Caller, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ProviderError({
      provider: caller.provider,
      model: caller.model,
      kind: "protocol",
      retryable: false,
      message: `${caller.provider} sent malformed JSON: ${redact(text.slice(0, 80), caller.secret)}`,
    });
  }
}

/** The error for a stream that ended before the provider said it was finished. */
export function cutError(caller: Caller): ProviderError {
  return new ProviderError({
    provider: caller.provider,
    model: caller.model,
    kind: "network",
    retryable: true,
    message: `${caller.provider} stream ended before the reply was complete`,
  });
}

/** The body of a successful streaming response, or a protocol error when there is none. */
export function bodyOf(caller: Caller, res: Response): ReadableStream<Uint8Array> {
  if (res.body) return res.body;
  throw new ProviderError({
    provider: caller.provider,
    model: caller.model,
    kind: "protocol",
    retryable: true,
    message: `${caller.provider} answered without a body`,
  });
}
