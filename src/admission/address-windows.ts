/**
 * Exact sliding windows per client address, kept by the tenant's gate beside its other windows:
 * how many messages an address sent in the last minute and how many conversations it started in
 * the last hour. They bound what one script with the tenant's publishable key gets, whatever
 * visitor identities it collects. Addresses arrive as keyed hashes (src/auth/client-ip.ts).
 */
import type { z } from "zod";
import type { AddressHitSchema } from "./schemas";
import type { AdmitResult } from "./types";

export const ADDRESS_KINDS = ["message", "conversation"] as const;
export type AddressKind = (typeof ADDRESS_KINDS)[number];

/** The longest window any kind uses; older hits are pruned. */
export const LONGEST_WINDOW_MS = 3_600_000;
/** Prune once per this many hits, so pruning costs nothing per request. */
const PRUNE_EVERY = 256;

export type AddressHit = z.infer<typeof AddressHitSchema>;

export type AddressHitResult =
  | { ok: true; limit: number; remaining: number }
  | { ok: false; limit: number; remaining: 0; retryAfterSeconds: number };

/**
 * A gate call that counts an address hit, admits, or both (a browser's message): what each part
 * answered. An address over its limit admits nothing.
 */
export interface AddressedAdmission {
  address?: AddressHitResult;
  admission?: AdmitResult;
}

export class AddressWindows {
  #sincePrune = 0;

  constructor(private readonly sql: SqlStorage) {}

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
    const from = now - h.windowMs;
    const { n } = this.sql
      .exec<{ n: number }>(
        "SELECT COUNT(*) AS n FROM address_hits WHERE kind = ? AND address = ? AND ts > ?",
        h.kind,
        h.address,
        from,
      )
      .one();
    if (n >= h.limit) {
      // The hit whose leaving frees a slot: the (n - limit + 1)-th oldest in the window.
      const row = this.sql
        .exec<{ ts: number }>(
          "SELECT ts FROM address_hits WHERE kind = ? AND address = ? AND ts > ? ORDER BY ts LIMIT 1 OFFSET ?",
          h.kind,
          h.address,
          from,
          n - h.limit,
        )
        .toArray()[0];
      const leavesAt = (row?.ts ?? now) + h.windowMs;
      return {
        ok: false,
        limit: h.limit,
        remaining: 0,
        retryAfterSeconds: Math.max(1, Math.ceil((leavesAt - now) / 1000)),
      };
    }
    this.sql.exec("INSERT INTO address_hits (kind, address, ts) VALUES (?, ?, ?)", h.kind, h.address, now);
    if (++this.#sincePrune >= PRUNE_EVERY) {
      this.#sincePrune = 0;
      this.sql.exec("DELETE FROM address_hits WHERE ts <= ?", now - LONGEST_WINDOW_MS);
    }
    return { ok: true, limit: h.limit, remaining: h.limit - n - 1 };
  }
}
