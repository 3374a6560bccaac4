import type { GlobalGate } from "./global-gate";
import { blockWant, LEASE_MS, LeaseBook, maxBlock } from "./lease";
import type { TenantStore } from "./tenant-store";
import type { GateOutcome } from "./types";

/** The global limit and the GlobalGate an admission leases from. */
export interface GlobalTarget {
  gate: string;
  limitPerMinute: number;
}

export interface LeaseClientDeps {
  store: TenantStore;
  globals: DurableObjectNamespace<GlobalGate>;
  now: () => number;
  /** Admissions in the tenant's current window: sizes the next block. */
  rate: () => number;
  /** Called with a new lease's expiry, so an alarm reports it when it runs out. */
  onLease: (expiresAt: number) => void;
  waitUntil: (p: Promise<unknown>) => void;
}

/** An admission waiting for a unit, across its retries. */
export interface LeaseWaiter {
  /** `#sent` when it was last counted: it is in the request after that one. */
  countedFor: number;
  /** Lease requests it has been counted in. */
  counted: number;
}

/**
 * The tenant gate's side of global leasing: spends units synchronously on the hot path, asks
 * GlobalGate for the next block in the background before they run out, and reports spent or
 * expired leases so unused units return to the pool.
 */
export class LeaseClient {
  readonly book = new LeaseBook();
  #acquiring: Promise<void> | undefined;
  // Admissions that found no unit and wait for the next request: its block covers them all, so a
  // burst on a cold gate needs two GlobalGate round trips, not one per waiting request. An
  // admission is counted again only once the request it was counted for has answered without
  // serving it: one that retries while that request is still to be sent or in flight (a prefetch
  // may send it) is already in it. (Until 2026-12-06 every retry counted again: a burst of 60
  // leased 119 units, and the surplus, unused, was global capacity other tenants were refused
  // until the lease ended.)
  #demand = 0;
  /** Requests sent, and requests answered: a waiter counted when `#sent` was N is in request N + 1. */
  #sent = 0;
  #answered = 0;
  #exhaustedUntil = 0;
  #retryMs = 0;

  constructor(private readonly d: LeaseClientDeps) {}

  /** Whether a request to the GlobalGate is in flight. */
  get asking(): boolean {
    return this.#acquiring !== undefined;
  }

  /** Picks up the live leases kept in storage (after a restart). */
  load(): void {
    for (const l of this.d.store.leases()) {
      if (!l.closed)
        this.book.leases.push({
          id: l.id,
          gate: l.gate,
          granted: l.granted,
          used: l.used,
          expiresAt: l.expiresAt,
        });
    }
  }

  /** Spends one unit for an admission; the lease id, or undefined when none is held. */
  take(gate: string, now: number): string | undefined {
    return this.book.take(gate, now);
  }

  /** While the GlobalGate has just said it has nothing: ms a refused request should wait. */
  exhausted(now: number): number | undefined {
    return now < this.#exhaustedUntil ? this.#retryMs : undefined;
  }

  /**
   * Waits for a block while an admission needs one; concurrent callers share one request. `waiter`
   * is the admission's own record across its retries (start it as `{ countedFor: -1, counted: 0 }`).
   */
  async waitForBlock(
    holder: string,
    target: GlobalTarget,
    tenantLimit: number,
    waiter: LeaseWaiter,
  ): Promise<void> {
    if (waiter.countedFor < 0 || this.#answered > waiter.countedFor) {
      this.#demand++;
      waiter.countedFor = this.#sent;
      waiter.counted++;
    }
    await this.#acquire(holder, target, tenantLimit);
  }

  /**
   * Whether `waiter` has been in `rounds` lease requests that all answered without a unit for it:
   * then it stops waiting. A request that answered while it waited for the next one (it was not
   * in it) is not one of its rounds.
   */
  spent(waiter: LeaseWaiter, rounds: number): boolean {
    return waiter.counted >= rounds && this.#answered > waiter.countedFor;
  }

