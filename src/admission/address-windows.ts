/**
 * Exact sliding windows per client address, kept by the tenant's gate beside its other windows:
 * how many messages an address sent in the last minute, how many transcripts it read in the last
 * minute and how many conversations it started in the last hour. They bound what one script with
 * the tenant's publishable key gets, whatever visitor identities it collects. Addresses arrive as
 * keyed hashes (src/auth/client-ip.ts).
 */
import type { z } from "zod";
import type { GroupCommit } from "./group-commit";
import type { AddressHitSchema } from "./schemas";
import type { AdmitResult } from "./types";

export const ADDRESS_KINDS = ["message", "read", "conversation"] as const;
/** The key of a window of the whole tenant's browser traffic (no address hash can be it). */
export const TENANT_WIDE = "*";
export type AddressKind = (typeof ADDRESS_KINDS)[number];

/** The longest window any kind uses; older hits are pruned. */
export const LONGEST_WINDOW_MS = 3_600_000;
/** Prune once per this many hits, so pruning costs nothing per request. */
const PRUNE_EVERY = 256;

export type AddressHit = z.infer<typeof AddressHitSchema>;

export type AddressHitResult =
  | { ok: true; limit: number; remaining: number }
  /** `retryAfterMs`: exactly when a slot frees, from the time of the hit. */
  | { ok: false; limit: number; remaining: 0; retryAfterSeconds: number; retryAfterMs: number };

/**
 * A gate call that counts an address hit, admits, or both (a browser's message): what each part
 * answered. An address over its limit admits nothing.
 */
export interface AddressedAdmission {
  address?: AddressHitResult;
  admission?: AdmitResult;
}

interface Checked {
  hits: number[];
  result: AddressHitResult;
}

/** At most this many addresses' hits are kept in memory; past it the memory starts over. */
const MAX_REMEMBERED = 10_000;

export class AddressWindows {
  #sincePrune = 0;
  // The hits of the last LONGEST_WINDOW_MS per kind and address, oldest first, exactly as the table
  // holds them: read from it on an address's first hit in this instance, kept in step after (every
  // hit is inserted here and there with no await between). So a hit costs one INSERT, not a COUNT
  // as well; the table stays the truth a new instance reads. Bounded: starts over when full.
  #recent = new Map<string, number[]>();

  constructor(
    private readonly sql: SqlStorage,
    /** Hits are written with the gate's other writes of the moment (src/admission/group-commit.ts). */
    private readonly group: GroupCommit,
  ) {}

  /** Creates the table; called once, inside blockConcurrencyWhile. */
  init(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS address_hits (kind TEXT NOT NULL, address TEXT NOT NULL,
      ts INTEGER NOT NULL)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS address_hits_by_key ON address_hits (kind, address, ts)");
  }

  /**
   * Counts one hit if the address is under its limit in the trailing window, else refuses with the
   * time until its oldest hit in the window leaves. Check and insert run with no await between them.
   */
  hit(h: AddressHit, now: number): AddressHitResult {
    const { hits, result } = this.#check(h, now);
    if (result.ok) this.#count(h, hits, now);
    return result;
  }

  /**
   * Several windows at once (a browser's conversation start: its address, its visitor, the whole
   * tenant's): each hit is counted only if every one is under its limit, and each answers its own
   * result, so a refusal names its window. Nothing is counted in a window the request did not pass.
   */
  hitAll(hs: readonly AddressHit[], now: number): AddressHitResult[] {
    const checked = hs.map((h) => this.#check(h, now));
    if (checked.every((c) => c.result.ok))
      for (const [i, h] of hs.entries()) this.#count(h, (checked[i] as Checked).hits, now);
    return checked.map((c) => c.result);
  }

  #count(h: AddressHit, hits: number[], now: number): void {
    this.group.add(() =>
      this.sql.exec("INSERT INTO address_hits (kind, address, ts) VALUES (?, ?, ?)", h.kind, h.address, now),
    );
    hits.push(now);
    if (++this.#sincePrune >= PRUNE_EVERY) {
      this.#sincePrune = 0;
      this.group.add(() => this.sql.exec("DELETE FROM address_hits WHERE ts <= ?", now - LONGEST_WINDOW_MS));
      for (const [key, list] of this.#recent)
        if ((list.at(-1) ?? 0) <= now - LONGEST_WINDOW_MS) this.#recent.delete(key);
    }
  }

  /** Whether the hit fits its window, with the key's hits (kept in step: a counted hit is pushed). */
  #check(h: AddressHit, now: number): Checked {
    // Only the window's hits are kept (#hitsOf), oldest first: all of them count.
    const hits = this.#hitsOf(h, now);
    const n = hits.length;
    if (n < h.limit) return { hits, result: { ok: true, limit: h.limit, remaining: h.limit - n - 1 } };
    // The hit whose leaving frees a slot: the (n - limit + 1)-th oldest in the window.
    const leavesAt = (hits[n - h.limit] ?? now) + h.windowMs;
    return {
      hits,
      result: {
        ok: false,
        limit: h.limit,
        remaining: 0,
        retryAfterSeconds: Math.max(1, Math.ceil((leavesAt - now) / 1000)),
        retryAfterMs: Math.max(0, leavesAt - now),
      },
    };
  }

  /**
   * The key's hits in its window, oldest first (older ones dropped from memory; the table keeps
   * LONGEST_WINDOW_MS). A key always comes with the same window (its kind's: an address's or a
   * visitor's; the tenant's minute under TENANT_WIDE), so the list cut to it is all that key needs.
   */
  #hitsOf({ kind, address, windowMs }: AddressHit, now: number): number[] {
    const key = `${kind}\u0000${address}`;
    const oldest = now - windowMs;
    let hits = this.#recent.get(key);
    if (!hits) {
      if (this.#recent.size >= MAX_REMEMBERED) this.#recent.clear();
      // Hits still waiting for their batch are in the table once it has run.
      this.group.flush();
      hits = this.sql
        .exec<{ ts: number }>(
          "SELECT ts FROM address_hits WHERE kind = ? AND address = ? AND ts > ? ORDER BY ts",
          kind,
          address,
          oldest,
        )
        .toArray()
        .map((r) => r.ts);
      this.#recent.set(key, hits);
    }
    let stale = 0;
    while (stale < hits.length && (hits[stale] as number) <= oldest) stale++;
    if (stale > 0) hits.splice(0, stale);
    return hits;
  }
}
