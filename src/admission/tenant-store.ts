import type { DayTotals, Reservation } from "./budget";
import type { Lease } from "./lease";
import { monthOf } from "./periods";
import type { PendingRollup, Settled } from "./rollup";
import { REQUEST_CONVERSATION } from "./types";

/** An admission row as settlement needs it once its reservation is no longer in memory. */
export interface AdmissionRow {
  seq: number;
  tag: string;
  user: string;
  conv: string;
  day: string;
  resTokens: number;
  state: "open" | "settled" | "expired";
  actModel: string | null;
  actIn: number;
  actOut: number;
  actNanos: number;
}

const STATES = ["open", "settled", "expired"] as const;
const OPEN = 0;
const SETTLED = 1;
const EXPIRED = 2;

type Row = Record<string, SqlStorageValue>;

/** The first key after every request-scoped conversation id (the prefix's last character, plus one). */
const REQUEST_CONVERSATION_END =
  REQUEST_CONVERSATION.slice(0, -1) +
  String.fromCharCode(REQUEST_CONVERSATION.charCodeAt(REQUEST_CONVERSATION.length - 1) + 1);

/**
 * The TenantGate's SQLite tables and every statement it runs. One row per admission doubles as
 * the sliding-window event (its timestamp), the reservation (its hold) and the settlement (its
 * actual usage), so an admission is one INSERT and a settlement one UPDATE of a recent row.
 * Per-day, per-conversation and per-visitor-month totals are checkpoints folded in by the alarm
 * (see rollup.ts).
 * Sequence numbers grow with time, so time ranges are key ranges.
 */
export class TenantStore {
  constructor(private readonly sql: SqlStorage) {}

