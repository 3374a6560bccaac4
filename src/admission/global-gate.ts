import { DurableObject } from "cloudflare:workers";
import { Clock } from "../clock";
import type { RawEnv } from "../env";
import { guard } from "../outcome";
import { type AcquireRequest, type Grant, LEASE_MARGIN_MS, LEASE_MS, type LeaseRelease } from "./lease";
import { type GateOutcome, gateShapes, parseOrThrow, WINDOW_MS } from "./types";

interface Held {
  seq: number;
  holder: string;
  amount: number;
  endAt: number;
  released: boolean;
}

/** What the GlobalGate holds right now, for usage views and tests. */
export interface GlobalState {
  limit: number;
  inUse: number;
  grants: number;
}

/**
 * The global limit, leased to tenant gates in blocks. A grant of b units counts against the limit
 * from the moment it is made until LEASE_MS + LEASE_MARGIN_MS + WINDOW_MS later; once the tenant
 * reports how many units it used, only those count, until WINDOW_MS after the report. Every
 * admission under a grant happens inside that span, so the grants alive at any instant cover all
 * admissions of the trailing window, and a grant is only made while alive grants + b <= limit:
 * admissions in any window never exceed the limit (docs/admission.md has the argument).
 */
export class GlobalGate extends DurableObject<RawEnv> {
  readonly clock = new Clock();
  #seq = 0;
  #limit = 0;
  #inUse = 0;
  #nextEnd = Number.POSITIVE_INFINITY;
  readonly #held = new Map<number, Held>();

  constructor(ctx: DurableObjectState, env: RawEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      await gateShapes.load();
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS grants (
        seq INTEGER PRIMARY KEY, holder TEXT NOT NULL, amount INTEGER NOT NULL,
        end_at INTEGER NOT NULL, released INTEGER NOT NULL DEFAULT 0)`);
      sql.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
      this.#seq = sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'seq'").toArray()[0]?.v ?? 0;
      const rows = sql.exec<{
        seq: number;
        holder: string;
        amount: number;
        end_at: number;
        released: number;
      }>("SELECT seq, holder, amount, end_at, released FROM grants");
      for (const r of rows) {
        this.#hold({
          seq: r.seq,
          holder: r.holder,
          amount: r.amount,
          endAt: r.end_at,
          released: r.released === 1,
        });
        this.#seq = Math.max(this.#seq, r.seq);
      }
    });
  }

  /** Takes back the reported leases, then grants up to `want` units if the limit has room. */
  acquire(raw: AcquireRequest): Promise<GateOutcome<Grant>> {
    return guard(() => this.#acquire(raw));
  }

  #acquire(raw: AcquireRequest): Grant {
    const req = parseOrThrow(gateShapes.get().AcquireSchema, raw, "acquire");
    const now = this.clock.now();
    this.#limit = req.limitPerMinute;
    this.#takeBack(req.holder, req.release, now);
    this.#expire(now);
    const granted = Math.min(req.want, this.#limit - this.#inUse);
    if (granted <= 0) {
      return { leaseId: "", granted: 0, leaseMs: 0, retryAfterMs: Math.max(1, this.#nextEnd - now) };
    }
    this.#seq += 1;
    const endAt = now + LEASE_MS + LEASE_MARGIN_MS + WINDOW_MS;
    this.ctx.storage.sql.exec(
      "INSERT INTO grants (seq, holder, amount, end_at) VALUES (?, ?, ?, ?)",
      this.#seq,
      req.holder,
      granted,
      endAt,
    );
    this.#hold({ seq: this.#seq, holder: req.holder, amount: granted, endAt, released: false });
    return { leaseId: `g${this.#seq}`, granted, leaseMs: LEASE_MS, retryAfterMs: 0 };
  }

  /** Takes back leases without asking for more (a tenant gate's alarm found them spent or expired). */
  release(raw: { holder: string; release: LeaseRelease[] }): Promise<GateOutcome<void>> {
    return guard(() => {
      const req = parseOrThrow(gateShapes.get().ReleaseSchema, raw, "release");
      const now = this.clock.now();
      this.#takeBack(req.holder, req.release, now);
      this.#expire(now);
    });
  }

  /** The limit last asked for, the units counted against it and the grants alive now. */
  async state(): Promise<GlobalState> {
    this.#expire(this.clock.now());
    return { limit: this.#limit, inUse: this.#inUse, grants: this.#held.size };
  }

  #hold(h: Held): void {
    this.#held.set(h.seq, h);
    this.#inUse += h.amount;
    this.#nextEnd = Math.min(this.#nextEnd, h.endAt);
  }

  /** A reported lease counts only its used units, and only for one window after the report. */
  #takeBack(holder: string, leases: LeaseRelease[], now: number): void {
    for (const l of leases) {
      const h = this.#held.get(Number(l.leaseId.slice(1)));
      // Unknown (already ended), another tenant's, or reported twice: nothing to take back.
      if (!h || h.holder !== holder || h.released) continue;
      const used = Math.min(h.amount, l.used);
      this.#inUse -= h.amount - used;
      h.amount = used;
      h.endAt = Math.min(h.endAt, now + WINDOW_MS);
      h.released = true;
      this.#nextEnd = Math.min(this.#nextEnd, h.endAt);
      this.ctx.storage.sql.exec(
        "UPDATE grants SET amount = ?, end_at = ?, released = 1 WHERE seq = ?",
        h.amount,
        h.endAt,
        h.seq,
      );
    }
  }

  /** Drops grants whose span has ended; their units are free again. */
  #expire(now: number): void {
    if (now < this.#nextEnd) return;
    let next = Number.POSITIVE_INFINITY;
    for (const [seq, h] of this.#held) {
      if (h.endAt <= now) {
        this.#held.delete(seq);
        this.#inUse -= h.amount;
      } else {
        next = Math.min(next, h.endAt);
      }
    }
    this.#nextEnd = next;
    const sql = this.ctx.storage.sql;
    // Keep the sequence's high-water mark: lease ids are never reused even when every row is gone.
    sql.exec(
      "INSERT INTO meta (k, v) VALUES ('seq', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
      this.#seq,
    );
    sql.exec("DELETE FROM grants WHERE end_at <= ?", now);
  }
}