  /** Starts a lease request in the background when the held units will not last. */
  prefetch(holder: string, target: GlobalTarget, tenantLimit: number, now: number): void {
    if (this.#acquiring || this.exhausted(now) !== undefined) return;
    const want = blockWant(this.d.rate(), 0, maxBlock(target.limitPerMinute, tenantLimit), tenantLimit);
    const enoughUnits = this.book.remaining(target.gate, now) * 2 > want;
    const enoughTime = this.book.liveUntil(target.gate, now) - now > LEASE_MS / 4;
    if (enoughUnits && enoughTime) return;
    this.d.waitUntil(
      this.#acquire(holder, target, tenantLimit).catch((err) =>
        console.warn(JSON.stringify({ msg: "lease prefetch failed", error: String(err) })),
      ),
    );
  }

  /** Resolves once no lease request is in flight. */
  async drain(): Promise<void> {
    while (this.#acquiring) await this.#acquiring.catch(() => {});
  }

  /** Closes leases that are spent or expired; they wait in storage to be reported. */
  closeDone(now: number): void {
    for (const l of this.book.closeDone(now)) this.d.store.closeLease(l);
  }

  /** Reports closed leases to their GlobalGates so unused units return to everyone. */
  async reportClosed(holder: string): Promise<void> {
    const byGate = Map.groupBy(this.d.store.closedLeases(), (l) => l.gate);
    for (const [gate, leases] of byGate) {
      accepted(
        await this.d.globals.getByName(gate).release({
          holder,
          release: leases.map((l) => ({ leaseId: l.id, used: l.used })),
        }),
      );
      this.d.store.deleteLeases(leases.map((l) => l.id));
    }
  }

  #acquire(holder: string, target: GlobalTarget, tenantLimit: number): Promise<void> {
    if (!this.#acquiring) {
      this.#acquiring = this.#request(holder, target, tenantLimit).finally(() => {
        this.#acquiring = undefined;
        this.#answered = this.#sent;
      });
    }
    return this.#acquiring;
  }

  async #request(holder: string, target: GlobalTarget, tenantLimit: number): Promise<void> {
    const { store } = this.d;
    const sentAt = this.d.now();
    for (const l of this.book.closeDone(sentAt, target.gate)) store.closeLease(l);
    const release = store.closedLeases().filter((l) => l.gate === target.gate);
    const max = maxBlock(target.limitPerMinute, tenantLimit);
    const want = blockWant(this.d.rate(), this.#demand, max, tenantLimit);
    this.#demand = 0;
    this.#sent++;
    const grant = accepted(
      await this.d.globals.getByName(target.gate).acquire({
        holder,
        want,
        limitPerMinute: target.limitPerMinute,
        release: release.map((l) => ({ leaseId: l.id, used: l.used })),
      }),
    );
    store.deleteLeases(release.map((l) => l.id));
    if (grant.granted > 0) {
      // Timed from when we asked, on our own clock: the lease ends inside the grant's counted span.
      const lease = {
        id: grant.leaseId,
        gate: target.gate,
        granted: grant.granted,
        used: 0,
        expiresAt: sentAt + grant.leaseMs,
      };
      store.insertLease(lease);
      this.book.leases.push(lease);
      this.d.onLease(lease.expiresAt);
      this.#exhaustedUntil = 0;
    } else {
      // Ask again within a second at most: released leases can free units before the retry time.
      this.#retryMs = grant.retryAfterMs;
      this.#exhaustedUntil = this.d.now() + Math.min(grant.retryAfterMs, 1_000);
    }
  }
}

/** The GlobalGate's answer; a rejection means this gate sent a malformed request, a bug, so it throws. */
function accepted<T>(out: GateOutcome<T>): T {
  if (out.ok) return out.value;
  throw new Error(`GlobalGate rejected the request (${out.code}): ${out.message}`);
}
