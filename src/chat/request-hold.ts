/**
 * What a chat message does after its client has gone.
 *
 * Workers end a request's work the moment its client disconnects, all but what `ctx.waitUntil`
 * holds (for up to 30 s more). A message cut off between its admission and its settlement leaves
 * its reservation to the gate's expiry (10 minutes, counted against the tenant's budgets until
 * then) and its turn unrecorded. So a message holds its request open from before admission until
 * the handler has returned and everything it handed on has ended, and the client's leaving aborts
 * the model call (the runtime aborts the incoming request's signal: compatibility flag
 * `enable_request_signal`), which ends the turn at once, settled with what was produced.
 */
import type { Context } from "hono";
import type { AppEnv } from "../app";

export class RequestHold {
  #pending = 1;
  #release: () => void = () => {};

  constructor(ctx: ExecutionContext) {
    ctx.waitUntil(
      new Promise<void>((r) => {
        this.#release = r;
      }),
    );
  }

  /** Holds the request until `work` ends too (fulfilled or not). */
  until(work: Promise<unknown>): void {
    this.#pending += 1;
    work.then(
      () => this.#end(),
      () => this.#end(),
    );
  }

  /** Runs the handler under the hold: the hold ends when it and every `until` have ended. */
  async run<T>(handler: () => Promise<T>): Promise<T> {
    try {
      return await handler();
    } finally {
      this.#end();
    }
  }

  #end(): void {
    this.#pending -= 1;
    if (this.#pending === 0) this.#release();
  }
}

/**
 * Aborts `abort` when the client disconnects (the incoming request's signal; see above), and ends
 * the response's timing there: a response nobody reads would otherwise never end, and the turn's
 * analytics event waits for its end (src/chat/engine.ts).
 */
export function abortOnDisconnect(c: Context<AppEnv>, abort: AbortController): void {
  c.req.raw.signal.addEventListener(
    "abort",
    () => {
      c.get("timing").end();
      abort.abort(new Error("client disconnected"));
    },
    { once: true },
  );
}
