/**
 * Exact sliding windows: every admitted event keeps its own timestamp, so the count at time t is
 * the number of events with t - window < ts <= t. Nothing is approximated (no two-counter blend).
 * Timestamps arrive in non-decreasing order (the gate's clock is monotonic), so the window is a
 * queue: expired events leave from the head in amortized O(1).
 */
export class EventWindow {
  #ts: number[] = [];
  #head = 0;

  constructor(readonly windowMs: number) {}

  /** Events still inside the window at `now`. */
  count(now: number): number {
    this.#prune(now);
    return this.#ts.length - this.#head;
  }

  /** Records an event at `ts`; callers pass non-decreasing timestamps. */
  push(ts: number): void {
    this.#ts.push(ts);
  }

  /**
   * Milliseconds until the count at `now` drops below `limit` (0 when it already is). The event
   * that must leave is the (count - limit + 1)-th oldest; it leaves when now reaches ts + window.
   */
  msUntilBelow(limit: number, now: number): number {
    const n = this.count(now);
    if (n < limit) return 0;
    const ts = this.#ts[this.#head + (n - limit)];
    return ts === undefined ? 0 : ts + this.windowMs - now;
  }

  /** Milliseconds until the oldest event in the window leaves it (0 when empty). */
  msUntilOldestLeaves(now: number): number {
    this.#prune(now);
    const oldest = this.#ts[this.#head];
    return oldest === undefined ? 0 : oldest + this.windowMs - now;
  }

  #prune(now: number): void {
    const cutoff = now - this.windowMs;
    const ts = this.#ts;
    let head = this.#head;
    while (head < ts.length && (ts[head] as number) <= cutoff) head++;
    // Compact once the dead prefix dominates, so memory follows the window, not history.
    if (head > 1024 && head * 2 > ts.length) {
      this.#ts = ts.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}

/** One window per key (a user id), dropping keys whose windows emptied so memory stays bounded. */
export class KeyedWindows {
  readonly #byKey = new Map<string, EventWindow>();

  constructor(readonly windowMs: number) {}

  /** Events of `key` inside the window at `now`. */
  count(key: string, now: number): number {
    return this.#byKey.get(key)?.count(now) ?? 0;
  }

  /** The window of `key`, created on first use. */
  of(key: string): EventWindow {
    let w = this.#byKey.get(key);
    if (!w) {
      w = new EventWindow(this.windowMs);
      this.#byKey.set(key, w);
    }
    return w;
  }

  /** Milliseconds until the oldest event of `key` leaves the window (0 when it has none). */
  msUntilOldestLeaves(key: string, now: number): number {
    return this.#byKey.get(key)?.msUntilOldestLeaves(now) ?? 0;
  }

  /** Forgets keys with no event left in the window; the alarm calls it. */
  sweep(now: number): void {
    for (const [key, w] of this.#byKey) if (w.count(now) === 0) this.#byKey.delete(key);
  }

  /** Keys with at least one event in the window. */
  active(now: number): number {
    this.sweep(now);
    return this.#byKey.size;
  }
}
