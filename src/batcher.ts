/**
 * Coalesces small writes made by many requests of one isolate into one batched write, off the
 * response path: the first item of a batch schedules a flush after `delayMs` (or at once when the
 * batch is full), and every request that added an item keeps itself alive with `waitUntil` until
 * its batch is written. Items are plain data, so a batch may be written by another request's task.
 */
export class Batcher<T> {
  #items: T[] = [];
  #flushing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;

  constructor(
    readonly write: (items: T[]) => Promise<void>,
    readonly opts: { maxItems: number; delayMs: number; name: string },
  ) {}

  /** Adds an item; `waitUntil` keeps the calling request alive until the item's batch is written. */
  add(item: T, waitUntil: (p: Promise<unknown>) => void): void {
    this.#items.push(item);
    if (!this.#flushing) this.#flushing = this.#schedule();
    if (this.#items.length >= this.opts.maxItems) this.#wake?.();
    waitUntil(this.#flushing);
  }

  /** Items waiting for their batch. */
  get pending(): number {
    return this.#items.length;
  }

  /** Writes whatever is pending now (tests, shutdown). */
  async flush(): Promise<void> {
    this.#wake?.();
    await this.#flushing;
  }

  async #schedule(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, this.opts.delayMs);
    });
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#wake = undefined;
    const items = this.#items;
    this.#items = [];
    this.#flushing = undefined;
    if (items.length === 0) return;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.write(items);
        return;
      } catch (err) {
        console.error(
          JSON.stringify({
            msg: `${this.opts.name}: batch write failed`,
            attempt,
            items: items.length,
            error: String(err),
          }),
        );
        if (attempt < 3) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }
}
