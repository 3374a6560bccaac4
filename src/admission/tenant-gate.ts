import { DurableObject } from "cloudflare:workers";
import { Clock } from "../clock";
import type { RawEnv } from "../env";
import { guard, Rejection } from "../outcome";
import {
  type AddressedAdmission,
  type AddressHit,
  type AddressHitResult,
  AddressWindows,
} from "./address-windows";
import { headroom, Ledger, planBudget, type Reservation } from "./budget";
import { GroupCommit } from "./group-commit";
import { LeaseClient } from "./lease-client";
import { lastDays, localDay, monthOf } from "./periods";
import { costNanos, type PricingOverrides, priceOf, usd } from "./pricing";
import { budgetRefusal, rateRefusal } from "./refusals";
import { PendingRollup } from "./rollup";
import { TenantStore } from "./tenant-store";
import {
  type AdmissionConfig,
  type AdmitInput,
  type AdmitResult,
  type GateErrorCode,
  type GateOutcome,
  gateShapes,
  parseOrThrow,
  type RateLevelInfo,
  type RateLimitInfo,
  RESERVATION_ID,
  RESERVATION_TTL_MS,
  type SettleItem,
  type SettleResult,
  type Usage,
  type UsageQuery,
  WINDOW_MS,
} from "./types";
import { buildUsageView, type UsageView } from "./usage-view";
import { EventWindow, KeyedWindows } from "./window";

/** How many times one admit asks the GlobalGate before refusing at the global level. */
const MAX_LEASE_ROUNDS = 4;
/** Settled and expired admissions stay this long: late and repeated settlements still find them. */
const ROW_RETENTION_MS = 60 * 60_000;
const CONVERSATION_RETENTION_MS = 30 * 24 * 60 * 60_000;
const DAY_RETENTION = 100;
const VISITOR_MONTH_RETENTION_DAYS = 35;
/** Settlements are folded into the per-day and per-conversation tables within this long. */
const ROLLUP_MS = 10_000;
const NEED_LEASE = Symbol("need lease");
/** The reason a purged gate resets with: its `purge` call rejects with it. */
export const PURGED_GATE = "tenant gate purged";

/**
 * One tenant's admission: exact sliding-window rate limits (per user, per tenant), its share of
 * the global limit (leased from GlobalGate), and token and cost budgets with reservations. Every
 * decision runs synchronously from check to write, so the input gate serializes admissions: no
 * two can both see the last free slot, and a refusal changes nothing.
 */
export class TenantGate extends DurableObject<RawEnv> {
  readonly clock = new Clock();
  readonly #store: TenantStore;
  /** The admission rows, settlements and address hits of concurrent calls: one commit per batch. */
  readonly #group: GroupCommit;
  readonly #addresses: AddressWindows;
  readonly #ledger: Ledger;
  readonly #tenantWindow = new EventWindow(WINDOW_MS);
  readonly #users = new KeyedWindows(WINDOW_MS);
  readonly #leases: LeaseClient;
  readonly #rollup = new PendingRollup();
  #settleNo = 0;
  #validTarget: Pick<AdmitInput, "config" | "global"> | undefined;
  #tenantId: string | undefined;
  #configJson: string | undefined;
  /** The config `#remember` last saw (`#admitInput` reuses a validated one while it is unchanged). */
  #remembered: AdmissionConfig | undefined;
  #overrides: PricingOverrides = {};
  #seq = 0;
  #lastNow = 0;
  #alarmAt: number | undefined;
  #lastPrune = 0;