  /** Creates the tables; called once, inside blockConcurrencyWhile. */
  init(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS admissions (
      seq INTEGER PRIMARY KEY, tag TEXT NOT NULL, ts INTEGER NOT NULL, user_id TEXT NOT NULL,
      conv_id TEXT NOT NULL, model TEXT NOT NULL, day TEXT NOT NULL, res_tokens INTEGER NOT NULL,
      res_nanos INTEGER NOT NULL, expires_at INTEGER NOT NULL, lease TEXT, state INTEGER NOT NULL DEFAULT 0,
      act_model TEXT, act_in INTEGER, act_out INTEGER, act_nanos INTEGER, closed_at INTEGER, settle_no INTEGER)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS usage_day (day TEXT PRIMARY KEY, input_tokens INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL, nanos INTEGER NOT NULL, messages INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, nanos INTEGER NOT NULL,
      updated_at INTEGER NOT NULL)`);
    // Browser visitors' committed tokens per budget month (the visitor token share).
    this.sql.exec(`CREATE TABLE IF NOT EXISTS visitor_month (month TEXT NOT NULL, user_id TEXT NOT NULL,
      tokens INTEGER NOT NULL, PRIMARY KEY (month, user_id)) WITHOUT ROWID`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, gate TEXT NOT NULL,
      granted INTEGER NOT NULL, expires_at INTEGER NOT NULL, closed_used INTEGER)`);
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  }

  meta(k: string): string | undefined {
    return this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v;
  }

  setMeta(k: string, v: string): void {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v);
  }

  /** The highest sequence number in use (rows or the high-water mark kept across pruning). */
  maxSeq(): number {
    const row = this.sql.exec<{ m: number | null }>("SELECT MAX(seq) AS m FROM admissions").one();
    return Math.max(row.m ?? 0, Number(this.meta("seq") ?? 0));
  }

  insertAdmission(r: Reservation): void {
    this.sql.exec(
      `INSERT INTO admissions (seq, tag, ts, user_id, conv_id, model, day, res_tokens, res_nanos, expires_at, lease)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.seq,
      r.tag,
      r.ts,
      r.user,
      r.conv,
      r.model,
      r.day,
      r.tokens,
      r.nanos,
      r.expiresAt,
      r.lease,
    );
  }

  /**
   * The row of a message no model answers (AdmitInput.unpriced): settled at nothing as it is made,
   * with no settle number, so no rollup or restart counts it in the usage figures; its timestamp
   * counts in the windows like any admission's.
   */
  insertUnpriced(r: Reservation, now: number): void {
    this.insertAdmission(r);
    this.sql.exec(
      `UPDATE admissions SET state = ?, act_model = model, act_in = 0, act_out = 0, act_nanos = 0, closed_at = ?
       WHERE seq = ?`,
      SETTLED,
      now,
      r.seq,
    );
  }

  findAdmission(seq: number): AdmissionRow | undefined {
    const r = this.sql
      .exec(
        `SELECT seq, tag, user_id, conv_id, day, res_tokens, state, act_model, act_in, act_out, act_nanos
         FROM admissions WHERE seq = ?`,
        seq,
      )
      .toArray()[0];
    if (!r) return undefined;
    return {
      seq: Number(r.seq),
      tag: String(r.tag),
      user: String(r.user_id),
      conv: String(r.conv_id),
      day: String(r.day),
      resTokens: Number(r.res_tokens),
      state: STATES[Number(r.state)] ?? "open",
      actModel: r.act_model === null ? null : String(r.act_model),
      actIn: Number(r.act_in ?? 0),
      actOut: Number(r.act_out ?? 0),
      actNanos: Number(r.act_nanos ?? 0),
    };
  }

  /** Marks an admission settled with its actual usage; the day and conversation totals follow at rollup. */
  settle(
    seq: number,
    u: { model: string; inputTokens: number; outputTokens: number },
    nanos: number,
    now: number,
    settleNo: number,
  ): void {
    this.sql.exec(
      `UPDATE admissions SET state = ?, act_model = ?, act_in = ?, act_out = ?, act_nanos = ?, closed_at = ?,
         settle_no = ? WHERE seq = ?`,
      SETTLED,
      u.model,
      u.inputTokens,
      u.outputTokens,
      nanos,
      now,
      settleNo,
      seq,
    );
  }

  /** Folds pending settlements into the day, conversation and visitor tables and moves the checkpoint. */
  rollup(p: PendingRollup): void {
    for (const [day, t] of p.days) {
      this.sql.exec(
        `INSERT INTO usage_day (day, input_tokens, output_tokens, nanos, messages) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(day) DO UPDATE SET input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens, nanos = nanos + excluded.nanos,
           messages = messages + excluded.messages`,
        day,
        t.inputTokens,
        t.outputTokens,
        t.nanos,
        t.messages,
      );
    }
    for (const [conv, c] of p.convs) {
      this.sql.exec(
        `INSERT INTO conversations (id, nanos, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET nanos = nanos + excluded.nanos, updated_at = excluded.updated_at`,
        conv,
        c.nanos,
        c.at,
      );
    }
    for (const v of p.visitors.values()) {
      this.sql.exec(
        `INSERT INTO visitor_month (month, user_id, tokens) VALUES (?, ?, ?)
         ON CONFLICT(month, user_id) DO UPDATE SET tokens = tokens + excluded.tokens`,
        v.month,
        v.user,
        v.tokens,
      );
    }
    this.setMeta("rolled", String(p.lastSettleNo));
  }

  /** The checkpoint: settlements numbered up to this are in the day and conversation tables. */
  rolledThrough(): number {
    return Number(this.meta("rolled") ?? 0);
  }

  /** The highest settle number used (rows or checkpoint). */
  maxSettleNo(): number {
    const row = this.sql.exec<{ m: number | null }>("SELECT MAX(settle_no) AS m FROM admissions").one();
    return Math.max(row.m ?? 0, this.rolledThrough());
  }

  /** Settlements after the checkpoint, in order: replayed into memory on start. */
  settledAfter(settleNo: number): Settled[] {
    const rows = this.sql.exec<Row>(
      `SELECT day, user_id, conv_id, act_in, act_out, act_nanos, closed_at, settle_no FROM admissions
       WHERE settle_no > ? ORDER BY settle_no`,
      settleNo,
    );
    return [...rows].map((r) => ({
      day: String(r.day),
      conv: String(r.conv_id),
      user: String(r.user_id),
      inputTokens: Number(r.act_in),
      outputTokens: Number(r.act_out),
      nanos: Number(r.act_nanos),
      at: Number(r.closed_at),
      settleNo: Number(r.settle_no),
    }));
  }

  expire(seq: number, now: number): void {
    this.sql.exec(
      "UPDATE admissions SET state = ?, closed_at = ? WHERE seq = ? AND state = ?",
      EXPIRED,
      now,
      seq,
      OPEN,
    );
  }

  conversationNanos(conv: string): number {
    const r = this.sql
      .exec<{ nanos: number }>("SELECT nanos FROM conversations WHERE id = ?", conv)
      .toArray()[0];
    return r?.nanos ?? 0;
  }

  /** A browser visitor's committed tokens in a budget month, as of the last rollup. */
  visitorTokens(month: string, user: string): number {
    const r = this.sql
      .exec<{ tokens: number }>(
        "SELECT tokens FROM visitor_month WHERE month = ? AND user_id = ?",
        month,
        user,
      )
      .toArray()[0];
    return r?.tokens ?? 0;
  }

  /** Committed usage per day, for days from `oldest` on. */
  days(oldest: string): Array<[string, DayTotals]> {
    const rows = this.sql.exec<Row>(
      "SELECT day, input_tokens, output_tokens, nanos, messages FROM usage_day WHERE day >= ?",
      oldest,
    );
    return [...rows].map((r) => [
      String(r.day),
      {
        inputTokens: Number(r.input_tokens),
        outputTokens: Number(r.output_tokens),
        nanos: Number(r.nanos),
        messages: Number(r.messages),
      },
    ]);
  }

  /** Reservations still open. */
  openReservations(): Reservation[] {
    const rows = this.sql.exec<Row>(
      `SELECT seq, tag, ts, user_id, conv_id, model, day, res_tokens, res_nanos, expires_at, lease
       FROM admissions WHERE state = ?`,
      OPEN,
    );
    return [...rows].map((r) => ({
      seq: Number(r.seq),
      tag: String(r.tag),
      ts: Number(r.ts),
      user: String(r.user_id),
      conv: String(r.conv_id),
      model: String(r.model),
      day: String(r.day),
      month: monthOf(String(r.day)),
      tokens: Number(r.res_tokens),
      nanos: Number(r.res_nanos),
      expiresAt: Number(r.expires_at),
      lease: r.lease === null ? null : String(r.lease),
    }));
  }

  /** Admissions after `since`, oldest first: the sliding windows' events. */
  recentEvents(since: number): Array<{ ts: number; user: string }> {
    const out: Array<{ ts: number; user: string }> = [];
    // Newest first by key, stopping at the first older row: timestamps grow with the sequence.
    for (const r of this.sql.exec<{ ts: number; user_id: string }>(
      "SELECT ts, user_id FROM admissions ORDER BY seq DESC",
    )) {
      if (r.ts <= since) break;
      out.push({ ts: r.ts, user: r.user_id });
    }
    return out.reverse();
  }

  /** Leases held, live and closed-but-unreported, with how many admissions each paid for. */
  leases(): Array<Lease & { closed: boolean }> {
    const rows = this.sql.exec<Row>(
      `SELECT l.id, l.gate, l.granted, l.expires_at, l.closed_used,
         (SELECT COUNT(*) FROM admissions a WHERE a.lease = l.id) AS used FROM leases l`,
    );
    return [...rows].map((r) => ({
      id: String(r.id),
      gate: String(r.gate),
      granted: Number(r.granted),
      used: r.closed_used === null ? Number(r.used) : Number(r.closed_used),
      expiresAt: Number(r.expires_at),
      closed: r.closed_used !== null,
    }));
  }

  insertLease(l: Lease): void {
    this.sql.exec(
      "INSERT INTO leases (id, gate, granted, expires_at) VALUES (?, ?, ?, ?)",
      l.id,
      l.gate,
      l.granted,
      l.expiresAt,
    );
  }

  closeLease(l: Lease): void {
    this.sql.exec("UPDATE leases SET closed_used = ? WHERE id = ?", l.used, l.id);
  }

  /** Closed leases not yet reported to their GlobalGate. */
  closedLeases(): Array<{ id: string; gate: string; used: number }> {
    const rows = this.sql.exec<Row>("SELECT id, gate, closed_used FROM leases WHERE closed_used IS NOT NULL");
    return [...rows].map((r) => ({ id: String(r.id), gate: String(r.gate), used: Number(r.closed_used) }));
  }

  deleteLeases(ids: string[]): void {
    for (const id of ids) this.sql.exec("DELETE FROM leases WHERE id = ?", id);
  }

  /** The timestamp of the oldest admission row kept (undefined when none). */
  oldestAdmission(): number | undefined {
    return this.sql.exec<{ ts: number }>("SELECT ts FROM admissions ORDER BY seq LIMIT 1").toArray()[0]?.ts;
  }

  /**
   * Deletes closed admissions older than `before` (callers roll up first, so every settlement in
   * them is already in the totals), conversations idle since `idle` (request-scoped ones idle since
   * `before`), days before `oldestDay`, visitors' totals of months before `oldestMonth`.
   */
  prune(before: number, idle: number, oldestDay: string, oldestMonth: string, seqHighWater: number): void {
    this.setMeta("seq", String(seqHighWater));
    const first = this.sql
      .exec<{ seq: number }>("SELECT seq FROM admissions WHERE ts >= ? ORDER BY seq LIMIT 1", before)
      .toArray()[0]?.seq;
    this.sql.exec("DELETE FROM admissions WHERE seq < ? AND state <> ?", first ?? seqHighWater + 1, OPEN);
    this.sql.exec("DELETE FROM conversations WHERE updated_at < ?", idle);
    // A key range of the primary key: only request-scoped rows are read.
    this.sql.exec(
      "DELETE FROM conversations WHERE id >= ? AND id < ? AND updated_at < ?",
      REQUEST_CONVERSATION,
      REQUEST_CONVERSATION_END,
      before,
    );
    this.sql.exec("DELETE FROM usage_day WHERE day < ?", oldestDay);
    this.sql.exec("DELETE FROM visitor_month WHERE month < ?", oldestMonth);
  }
}
