/**
 * The time source of a Durable Object. Production reads `Date.now()`; tests pin or shift it through
 * `runInDurableObject` so windows, budgets, idle timeouts and expiry are exercised without sleeping.
 */
export class Clock {
  #fixed: number | undefined;
  #offset = 0;

  /** Milliseconds since the epoch, as this object sees them. */
  now(): number {
    return this.#fixed ?? Date.now() + this.#offset;
  }

  /** Pins the clock to `ms` until it is moved again or released. */
  set(ms: number): void {
    this.#fixed = ms;
  }

  /** Moves the clock forward by `ms`, pinned or not. */
  advance(ms: number): void {
    if (this.#fixed === undefined) this.#offset += ms;
    else this.#fixed += ms;
  }

  /** Back to the real clock. */
  release(): void {
    this.#fixed = undefined;
    this.#offset = 0;
  }
}
