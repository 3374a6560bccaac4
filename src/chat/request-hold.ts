/**
 * What a chat message does after its client has gone.
 *
 * Workers end a request's work the moment its client disconnects, all but what `ctx.waitUntil`
 * holds (for up to 30 s more). A message cut off between its admission and its settlement would
 * leave its reservation to the gate's expiry (10 minutes, counted against the tenant's budgets
 * until then) and its turn unrecorded. So a message holds its request open from before admission
 * until the handler has returned and everything it handed on has ended: the turn runs to its end,
 * and is settled and recorded as if its client had stayed. (Stopping the model call when the
 * client leaves would take the compatibility flag `enable_request_signal`, which cost every
 * request 0.1-0.3 ms of CPU in the benchmark: docs/chat.md, "Twentieth pass".)
 */
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
