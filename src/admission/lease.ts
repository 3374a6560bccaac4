import { WINDOW_MS } from "./types";

/** How long a tenant gate may spend a lease, measured on its own clock from when it asked. */
export const LEASE_MS = 15_000;
/**
 * The GlobalGate keeps an unreleased grant counted this much beyond LEASE_MS + WINDOW_MS, to
 * absorb clock-rate drift between the two objects (a lease measured as 15 s by a slow clock).
 */
export const LEASE_MARGIN_MS = 1_000;
/** A tenant gate asks for at most this fraction of the global limit at once. */
export const MAX_BLOCK_FRACTION = 1 / 50;
export const MAX_BLOCK = 1_000;

/** One lease of global capacity held by a tenant gate. */
export interface Lease {
  id: string;
  gate: string;
  granted: number;
  used: number;
  /** Tenant-clock ms after which the lease must not be used. */
  expiresAt: number;
}

/** A spent or expired lease, reported back so the GlobalGate can return what was not used. */
export interface LeaseRelease {
  leaseId: string;
  used: number;
}

export interface AcquireRequest {
  /** The tenant id holding the lease. */
  holder: string;
  want: number;
  limitPerMinute: number;
  release: LeaseRelease[];
}

export interface Grant {
  leaseId: string;
  granted: number;
  leaseMs: number;
  /** When nothing was granted: ms until capacity certainly frees up. */
  retryAfterMs: number;
}

/** The largest block a tenant gate asks for: a fiftieth of the global limit, at most its own limit. */
export function maxBlock(globalLimit: number, tenantLimit: number): number {
  return Math.max(1, Math.min(MAX_BLOCK, Math.floor(globalLimit * MAX_BLOCK_FRACTION), tenantLimit));
}

/**
 * How much to ask for. Ahead of need: twice what the tenant's current rate uses in one lease
 * period, within [1, maxBlock], so a quiet tenant holds a unit or two and a busy one a block that
 * lasts about half a lease. Requests already waiting for a unit are demand, not idle capacity:
 * they are covered whole, up to the tenant's own limit.
 */
export function blockWant(tenantInWindow: number, waiting: number, max: number, tenantLimit: number): number {
  const perLease = Math.ceil((tenantInWindow * LEASE_MS) / WINDOW_MS);
  return Math.max(1, Math.min(max, 2 * perLease), Math.min(waiting, tenantLimit));
}

/** The leases a tenant gate holds, oldest first; all decisions here are synchronous. */
export class LeaseBook {
  leases: Lease[] = [];

  /** Spends one unit of a live lease from `gate`; the lease id, or undefined when none has room. */
  take(gate: string, now: number): string | undefined {
    for (const l of this.leases) {
      if (l.gate === gate && now < l.expiresAt && l.used < l.granted) {
        l.used++;
        return l.id;
      }
    }
    return undefined;
  }

  /** Unspent units of live leases from `gate`. */
  remaining(gate: string, now: number): number {
    let n = 0;
    for (const l of this.leases) if (l.gate === gate && now < l.expiresAt) n += l.granted - l.used;
    return n;
  }

  /** The latest expiry among live leases from `gate` (0 when none). */
  liveUntil(gate: string, now: number): number {
    let until = 0;
    for (const l of this.leases)
      if (l.gate === gate && now < l.expiresAt && l.used < l.granted) until = Math.max(until, l.expiresAt);
    return until;
  }

  /** Removes and returns the leases that can no longer be used: spent, expired, or from another gate. */
  closeDone(now: number, gate?: string): Lease[] {
    const done: Lease[] = [];
    this.leases = this.leases.filter((l) => {
      const over = now >= l.expiresAt || l.used >= l.granted || (gate !== undefined && l.gate !== gate);
      if (over) done.push(l);
      return !over;
    });
    return done;
  }

  /** The earliest expiry of any held lease (undefined when none). */
  nextExpiry(): number | undefined {
    let at: number | undefined;
    for (const l of this.leases) if (at === undefined || l.expiresAt < at) at = l.expiresAt;
    return at;
  }
}