  constructor(ctx: DurableObjectState, env: RawEnv) {
    super(ctx, env);
    this.#store = new TenantStore(ctx.storage.sql);
    // A batch that failed rolled back: memory holds decisions its rows lost, so start over.
    this.#group = new GroupCommit(ctx.storage, (err) => ctx.abort(`admission writes failed: ${String(err)}`));
    this.#addresses = new AddressWindows(ctx.storage.sql, this.#group);
    this.#ledger = new Ledger(
      (conv) => this.#store.conversationNanos(conv) + this.#rollup.convNanos(conv),
      (month, user) => this.#store.visitorTokens(month, user) + this.#rollup.visitorTokens(month, user),
    );
    this.#leases = new LeaseClient({
      store: this.#store,
      globals: env.GLOBAL_GATE,
      now: () => this.#now(),
      rate: () => this.#tenantWindow.count(this.#now()),
      onLease: (at) => this.#ensureAlarm(at),
      waitUntil: (p) => ctx.waitUntil(p),
    });
    ctx.blockConcurrencyWhile(async () => {
      await gateShapes.load();
      this.#load();
      this.#alarmAt = (await ctx.storage.getAlarm()) ?? undefined;
    });
  }

  /** Checks every limit and reserves the worst-case cost in one serialized step. */
  admit(raw: AdmitInput): Promise<GateOutcome<AdmitResult>> {
    this.#arrive();
    return guard(() => this.#admit(this.#admitInput(raw)));
  }

  /**
   * A browser's message in one call: counts it against its address's window and, unless that
   * refuses, admits it. An address over its limit admits nothing; the hit counts either way, as
   * with `hitAddress` followed by `admit`.
   */
  admitAddressed(rawHit: AddressHit, raw: AdmitInput): Promise<GateOutcome<AddressedAdmission>> {
    this.#arrive();
    return guard(async () => {
      const h = parseOrThrow(gateShapes.get().AddressHitSchema, rawHit, "address hit");
      const input = this.#admitInput(raw);
      if (h.tenantId !== input.tenantId)
        throw new Rejection<GateErrorCode>(
          "INVALID_INPUT",
          "address hit and admission name different tenants",
        );
      this.#bind(h.tenantId);
      const address = this.#addresses.hit(h, this.#now());
      if (!address.ok) return { address };
      // #admit answers once the batch holding the hit and the admission has run.
      return { address, admission: await this.#admit(input) };
    });
  }

  /**
   * Validates an admit input. A tenant's config and global target arrive unchanged on nearly every
   * call, and checking them was a third of an admission's CPU: when both equal the ones last
   * validated here, only the rest is checked and the validated values are reused (equal input,
   * equal verdict); anything else gets the whole check, with the same messages. The rest is
   * checked by hand first (`isAdmitRest`, the schema's checks written out); only what that
   * refuses goes through the schema, for its verdict and messages.
   */
  #admitInput(raw: AdmitInput): AdmitInput {
    const shapes = gateShapes.get();
    const known = this.#validTarget;
    if (
      known &&
      typeof raw === "object" &&
      raw !== null &&
      samePlain(raw.config, known.config) &&
      samePlain(raw.global, known.global)
    ) {
      const rest = shapes.isAdmitRest(raw)
        ? raw
        : parseOrThrow(shapes.AdmitInputRestSchema, raw, "admit input");
      return { ...rest, config: known.config, global: known.global };
    }
    const input = parseOrThrow(shapes.AdmitInputSchema, raw, "admit input");
    this.#validTarget = { config: input.config, global: input.global };
    return input;
  }

  async #admit(input: AdmitInput): Promise<AdmitResult> {
    this.#bind(input.tenantId);
    this.#remember(input.config);
    for (const item of input.settle ?? []) {
      try {
        this.#settle(item, this.#now());
      } catch (err) {
        // A stale id riding along must not cost this request its admission.
        console.warn(JSON.stringify({ msg: "piggybacked settle failed", error: String(err) }));
      }
    }
    let outcome = this.#decide(input, false);
    if (outcome === NEED_LEASE) {
      // No lease unit held: wait for blocks, up to MAX_LEASE_ROUNDS requests this admission is in.
      const waiter = { countedFor: -1, counted: 0 };
      do {
        await this.#leases.waitForBlock(
          input.tenantId,
          input.global,
          input.config.rateLimitPerMinute,
          waiter,
        );
        outcome = this.#decide(input, this.#leases.spent(waiter, MAX_LEASE_ROUNDS));
      } while (outcome === NEED_LEASE);
    }
    // The answer waits for its rows (and the settlements it carried): one commit per batch.
    await this.#group.committed();
    return outcome;
  }

  /** Commits actual usage and refunds the rest of the reservation; repeating it changes nothing. */
  settle(reservationId: string, usage: Usage): Promise<GateOutcome<SettleResult>> {
    this.#arrive();
    return guard(async () => {
      const item = parseOrThrow(gateShapes.get().SettleItemSchema, { reservationId, usage }, "settle input");
      const result = this.#settle(item, this.#now());
      await this.#group.committed();
      return result;
    });
  }

  /** Settles a batch in one call (one write transaction); unknown ids answer `unknown`. */
  settleMany(
    items: SettleItem[],
  ): Promise<GateOutcome<Array<SettleResult | { reservationId: string; status: "unknown" }>>> {
    this.#arrive();
    return guard(async () => {
      const batch = parseOrThrow(gateShapes.get().SettleBatchSchema, items, "settle batch");
      const now = this.#now();
      const results = batch.map((item) => {
        try {
          return this.#settle(item, now);
        } catch {
          return { reservationId: item.reservationId, status: "unknown" as const };
        }
      });
      await this.#group.committed();
      return results;
    });
  }

  /**
   * Counts a browser's message or new conversation against its address's window (publishable keys:
   * src/admission/address-windows.ts); a refusal changes nothing.
   */
  hitAddress(raw: AddressHit): Promise<GateOutcome<AddressHitResult>> {
    this.#arrive();
    return guard(async () => {
      const h = parseOrThrow(gateShapes.get().AddressHitSchema, raw, "address hit");
      this.#bind(h.tenantId);
      const result = this.#addresses.hit(h, this.#now());
      await this.#group.committed();
      return result;
    });
  }

  /**
   * Several windows of one request at once (`AddressWindows.hitAll`): each counted only if all pass.
   * At most four, all of one tenant.
   */
  hitAddresses(raw: AddressHit[]): Promise<GateOutcome<AddressHitResult[]>> {
    this.#arrive();
    return guard(async () => {
      if (!Array.isArray(raw) || raw.length < 1 || raw.length > 4)
        throw new Rejection<GateErrorCode>("INVALID_INPUT", "address hits: one to four");
      const hits = raw.map((h) => parseOrThrow(gateShapes.get().AddressHitSchema, h, "address hit"));
      const tenantId = (hits[0] as AddressHit).tenantId;
      if (hits.some((h) => h.tenantId !== tenantId))
        throw new Rejection<GateErrorCode>("INVALID_INPUT", "address hits name different tenants");
      this.#bind(tenantId);
      const results = this.#addresses.hitAll(hits, this.#now());
      await this.#group.committed();
      return results;
    });
  }

  /** Tokens used and left this month, cost per day, current window usage. */
  usage(raw: UsageQuery): Promise<GateOutcome<UsageView>> {
    return guard(() => this.#usage(raw));
  }

  #usage(raw: UsageQuery): UsageView {
    const q = parseOrThrow(gateShapes.get().UsageQuerySchema, raw, "usage query");
    this.#bind(q.tenantId);
    const now = this.#now();
    const gateNames = new Set(this.#leases.book.leases.map((l) => l.gate));
    return buildUsageView({
      tenantId: q.tenantId,
      days: q.days,
      config: q.config,
      now,
      ledger: this.#ledger,
      tenantInWindow: this.#tenantWindow.count(now),
      tenantResetSeconds: Math.ceil(this.#tenantWindow.msUntilOldestLeaves(now) / 1000),
      activeUsers: this.#users.active(now),
      leasedUnits: [...gateNames].reduce((n, g) => n + this.#leases.book.remaining(g, now), 0),
    });
  }

  /** Resolves once background lease traffic has finished (tests and the bench wait on it). */
  async drain(): Promise<void> {
    await this.#leases.drain();
  }

  /**
   * Deletes the whole storage of a purged tenant's gate (src/privacy/purge.ts), then resets the
   * instance: its in-memory windows and prepared tables must not outlive the storage. The reset
   * rejects this call with PURGED_GATE, which the caller takes as success.
   */
  async purge(): Promise<void> {
    this.#group.flush();
    await this.#leases.drain();
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.ctx.abort(PURGED_GATE);
    throw new Error(PURGED_GATE);
  }

  /** Refunds expired reservations, gives back spent or expired leases, prunes old rows. */
  override async alarm(): Promise<void> {
    // Expiry, the fold and pruning read the admission rows: the waiting batch goes first.
    this.#group.flush();
    this.#alarmAt = undefined;
    const now = this.#now();
    try {
      for (const r of [...this.#ledger.open.values()]) {
        if (r.expiresAt <= now) {
          this.#ledger.release(r);
          this.#store.expire(r.seq, now);
        }
      }
      this.#leases.closeDone(now);
      this.#users.sweep(now);
      this.#foldRollup();
      if (now - this.#lastPrune >= WINDOW_MS) this.#prune(now);
      if (this.#tenantId) await this.#leases.reportClosed(this.#tenantId);
    } finally {
      this.#scheduleNext();
    }
  }

  #decide(input: AdmitInput, lastRound: boolean): AdmitResult | typeof NEED_LEASE {
    const now = this.#now();
    const cfg = input.config;
    // A tool-loop step of an admitted message: budgets as ever, no second request in any window.
    // A message no model answers is never one: it always takes its place in the windows.
    const step = !input.unpriced && input.continues !== undefined && this.#continues(input.continues, input);
    const userWindow = step ? 0 : this.#users.count(input.userId, now);
    if (userWindow >= cfg.userRateLimitPerMinute) {
      const ms = this.#users.of(input.userId).msUntilBelow(cfg.userRateLimitPerMinute, now);
      return rateRefusal("user", cfg.userRateLimitPerMinute, ms, this.#rateLevels(input, now));
    }
    const tenantWindow = step ? 0 : this.#tenantWindow.count(now);
    if (tenantWindow >= cfg.rateLimitPerMinute) {
      const ms = this.#tenantWindow.msUntilBelow(cfg.rateLimitPerMinute, now);
      return rateRefusal("tenant", cfg.rateLimitPerMinute, ms, this.#rateLevels(input, now));
    }
    const day = localDay(now, cfg.timezone);
    const month = monthOf(day);
    const conv = input.conversationId;
    // A message no model answers spends no budget: a visitor whose budget is spent can still ask
    // for a human.
    const plan = input.unpriced
      ? {
          ok: true as const,
          model: input.model,
          maxTokens: 0,
          tokens: 0,
          nanos: 0,
          degraded: [],
          budget: null,
        }
      : planBudget(
          {
            model: input.model,
            fallbackModel: cfg.fallbackModel,
            inputTokens: input.inputTokens,
            maxTokens: input.maxTokens,
            overrides: cfg.pricingOverrides,
          },
          headroom(this.#ledger, cfg, day, conv, input.userId),
        );
    if (!plan.ok) {
      const levels = this.#rateLevels(input, now);
      return budgetRefusal(plan.budget, now, cfg, mostConstrained(levels), levels);
    }
    const lease = step ? null : this.#leases.take(input.global.gate, now);
    if (lease === undefined) {
      const exhausted = this.#leases.exhausted(now);
      if (exhausted === undefined && !lastRound) return NEED_LEASE;
      const levels = this.#rateLevels(input, now);
      return rateRefusal("global", input.global.limitPerMinute, exhausted ?? 1_000, levels);
    }
    this.#seq += 1;
    const r: Reservation = {
      seq: this.#seq,
      tag: randomTag(),
      ts: now,
      user: input.userId,
      conv,
      model: plan.model,
      day,
      month,
      tokens: plan.tokens,
      nanos: plan.nanos,
      expiresAt: now + (input.ttlMs ?? RESERVATION_TTL_MS),
      lease,
    };
    if (input.unpriced) {
      // Closed as it is made: its row carries the timestamp the windows are rebuilt from, and
      // nothing for the budgets or the usage figures.
      this.#group.add(() => this.#store.insertUnpriced(r, now));
    } else {
      this.#group.add(() => this.#store.insertAdmission(r));
      this.#ledger.reserve(r);
      this.#ensureAlarm(r.expiresAt);
    }
    if (!step) {
      this.#users.of(r.user).push(now);
      this.#tenantWindow.push(now);
    }
    if (!step) this.#leases.prefetch(input.tenantId, input.global, cfg.rateLimitPerMinute, now);
    const levels = this.#rateLevels(input, now);
    return {
      ok: true,
      reservationId: `rsv_${r.seq.toString(36)}_${r.tag}`,
      model: plan.model,
      maxTokens: plan.maxTokens,
      requestedModel: input.model,
      requestedMaxTokens: input.maxTokens,
      degraded: plan.degraded,
      budget: plan.budget,
      reservedTokens: plan.tokens,
      reservedCostUsd: usd(plan.nanos),
      expiresAt: r.expiresAt,
      rateLimit: mostConstrained(levels),
      rateLevels: levels,
    };
  }

  /**
   * Whether `reservationId` is an admission of the same conversation and end user, so a step may
   * continue it; anything else is refused, so a forged id cannot buy a message past the windows.
   */
  #continues(reservationId: string, input: AdmitInput): true {
    const m = RESERVATION_ID.exec(reservationId);
    const seq = Number.parseInt(m?.[1] ?? "", 36);
    const open = this.#ledger.open.get(seq);
    const row = open && open.tag === m?.[2] ? open : this.#findAdmission(seq);
    if (!row || row.tag !== m?.[2] || row.conv !== input.conversationId || row.user !== input.userId) {
      throw new Rejection<GateErrorCode>("INVALID_INPUT", `no admission ${reservationId} to continue`);
    }
    return true;
  }

  /**
   * Every rate level in force, as the windows stand now: user and tenant with what is left and when
   * the oldest admission leaves; global with its limit only (this gate holds a lease, not the count).
   */
  #rateLevels(input: AdmitInput, now: number): RateLevelInfo[] {
    const cfg = input.config;
    const windowSeconds = WINDOW_MS / 1000;
    return [
      {
        level: "user",
        limit: cfg.userRateLimitPerMinute,
        windowSeconds,
        remaining: Math.max(0, cfg.userRateLimitPerMinute - this.#users.count(input.userId, now)),
        resetSeconds: Math.ceil(this.#users.msUntilOldestLeaves(input.userId, now) / 1000),
      },
      {
        level: "tenant",
        limit: cfg.rateLimitPerMinute,
        windowSeconds,
        remaining: Math.max(0, cfg.rateLimitPerMinute - this.#tenantWindow.count(now)),
        resetSeconds: Math.ceil(this.#tenantWindow.msUntilOldestLeaves(now) / 1000),
      },
      {
        level: "global",
        limit: input.global.limitPerMinute,
        windowSeconds,
        remaining: null,
        resetSeconds: null,
      },
    ];
  }

  #settle(item: SettleItem, now: number): SettleResult {
    const m = RESERVATION_ID.exec(item.reservationId);
    const seq = Number.parseInt(m?.[1] ?? "", 36);
    const tag = m?.[2];
    const open = this.#ledger.open.get(seq);
    const row = open && open.tag === tag ? undefined : this.#findAdmission(seq);
    if (!(open && open.tag === tag) && (!row || row.tag !== tag)) {
      throw new Rejection<GateErrorCode>("NOT_FOUND", `no reservation ${item.reservationId}`);
    }
    const u = item.usage;
    if (row && row.state === "settled") {
      return {
        reservationId: item.reservationId,
        status: "duplicate",
        costUsd: usd(row.actNanos),
        inputTokens: row.actIn,
        outputTokens: row.actOut,
        overrunTokens: Math.max(0, row.actIn + row.actOut - row.resTokens),
      };
    }
    const nanos = costNanos(priceOf(u.model, this.#overrides), u.inputTokens, u.outputTokens);
    const day = open ? open.day : (row as { day: string }).day;
    const conv = open ? open.conv : (row as { conv: string }).conv;
    const user = open ? open.user : (row as { user: string }).user;
    const reserved = open ? open.tokens : (row as { resTokens: number }).resTokens;
    if (open) this.#ledger.release(open);
    this.#ledger.commit(day, conv, user, u.inputTokens, u.outputTokens, nanos);
    this.#settleNo += 1;
    const settleNo = this.#settleNo;
    this.#group.add(() => this.#store.settle(seq, u, nanos, now, settleNo));
    if (this.#rollup.empty) this.#ensureAlarm(now + ROLLUP_MS);
    this.#rollup.add({
      day,
      conv,
      user,
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      nanos,
      at: now,
      settleNo: this.#settleNo,
    });
    return {
      reservationId: item.reservationId,
      status: open ? "settled" : "late",
      costUsd: usd(nanos),
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      overrunTokens: Math.max(0, u.inputTokens + u.outputTokens - reserved),
    };
  }

  /**
   * A call that may write has arrived. While a lease request is out, its writes do not wait for a
   * batch: admissions then run as they did before group commit, each answer leaving with its own
   * commit, which keeps a burst's lease requests and answers in the order the lease protocol was
   * built and measured with (test/worker/admission/global.test.ts).
   */
  #arrive(): void {
    this.#group.arrive(this.#now(), this.#leases.asking);
  }

  /** An admission's row, with every write of the waiting batch in it (a settlement may be there). */
  #findAdmission(seq: number) {
    this.#group.flush();
    return this.#store.findAdmission(seq);
  }

  #ensureAlarm(at: number): void {
    if (this.#alarmAt !== undefined && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    this.ctx.storage.setAlarm(at);
  }

  #scheduleNext(): void {
    const now = this.#now();
    let at = Number.POSITIVE_INFINITY;
    for (const r of this.#ledger.open.values()) at = Math.min(at, r.expiresAt);
    at = Math.min(at, this.#leases.book.nextExpiry() ?? at);
    if (this.#store.closedLeases().length > 0) at = Math.min(at, now + 5_000);
    if (!this.#rollup.empty) at = Math.min(at, now + ROLLUP_MS);
    const oldest = this.#store.oldestAdmission();
    if (oldest !== undefined) at = Math.min(at, Math.max(oldest + ROW_RETENTION_MS, now + WINDOW_MS));
    if (Number.isFinite(at)) this.#ensureAlarm(at);
  }

  /** Writes the pending day, conversation and visitor deltas in one go (this event's single commit). */
  #foldRollup(): void {
    if (this.#rollup.empty) return;
    this.#store.rollup(this.#rollup);
    this.#rollup.clear();
  }

  #prune(now: number): void {
    this.#lastPrune = now;
    const today = localDay(now, "UTC");
    const oldestDay = lastDays(today, DAY_RETENTION).at(-1) ?? today;
    // Visitors' totals of this month and the last (a late settlement may still land there), in
    // any time zone: a month before that cannot be current anywhere.
    const oldestMonth = monthOf(lastDays(today, VISITOR_MONTH_RETENTION_DAYS).at(-1) ?? today);
    this.#store.prune(
      now - ROW_RETENTION_MS,
      now - CONVERSATION_RETENTION_MS,
      oldestDay,
      oldestMonth,
      this.#seq,
    );
    this.#ledger.dropDaysBefore(oldestDay);
  }

  #bind(tenantId: string): void {
    if (this.#tenantId === tenantId) return;
    if (this.#tenantId !== undefined) {
      throw new Rejection<GateErrorCode>(
        "CONFLICT",
        `this gate belongs to tenant ${this.#tenantId}, not ${tenantId}`,
      );
    }
    this.#tenantId = tenantId;
    this.#store.setMeta("tenant", tenantId);
  }

  /** Keeps the latest config: settlements price actual usage with the tenant's overrides. */
  #remember(config: AdmissionConfig): void {
    if (config === this.#remembered) return;
    this.#remembered = config;
    const json = JSON.stringify(config.pricingOverrides);
    if (json === this.#configJson) return;
    this.#configJson = json;
    this.#overrides = config.pricingOverrides;
    this.#store.setMeta("pricing", json);
  }

  /** The gate's clock, never going backwards (window queues rely on it). */
  #now(): number {
    const t = this.clock.now();
    if (t > this.#lastNow) this.#lastNow = t;
    return this.#lastNow;
  }

  #load(): void {
    const s = this.#store;
    s.init();
    this.#addresses.init();
    this.#tenantId = s.meta("tenant");
    this.#configJson = s.meta("pricing");
    if (this.#configJson) this.#overrides = JSON.parse(this.#configJson) as PricingOverrides;
    this.#seq = s.maxSeq();
    const now = this.#now();
    const oldestDay = lastDays(localDay(now, "UTC"), DAY_RETENTION + 2).at(-1) ?? "";
    for (const [day, totals] of s.days(oldestDay)) this.#ledger.loadDay(day, totals);
    // Settlements after the last checkpoint live only in their rows: replay them into memory.
    this.#settleNo = s.maxSettleNo();
    for (const st of s.settledAfter(s.rolledThrough())) {
      this.#ledger.commit(st.day, st.conv, st.user, st.inputTokens, st.outputTokens, st.nanos);
      this.#rollup.add(st);
    }
    for (const r of s.openReservations()) this.#ledger.reserve(r);
    for (const e of s.recentEvents(now - WINDOW_MS)) {
      this.#users.of(e.user).push(e.ts);
      this.#tenantWindow.push(e.ts);
    }
    this.#leases.load();
  }
}

// Random words drawn 256 at a time: one getRandomValues call per admission cost about as much as
// the admission's SQL insert (bench/admission.ts profile).
const tags = new Uint32Array(256);
let nextTag = tags.length;

function randomTag(): string {
  if (nextTag === tags.length) {
    crypto.getRandomValues(tags);
    nextTag = 0;
  }
  const word = tags[nextTag] ?? 0;
  nextTag += 1;
  return word.toString(16).padStart(8, "0");
}

/** Deep equality of plain data (plain objects, arrays and primitives) as RPC delivers it. */
function samePlain(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const proto = Object.getPrototypeOf(a);
  if (proto !== Object.getPrototypeOf(b) || (proto !== Object.prototype && proto !== Array.prototype))
    return false;
  // Counted with for-in, not Object.keys: this runs on every admit, and plain data has no
  // inherited enumerable keys.
  let keys = 0;
  for (const k in a) {
    if (!Object.hasOwn(b, k)) return false;
    if (!samePlain((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    keys++;
  }
  for (const _ in b) keys--;
  return keys === 0;
}

/** The legacy RateLimit-* values: whichever of the user and tenant levels has less room (user on a tie). */
function mostConstrained(levels: RateLevelInfo[]): RateLimitInfo {
  const [user, tenant] = levels.filter((l) => l.level === "user" || l.level === "tenant");
  const pick = tenant && user && (tenant.remaining ?? 0) < (user.remaining ?? 0) ? tenant : user;
  if (!pick) throw new Error("no user level");
  return {
    level: pick.level,
    limit: pick.limit,
    remaining: pick.remaining ?? 0,
    resetSeconds: pick.resetSeconds ?? 0,
  };
}
