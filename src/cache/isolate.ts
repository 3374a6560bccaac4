/**
 * A bounded in-memory cache with per-entry expiry, living as long as the isolate. Map keeps
 * insertion order, so re-inserting on read makes eviction least-recently-used.
 */
export class IsolateCache<T> {
  readonly #entries = new Map<string, { value: T; expires: number }>();

  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
  ) {}

  get(key: string, now = Date.now()): T | undefined {
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    this.#entries.delete(key);
    if (hit.expires <= now) return undefined;
    this.#entries.set(key, hit);
    return hit.value;
  }

  /** The entry even if expired (not removed), with whether it is still fresh. */
  peek(key: string, now = Date.now()): { value: T; fresh: boolean; age: number } | undefined {
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    return { value: hit.value, fresh: hit.expires > now, age: now - (hit.expires - this.ttlMs) };
  }

  set(key: string, value: T, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: now + this.ttlMs });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
