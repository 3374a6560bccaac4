import { errorSummary } from "./errors";

/**
 * Thrown by a write that wrote part of its batch: only `rest` is tried again. A write that turns
 * its items into others (events from counts) answers the others; the next attempt is given them as
 * items.
 */
export class PartialWrite<T> extends Error {
  constructor(
    readonly rest: T[],
    cause: unknown,
  ) {
    super(`${rest.length} items of the batch were not written`, { cause });
  }
}

/**
 * Coalesces small writes made by many requests of one isolate into batched writes, off the
 * response path. The request that adds the first item of a batch owns its flush: it keeps itself
 * alive with `waitUntil` until the timer fires and the batch is written. A request that fills a
 * batch writes it at once, in its own `waitUntil`. No request ever waits on a promise another
 * request created: workerd drops continuations resolved across request contexts, which would lose
 * the batch. Items are plain data, so a batch may hold items of many requests.
 */
export class Batcher<T> {
  #items: T[] = [];
  #armed = false;

  constructor(
    readonly write: (items: T[]) => Promise<void>,
    readonly opts: { maxItems: number; delayMs: number; name: string },
  ) {}

  /** Adds an item; `waitUntil` keeps the calling request alive for the flush it owns, if any. */
  add(item: T, waitUntil: (p: Promise<unknown>) => void): void {
    this.#items.push(item);
    if (this.#items.length >= this.opts.maxItems) {
      waitUntil(this.#writeWithRetries(this.#take()));
      return;
    }
    if (!this.#armed) {
      this.#armed = true;
      waitUntil(this.#flushLater());
    }
  }

  /** Items waiting for their batch. */
  get pending(): number {
    return this.#items.length;
  }

  #take(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  async #flushLater(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.opts.delayMs));
    this.#armed = false;
    const items = this.#take();
    if (items.length > 0) await this.#writeWithRetries(items);
  }

  async #writeWithRetries(items: T[]): Promise<void> {
    let left = items;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.write(left);
        return;
      } catch (err) {
        const partial = err instanceof PartialWrite;
        if (partial) left = err.rest as T[];
        console.error(
          JSON.stringify({
            msg: `${this.opts.name}: batch write failed`,
            attempt,
            items: left.length,
            // Class and SQLSTATE only: a failed insert's message carries the rows it held.
            ...errorSummary(partial ? err.cause : err),
          }),
        );
        if (attempt < 3) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }
}
