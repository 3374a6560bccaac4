import { ProviderError, toProviderError } from "./errors";
import type { ResolvedModel } from "./registry";
import { DEFAULT_RETRY_POLICY, type RetryPolicy, streamWithRetries } from "./retry";
import type { ChatEvent, ChatRequest } from "./types";
import { OutputTally } from "./usage";

/** A request before a model is chosen: the chain fills in each step's upstream model. */
export type ChainRequest = Omit<ChatRequest, "model">;

export interface ChainOptions {
  /** Client disconnect or the route's own deadline; cancels the upstream call in flight. */
  signal: AbortSignal;
  policy?: RetryPolicy;
}

/**
 * Whether the next model may take over: only failures the next model might not share. An
 * unconfigured provider counts, so a tenant on "gpt-4o-mini" without a key still gets its fallback.
 */
function canFallBack(err: ProviderError): boolean {
  return err.kind !== "aborted" && (err.retryable || err.kind === "config");
}

/**
 * Streams a request down a fallback chain. Each model gets its retries; the next model takes over
 * only while nothing has been emitted. Never throws: the run ends with one `done` or one `error`,
 * and a failure after output is preceded by an estimated `usage` so the turn can still be settled.
 */
export async function* runChain(
  chain: readonly ResolvedModel[],
  req: ChainRequest,
  opts: ChainOptions,
): AsyncGenerator<ChatEvent, void, undefined> {
  const policy = opts.policy ?? DEFAULT_RETRY_POLICY;
  if (chain.length === 0) {
    const error = new ProviderError({
      provider: "none",
      model: "none",
      kind: "config",
      retryable: false,
      message: "no model to call",
    });
    yield { type: "error", error, model: "none", afterOutput: false };
    return;
  }
  for (let i = 0; i < chain.length; i++) {
    const step = chain[i] as ResolvedModel;
    const call: ChatRequest = { ...req, model: step.upstreamModel };
    const tally = new OutputTally();
    let usageSent = false;
    try {
      for await (const ev of streamWithRetries(step.provider, call, policy, opts.signal)) {
        if (ev.type === "done") {
          yield {
            type: "done",
            finishReason: ev.finishReason,
            model: step.model,
            provider: step.provider.name,
          };
        } else if (ev.type === "retry") {
          yield ev;
        } else {
          if (ev.type === "usage") usageSent = true;
          yield tally.see(ev);
        }
      }
      return;
    } catch (e) {
      const error = toProviderError(e, step.provider.name, step.upstreamModel, opts.signal);
      if (tally.started) {
        if (!usageSent) yield { type: "usage", ...tally.estimate(call) };
        yield { type: "error", error, model: step.model, afterOutput: true };
        return;
      }
      const next = chain[i + 1];
      if (next && canFallBack(error)) {
        yield { type: "fallback", from: step.model, to: next.model, error };
        continue;
      }
      yield { type: "error", error, model: step.model, afterOutput: false };
      return;
    }
  }
}
