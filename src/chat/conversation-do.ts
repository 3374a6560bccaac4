import { DurableObject } from "cloudflare:workers";
import type { AddressedAdmission, AddressHit } from "../admission/address-windows";
import { gateStub } from "../admission/client";
import type { GateOutcome } from "../admission/types";
import type { ConversationEvent, FeedbackEvent, InboxEvent } from "../analytics/events";
import { sha256Hex } from "../auth/keys";
import { Clock } from "../clock";
import type { RawEnv } from "../env";
import { type FrameCredit, RESUME_COST, spendFrame } from "../handoff/frame-credit";
import type { Holder, LiveClientFrame, LiveServerFrame, TranscriptEntry } from "../handoff/types";
import { inboxStatus } from "../handoff/types";
import { guard, Rejection, type Outcome as RpcOutcome } from "../outcome";
import { preloaded } from "../preload";
import type {
  ConversationState,
  ConversationView,
  EscalationNotice,
  HandoffActor,
  HandoffResult,
  HistoryMessage,
  PrepareResult,
  StartInput,
  StoredMessage,
  TurnCall,
  TurnCallResult,
  TurnInput,
  TurnResult,
} from "./conversation-types";

/** The input shapes (zod), loaded when an object starts, not when the isolate does (bench/startup.ts). */
const shapes = preloaded(() => import("./conversation-schemas"));

/** Two failed answers in a row hand the conversation to a human. */
const FAILURES_BEFORE_ESCALATION = 2;
/** Ratings a conversation records; a repeat of the last one is not counted (docs/chat.md). */
export const RATINGS_PER_CONVERSATION = 5;

interface Meta {
  conversationId: string;
  tenantId: string;
  userId: string;
  channel: string;
  state: ConversationState;
  startedAt: number;
  lastActivityAt: number;
  endedAt: number | null;
  idleTimeoutMs: number;
  turnCount: number;
  totalTokens: number;
  totalCostUsd: number;
  latencySumMs: number;
  answeredTurns: number;
  errorCount: number;
  consecutiveFailures: number;
  toolsUsed: string[];
  experiment: string | null;
  variant: string | null;
  csat: number | null;
  /** Ratings recorded (feedback events sent); absent in conversations stored before the cap: 0. */
  ratings?: number;
  /** The comment of the rating recorded last, to tell a repeat of it from a change. */
  ratedComment?: string | null;
  escalationEmail: string;
  /** How long the transcript outlives the last activity (docs/privacy.md); absent: until the cron's sweep. */
  retentionMs?: number;
  // Human handoff (docs/handoff.md). Conversations stored before it read the defaults.
  holder: Holder | null;
  /** Set on escalation, cleared on takeover. */
  waitingSince: number | null;
  /** When a human was first asked for: the first escalation, else the first takeover. */
  askedAt: number | null;
  /** It was escalated at some point (a takeover or a hand-back since does not undo that). */
  wasEscalated: boolean;
  takenAt: number | null;
  firstHumanReplyAt: number | null;
  humanHandled: boolean;
  resolvedBy: "human" | "bot" | null;
  /** The highest seq an inbox event carried: the next one carries the entries after it. */
  inboxSeq: number;
  /**
   * The newest message's seq when this meta was last saved whole. A plain turn does not save it:
   * its counters ride on the turn's own row (TURN_FIELDS), and a row after this seq that carries
   * them is newer than the saved meta. Absent in meta saved before turns carried their counters.
   */
  savedSeq?: number;
}

/**
 * What a plain turn changes in the meta: stored on the turn's last message row (`turn_meta`), not
 * by rewriting the meta row, so a turn's commit writes the one page its messages go to, not two
 * (the meta is a table of its own: docs/chat.md, "Sixth pass"), and three billed rows become two.
 * Anything else a turn changes (an escalation, a state) saves the whole meta as before.
 */
const TURN_FIELDS = [
  "turnCount",
  "totalTokens",
  "totalCostUsd",
  "lastActivityAt",
  "latencySumMs",
  "answeredTurns",
  "errorCount",
  "consecutiveFailures",
  "toolsUsed",
  "escalationEmail",
  "inboxSeq",
] as const satisfies readonly (keyof Meta)[];
type TurnCounters = Pick<Meta, (typeof TURN_FIELDS)[number]>;

const HANDOFF_DEFAULTS = {
  holder: null,
  waitingSince: null,
  askedAt: null,
  wasEscalated: false,
  takenAt: null,
  firstHumanReplyAt: null,
  humanHandled: false,
  resolvedBy: null,
  inboxSeq: 0,
} satisfies Partial<Meta>;

/** A live socket's state, kept in its attachment so it survives the object's hibernation. */
interface LiveAttachment extends FrameCredit {
  kind: "operator" | "visitor";
  /** Set once the client sent `resume`: only then are entries pushed to it. */
  resumed: boolean;
  /** The highest seq sent on this socket: nothing at or below it is sent again. */
  sent: number;
  /**
   * Operators: when the socket must reconnect. Only the worker can check a session (Postgres),
   * and only when a socket opens, so an operator's socket is closed at this age (4001) and the
   * console reconnects through the check, resuming by seq: a revoked session reads no longer.
   */
  until?: number;
  /**
   * Operators: the console session the socket was opened under (its id, not its token). When the
   * session ends the worker tells the object (`closeSessions`), which closes the socket at once.
   */
  session?: string;
}

/**
 * The entries (visitor messages, answers, operators' and system notes) at which a conversation
 * stops taking visitor messages: the next is refused (409) and the visitor starts a new
 * conversation. It bounds what one conversation keeps in memory and storage, sums on every call
 * and sends whole to a transcript read, whoever writes to it in a loop.
 */
export const MAX_CONVERSATION_ENTRIES = 500;
/** How many live sockets one conversation holds (operators' tabs and the visitor's). */
const MAX_SOCKETS = 32;
/** Of which the visitor's: the rest, 24, are the operators'. */
const MAX_VISITOR_SOCKETS = 8;
/** Tries of a queue message sent after its change is stored (`#sendAfterCommit`). */
const SEND_ATTEMPTS = 3;
/** How long an operator's socket lives before it must reconnect (and pass the session check again). */
export const OPERATOR_SOCKET_MS = 10 * 60_000;
/** At most this many entries in one inbox event; the rest follow in the next. */
const INBOX_BATCH = 200;
/**
 * At most this many characters of entries in one inbox event, and of one entry (the index keeps an
 * entry's start; the transcript keeps it whole), counted as JSON writes them (an escape such as
 * `\u0001` is six). A queue message holds 128 KB: 24,000 such characters are at most 72 KB of
 * UTF-8, and 200 entries' other fields about 20 KB more.
 */
const INBOX_EVENT_CHARS = 24_000;
/** Of an escalation notice's transcript (as JSON counts them): the newest entries, each cut to NOTICE_ENTRY_CHARS. */
const NOTICE_TRANSCRIPT_CHARS = 24_000;
const NOTICE_ENTRY_CHARS = 4_000;
/**
 * How long a turn's inbox event waits for the next turns': one event then carries them all. Each
 * event costs a queue send here and its ingest in the consumer; a visitor writes several messages
 * a minute, and the inbox is a list read by people, not a live view (the sockets are).
 */
const INBOX_DELAY_MS = 250;

export type ConversationErrorCode = "not_found" | "ended" | "invalid" | "conflict";

/** Thrown inside the object for calls that do not fit the conversation; `guard` answers it. */
class ConversationError extends Rejection<ConversationErrorCode> {}

/** What every RPC method that can refuse its call answers (src/outcome.ts): the value, or why not. */
export type Outcome<T> = RpcOutcome<T, ConversationErrorCode>;

/** Parses DO input, turning schema failures into an `invalid` ConversationError. */
function parse<T>(
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  raw: unknown,
): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  throw new ConversationError(
    "invalid",
    r.error.issues.map((i) => `${i.path.map(String).join(".")}: ${i.message}`).join("; "),
  );
}

/**
 * One conversation: its history, turn count, state, timings and totals. It ends on request or
 * when idle (alarm) and then emits the reference design's ConversationMetrics to the analytics queue.
 */
export class Conversation extends DurableObject<RawEnv> {
  readonly clock = new Clock();
  #meta: Meta | undefined;
  #messages: StoredMessage[] = [];
  /** An inbox event is waiting out INBOX_DELAY_MS: entries added meanwhile go with it. */
  #inboxArmed = false;
  /** Whether the ended sessions' table exists (`closeSessions`); unknown until first asked. */
  #endedTable: boolean | undefined;

  constructor(ctx: DurableObjectState, env: RawEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      await shapes.load();
      const sql = ctx.storage.sql;
      // A conversation's storage exists only once it was started: reaching an unknown id (a probe,
      // a typo) reads, and writes nothing.
      const started = sql
        .exec("select 1 from sqlite_master where type = 'table' and name = 'meta'")
        .toArray().length;
      if (!started) return;
      const row = sql.exec<{ v: string }>("select v from meta where k = 1").toArray()[0];
      // Conversations stored before operators could write in them have no author column, and
      // those stored before turns carried their counters no turn_meta.
      const columns = sql.exec<{ name: string }>("select name from pragma_table_info('messages')").toArray();
      if (!columns.some((c) => c.name === "author")) sql.exec("alter table messages add column author text");
      if (!columns.some((c) => c.name === "turn_meta"))
        sql.exec("alter table messages add column turn_meta text");
      if (row) {
        const meta = { ...HANDOFF_DEFAULTS, ...(JSON.parse(row.v) as Partial<Meta>) } as Meta;
        // The turns recorded since the meta was saved whole: the newest one's counters are current.
        const turn = sql
          .exec<{ turn_meta: string }>(
            "select turn_meta from messages where idx > ? and turn_meta is not null order by idx desc limit 1",
            meta.savedSeq ?? 0,
          )
          .toArray()[0];
        if (turn) Object.assign(meta, JSON.parse(turn.turn_meta) as TurnCounters);
        this.#meta = meta;
      }
      for (const m of sql.exec<{
        idx: number;
        role: string;
        author: string | null;
        content: string;
        tokens: number;
        at: number;
        tool_calls: string | null;
      }>("select idx, role, author, content, tokens, at, tool_calls from messages order by idx")) {
        this.#messages.push({
          seq: m.idx,
          role: ROLES.has(m.role) ? (m.role as StoredMessage["role"]) : "user",
          author: m.author,
          content: m.content,
          tokens: m.tokens,
          at: m.at,
          ...(m.tool_calls ? { toolCalls: JSON.parse(m.tool_calls) } : {}),
        });
      }
    });
  }

  /**
   * Opens the conversation; calling it again for the same conversation is refused. Its inbox event
   * (the new conversation, no entries yet) goes back to the worker, which sends it packed with its
   * analytics, as a turn's does: a start costs the object no queue message of its own.
   */
  start(input: StartInput): Promise<Outcome<{ view: ConversationView; inbox?: InboxEvent }>> {
    return guard(() => this.#start(input));
  }

  async #start(input: StartInput): Promise<{ view: ConversationView; inbox?: InboxEvent }> {
    const s = parse(shapes.get().StartInput, input);
    if (this.#meta) throw new ConversationError("invalid", "conversation already exists");
    const sql = this.ctx.storage.sql;
    sql.exec(`create table if not exists meta (k integer primary key check (k = 1), v text not null)`);
    sql.exec(`create table if not exists messages (
      idx integer primary key, role text not null, content text not null, tokens integer not null,
      at integer not null, tool_calls text, author text, turn_meta text)`);
    const now = this.clock.now();
    this.#meta = {
      conversationId: s.conversationId,
      tenantId: s.tenantId,
      userId: s.userId,
      channel: s.channel,
      state: "open",
      startedAt: now,
      lastActivityAt: now,
      endedAt: null,
      idleTimeoutMs: s.idleTimeoutMs,
      turnCount: 0,
      totalTokens: 0,
      totalCostUsd: 0,
      latencySumMs: 0,
      answeredTurns: 0,
      errorCount: 0,
      consecutiveFailures: 0,
      toolsUsed: [],
      experiment: s.experiment,
      variant: s.variant,
      csat: null,
      escalationEmail: "",
      retentionMs: s.retentionMs,
      ...HANDOFF_DEFAULTS,
    };
    this.#save();
    await this.ctx.storage.setAlarm(now + s.idleTimeoutMs);
    return { view: this.#view(), inbox: this.#handInbox() };
  }

  /** The state and the newest history that fits in `budgetTokens`, in one call before a turn. */
  prepare(tenantId: string, budgetTokens: number): PrepareResult {
    const meta = this.#meta;
    if (!meta || meta.tenantId !== tenantId) return { ok: false, reason: "not_found" };
    if (isEnded(meta)) return { ok: false, reason: "ended", view: this.#view() };
    return { ok: true, view: this.#view(), history: this.#history(budgetTokens).history };
  }

  /** The newest history that fits in `budgetTokens`, and what it costs. */
  #history(budgetTokens: number): { history: HistoryMessage[]; tokens: number } {
    const picked: StoredMessage[] = [];
    let used = 0;
    for (let i = this.#messages.length - 1; i >= 0; i--) {
      const m = this.#messages[i] as StoredMessage;
      // Notices are for people; an operator's words are the assistant's side of the conversation.
      if (m.role === "system") continue;
      if (used + m.tokens > budgetTokens) break;
      used += m.tokens;
      picked.push(m);
    }
    // A history must not open with an assistant message (some providers refuse that).
    while (picked.length > 0 && (picked.at(-1) as StoredMessage).role !== "user")
      used -= (picked.pop() as StoredMessage).tokens;
    const history: HistoryMessage[] = [];
    for (let i = picked.length - 1; i >= 0; i--) {
      const m = picked[i] as StoredMessage;
      history.push(
        m.role === "user"
          ? { role: "user", content: m.content }
          : { role: "assistant", content: m.content, ...(m.toolCalls ? { toolCalls: m.toolCalls } : {}) },
      );
    }
    return { history, tokens: used };
  }

  /**
   * A message's one call before its model: `prepare`, and the tenant's gate asked from here (the
   * address count; admission when the conversation can take the message), so the worker makes one
   * round trip. Admission reserves exactly the history this answer returns: the snapshot is taken
   * before the gate is asked, so a turn recorded meanwhile cannot grow it.
   */
  async prepareTurn(tenantId: string, call: TurnCall): Promise<TurnCallResult> {
    let conversation: PrepareResult;
    let historyTokens = 0;
    const meta = this.#meta;
    // Another user's conversation does not exist for this one, ended or not: a 409 would tell.
    if (!meta || meta.tenantId !== tenantId || (call.owner !== undefined && meta.userId !== call.owner))
      conversation = { ok: false, reason: "not_found" };
    else if (isEnded(meta)) conversation = { ok: false, reason: "ended", view: this.#view() };
    else if (this.#messages.length >= MAX_CONVERSATION_ENTRIES)
      conversation = { ok: false, reason: "full", view: this.#view() };
    else {
      const h = this.#history(call.historyBudget);
      historyTokens = h.tokens;
      conversation = { ok: true, view: this.#view(), history: h.history };
    }
    // Admission counts the message against the conversation's own user. A message no model will
    // answer (one the worker says is, or any in a conversation an operator holds) is counted in
    // the rate windows with no tokens and no budget.
    const unpriced =
      call.admit?.unpriced === true || (conversation.ok && conversation.view.state === "human");
    const admit =
      conversation.ok && call.admit
        ? {
            ...call.admit,
            userId: conversation.view.userId,
            ...(unpriced
              ? { inputTokens: 0, unpriced: true as const }
              : { inputTokens: call.admit.inputTokens + historyTokens }),
          }
        : undefined;
    if (!admit && !call.address) return { conversation, historyTokens };
    const gate = gateStub(this.env, tenantId);
    try {
      const outcome: GateOutcome<AddressedAdmission> =
        admit && call.address
          ? await gate.admitAddressed(call.address, admit)
          : admit
            ? wrapOutcome(await gate.admit(admit), (admission) => ({ admission }))
            : wrapOutcome(await gate.hitAddress(call.address as AddressHit), (address) => ({ address }));
      return { conversation, historyTokens, gate: { reached: true, outcome } };
    } catch (err) {
      return { conversation, historyTokens, gate: { reached: false, error: String(err) } };
    }
  }

  /** Records one turn: both messages, the totals, and escalation when asked or after repeated failures. */
  recordTurn(tenantId: string, input: TurnInput): Promise<Outcome<TurnResult>> {
    return guard(() => this.#recordTurn(tenantId, input));
  }

  async #recordTurn(tenantId: string, t: TurnInput): Promise<TurnResult> {
    // Not parsed again: the object is reachable only through this worker's binding, and the one
    // caller (src/chat/conversation-message.ts) builds the turn from values it checked or counted
    // itself; the schema stays the type. Every message paid for a second zod walk of its text.
    const meta = this.#require(tenantId);
    if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
    const next = this.#lastSeq() + 1;
    const userMsg: StoredMessage = {
      seq: next,
      role: "user",
      content: t.user.content,
      tokens: t.user.tokens,
      at: t.at,
    };
    // A held conversation's turns carry no answer (src/chat/conversation-message.ts); one that was
    // streaming when an operator took over is kept: the visitor saw it.
    const answer: StoredMessage | undefined = t.assistant
      ? {
          seq: next + 1,
          role: "assistant",
          content: t.assistant.content,
          tokens: t.assistant.tokens,
          at: this.clock.now(),
          toolCalls: t.assistant.toolCalls,
        }
      : undefined;
    meta.turnCount += 1;
    meta.totalTokens += t.inputTokens + t.outputTokens;
    meta.totalCostUsd += t.costUsd;
    meta.lastActivityAt = this.clock.now();
    meta.escalationEmail = t.escalationEmail;
    if (t.outcome === "ok") {
      meta.answeredTurns += 1;
      meta.latencySumMs += t.latencyMs;
      meta.consecutiveFailures = 0;
    } else if (t.outcome === "error") {
      meta.errorCount += 1;
      meta.consecutiveFailures += 1;
    }
    for (const tool of t.toolsUsed) if (!meta.toolsUsed.includes(tool)) meta.toolsUsed.push(tool);
    let reason = t.escalate;
    if (!reason && meta.consecutiveFailures >= FAILURES_BEFORE_ESCALATION)
      reason = "the assistant failed twice in a row";
    const escalatedNow = reason !== undefined && meta.state === "open";
    if (escalatedNow) {
      meta.state = "escalated";
      meta.waitingSince = meta.lastActivityAt;
      meta.askedAt ??= meta.lastActivityAt;
      meta.wasEscalated = true;
    }

    // In memory first: a plain turn's inbox event (below) is made from them, and its mark is
    // stored with the turn. Both are taken back if the write fails.
    const added = answer ? [userMsg, answer] : [userMsg];
    const mark = meta.inboxSeq;
    this.#messages.push(...added);
    // An escalation puts the conversation in the inbox's waiting list: that one goes at once, from
    // here. A plain turn's inbox event goes back to the worker, which sends it packed with the
    // turn's analytics (one queue message for many turns, src/analytics/pack.ts), not alone.
    const inbox = escalatedNow ? undefined : this.#handInbox();
    try {
      this.ctx.storage.transactionSync(() => {
        if (escalatedNow) {
          for (const m of added) this.#insert(m);
          this.#save();
        } else {
          // The turn's counters ride on its last row: one page written, not the meta's too.
          const counters = Object.fromEntries(TURN_FIELDS.map((k) => [k, meta[k]])) as TurnCounters;
          for (const m of added) this.#insert(m, m === added.at(-1) ? counters : undefined);
        }
      });
    } catch (err) {
      this.#messages.length -= added.length;
      meta.inboxSeq = mark;
      throw err;
    }
    this.#deliver(escalatedNow);
    // The idle alarm is not moved on every turn (a storage write each time): when it fires early
    // it re-arms itself for lastActivityAt + idleTimeoutMs.
    if (escalatedNow && reason) {
      const notice = this.#escalationNotice(meta, reason, t.origin);
      this.#sendAfterCommit("escalation notice", () =>
        this.env.NOTIFY_QUEUE.send(notice, { contentType: "json" }),
      );
    }
    if (escalatedNow) this.#index(true);
    return { view: this.#view(), escalatedNow, consecutiveFailures: meta.consecutiveFailures, inbox };
  }

  /** Ends the conversation once and emits its summary; ending again returns the same view. */
  end(tenantId: string, input: { resolved: boolean; reason: string }): Promise<Outcome<ConversationView>> {
    return guard(() => this.#end(tenantId, input));
  }

  async #end(
    tenantId: string,
    input: { resolved: boolean; reason: string },
    by: "human" | "bot" = "bot",
  ): Promise<ConversationView> {
    const e = parse(shapes.get().EndInput, input);
    const meta = this.#require(tenantId);
    if (isEnded(meta)) return this.#view();
    // Escalated at some point, whether a human took it over since or not.
    const escalated = meta.state === "escalated" || meta.wasEscalated;
    const endedAt = this.clock.now();
    const state = e.resolved ? "resolved" : "unresolved";
    const resolvedBy = e.resolved ? by : null;
    // Emit before recording the end: if the queue fails the caller can retry, and the summary's
    // id is derived from the conversation, so a retry after a half-done end cannot count twice.
    await this.#emit(await this.#summary({ ...meta, state, endedAt, resolvedBy }, escalated));
    // Another end may have finished while this one waited on the queue.
    if (isEnded(meta)) return this.#view();
    meta.state = state;
    meta.endedAt = endedAt;
    meta.resolvedBy = resolvedBy;
    meta.holder = null;
    meta.waitingSince = null;
    this.#save();
    this.#deliver(true);
    // The conversation is over: its live sockets are closed (the last state frame said so).
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, "conversation ended");
    await this.#armExpiry(meta);
    this.#index(true);
    return this.#view();
  }

  /** Stores the visitor's rating (the latest one counts) and emits it for analytics. */
  feedback(
    tenantId: string,
    input: { csat: number; comment: string | null },
  ): Promise<Outcome<ConversationView>> {
    return guard(() => this.#feedback(tenantId, input));
  }

  async #feedback(
    tenantId: string,
    input: { csat: number; comment: string | null },
  ): Promise<ConversationView> {
    const f = parse(shapes.get().FeedbackInput, input);
    const meta = this.#require(tenantId);
    // The same rating again (a retry, a double click) is already recorded: nothing more is written.
    const ratings = meta.ratings ?? 0;
    if (ratings > 0 && meta.csat === f.csat && (meta.ratedComment ?? null) === f.comment) return this.#view();
    // Each change is an analytics row kept for the retention period, so a conversation takes a few.
    if (ratings >= RATINGS_PER_CONVERSATION) {
      throw new ConversationError(
        "conflict",
        `this conversation's rating was given ${RATINGS_PER_CONVERSATION} times; it takes no more changes`,
      );
    }
    meta.csat = f.csat;
    meta.ratings = ratings + 1;
    meta.ratedComment = f.comment;
    this.#save();
    const event: FeedbackEvent = {
      type: "feedback",
      id: crypto.randomUUID(),
      tenantId: meta.tenantId,
      conversationId: meta.conversationId,
      userId: meta.userId,
      at: this.clock.now(),
      csat: f.csat,
      comment: f.comment,
    };
    this.#sendAfterCommit("feedback event", () => this.#emit(event));
    this.#index(true);
    return this.#view();
  }

  /** The whole transcript, for the tenant's own API and for escalation emails. */
  transcript(tenantId: string): Promise<Outcome<{ view: ConversationView; messages: StoredMessage[] }>> {
    return guard(() => {
      this.#require(tenantId);
      return { view: this.#view(), messages: [...this.#messages] };
    });
  }

  // ---- Human handoff (docs/handoff.md) ----

  /** An operator takes the conversation over: the bot stops answering until it is handed back. */
  takeover(tenantId: string, holder: Holder): Promise<Outcome<HandoffResult>> {
    return guard(async () => {
      const meta = this.#require(tenantId);
      if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
      if (meta.state === "human") {
        // Taking over twice is the same hold; another operator's is not this one's to take.
        if (meta.holder?.operatorId === holder.operatorId) return this.#result();
        throw new ConversationError("conflict", "another operator holds this conversation");
      }
      const now = this.clock.now();
      meta.state = "human";
      meta.holder = holder;
      meta.waitingSince = null;
      meta.askedAt ??= now;
      meta.takenAt ??= now;
      meta.humanHandled = true;
      meta.consecutiveFailures = 0;
      const entry = this.#add(meta, { role: "system", author: null, content: `${holder.name} joined` }, now);
      this.#deliver(true);
      this.#index(true);
      return this.#result(entry);
    });
  }

  /** The holder's message to the visitor (stored as given: redacted and checked by the caller). */
  operatorMessage(
    tenantId: string,
    operatorId: string,
    input: { content: string; tokens: number },
  ): Promise<Outcome<HandoffResult>> {
    return guard(async () => {
      const meta = this.#require(tenantId);
      if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
      const holder = meta.holder;
      if (meta.state !== "human" || holder?.operatorId !== operatorId)
        throw new ConversationError("conflict", "only the operator holding the conversation can write in it");
      const content = parse(shapes.get().OperatorMessage, input);
      const now = this.clock.now();
      meta.firstHumanReplyAt ??= now;
      const entry = this.#add(
        meta,
        { role: "operator", author: holder.name, content: content.content, tokens: content.tokens },
        now,
      );
      this.#deliver(false);
      this.#index();
      return this.#result(entry);
    });
  }

  /** The holder (or someone who may override it) gives the conversation back to the bot. */
  handback(tenantId: string, by: HandoffActor): Promise<Outcome<HandoffResult>> {
    return guard(async () => {
      const meta = this.#require(tenantId);
      if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
      if (meta.state !== "human")
        throw new ConversationError("conflict", "no operator holds this conversation");
      this.#mayAct(meta, by);
      meta.state = "open";
      meta.holder = null;
      const entry = this.#add(meta, { role: "system", author: null, content: "The assistant is back" });
      this.#deliver(true);
      this.#index(true);
      return this.#result(entry);
    });
  }

  /** Ends the conversation as resolved by a person; a held one only by its holder (or an override). */
  resolve(tenantId: string, by: HandoffActor): Promise<Outcome<HandoffResult>> {
    return guard(async () => {
      const meta = this.#require(tenantId);
      // Resolving again (a second click, a retry) answers the same; an unresolved end is final.
      if (meta.state === "resolved") return this.#result();
      if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
      if (meta.state === "human") this.#mayAct(meta, by);
      meta.humanHandled = true;
      const entry = this.#add(meta, { role: "system", author: null, content: `Resolved by ${by.name}` });
      this.#deliver(false);
      await this.#end(tenantId, { resolved: true, reason: "resolved by an operator" }, "human");
      return this.#result(entry);
    });
  }

  #mayAct(meta: Meta, by: HandoffActor) {
    if (!by.override && meta.holder?.operatorId !== by.operatorId)
      throw new ConversationError("conflict", "another operator holds this conversation");
  }

  /** Appends one entry (an operator's message or a notice) and saves it with the meta. */
  #add(
    meta: Meta,
    e: { role: "operator" | "system"; author: string | null; content: string; tokens?: number },
    at = this.clock.now(),
  ): TranscriptEntry {
    const m: StoredMessage = { seq: this.#lastSeq() + 1, tokens: 0, ...e, at };
    meta.lastActivityAt = at;
    this.ctx.storage.transactionSync(() => {
      this.#insert(m);
      this.#save();
    });
    this.#messages.push(m);
    return entryOf(m);
  }

  #result(entry?: TranscriptEntry): HandoffResult {
    const last = this.#messages.findLast((m) => m.role !== "system");
    return { view: this.#view(), preview: (last?.content ?? "").slice(0, 200), ...(entry ? { entry } : {}) };
  }

  /**
   * A live socket (docs/handoff.md), reached only through the worker, which checked the caller
   * (an operator's session and origin, or a visitor's ticket) and says who it is in these headers:
   * the request from the outside never reaches here as it came.
   */
  override async fetch(request: Request): Promise<Response> {
    const meta = this.#meta;
    const tenantId = request.headers.get("x-live-tenant");
    if (!meta || meta.tenantId !== tenantId) return liveRefusal(404, "no such conversation");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket")
      return liveRefusal(426, "a WebSocket upgrade is expected");
    if (isEnded(meta)) return liveRefusal(409, "conversation has ended");
    const kind = request.headers.get("x-live-kind");
    if (kind !== "visitor" && kind !== "operator") return liveRefusal(400, "unknown live client");
    const visitor = kind === "visitor";
    const session = visitor ? undefined : (request.headers.get("x-live-session") ?? undefined);
    // A session that ended while its socket's request was on the way here.
    if (session !== undefined && this.#sessionEnded(session))
      return liveRefusal(401, "the console session has ended: sign in again");
    // The ticket is bound to this conversation's user.
    if (visitor && request.headers.get("x-live-user") !== meta.userId)
      return liveRefusal(404, "no such conversation");
    // Room is checked before a visitor's ticket is spent: a visitor told to wait keeps its ticket.
    // The visitor's own sockets (tabs) have a share of their own, so a visitor holding its tickets'
    // worth of sockets open cannot keep the operators out of the conversation's live view.
    if (visitor && this.ctx.getWebSockets("visitor").length >= MAX_VISITOR_SOCKETS)
      return liveRefusal(429, "too many live connections from the visitor to this conversation");
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS)
      return liveRefusal(429, "too many live connections to this conversation");
    // The ticket is spent on first use.
    const ticket = request.headers.get("x-live-ticket") ?? "";
    if (visitor && !this.#spendTicket(ticket, Number(request.headers.get("x-live-expires"))))
      return liveRefusal(401, "the live ticket is spent or expired");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // A client's keep-alive is answered by the runtime without waking a hibernated object: a wake
    // is billed as the object's duration, and a socket that pings every 30 s would pay one each
    // time. Any other spelling of a ping still reaches webSocketMessage, which answers the same.
    this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.ctx.acceptWebSocket(server, [kind]);
    const att: LiveAttachment = {
      kind,
      resumed: false,
      sent: 0,
      ...(kind === "operator" ? { until: operatorSocketEnd(this.clock.now(), request.headers) } : {}),
      ...(session !== undefined ? { session } : {}),
    };
    server.serializeAttachment(att);
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * Console sessions that ended (a sign-out, "sign out everywhere", the operator's removal): their
   * sockets here close now (4003: the console signs in again rather than reconnecting), and a socket
   * of theirs still on its way is refused, for as long as one could live. Answers how many closed.
   */
  closeSessions(tenantId: string, sessionIds: string[]): number {
    // Not this tenant's, or no conversation: nothing is written (a name alone makes no object's storage).
    if (this.#meta?.tenantId !== tenantId || sessionIds.length === 0) return 0;
    const sql = this.#endedSessions();
    const until = this.clock.now() + OPERATOR_SOCKET_MS;
    for (const id of sessionIds)
      sql.exec("insert or replace into ended_sessions (id, until) values (?, ?)", id, until);
    let closed = 0;
    for (const ws of this.ctx.getWebSockets("operator")) {
      const att = ws.deserializeAttachment() as LiveAttachment | null;
      if (att?.session === undefined || !sessionIds.includes(att.session)) continue;
      closeSocket(ws, 4003, "the console session has ended: sign in again");
      closed++;
    }
    return closed;
  }

  #sessionEnded(id: string): boolean {
    // Read only where a session's end was ever written: an operator's socket writes nothing.
    if (!this.#hasEndedSessions()) return false;
    const rows = this.ctx.storage.sql.exec(
      "select 1 from ended_sessions where id = ? and until > ?",
      id,
      this.clock.now(),
    );
    return rows.toArray().length > 0;
  }

  /** The table of ended sessions, created on first use, without the ones past a socket's age. */
  #endedSessions(): SqlStorage {
    const sql = this.ctx.storage.sql;
    sql.exec("create table if not exists ended_sessions (id text primary key, until integer not null)");
    sql.exec("delete from ended_sessions where until <= ?", this.clock.now());
    this.#endedTable = true;
    return sql;
  }

  #hasEndedSessions(): boolean {
    this.#endedTable ??=
      this.ctx.storage.sql.exec("select 1 from sqlite_master where name = 'ended_sessions'").toArray()
        .length > 0;
    return this.#endedTable;
  }

  #spendTicket(id: string, expires: number): boolean {
    const now = this.clock.now();
    if (!id || !Number.isFinite(expires) || expires <= now) return false;
    const sql = this.ctx.storage.sql;
    sql.exec("create table if not exists live_tickets (id text primary key, expires integer not null)");
    sql.exec("delete from live_tickets where expires <= ?", now);
    if (sql.exec("select 1 from live_tickets where id = ?", id).toArray().length > 0) return false;
    sql.exec("insert into live_tickets (id, expires) values (?, ?)", id, expires);
    return true;
  }

  /** A client's frame: `resume` (everything after a seq, then live entries) or `ping`; nothing else. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const frame = clientFrame(message);
    const att = ws.deserializeAttachment() as LiveAttachment;
    const paid = spendFrame(att, this.clock.now(), frame?.type === "resume" ? RESUME_COST : 1);
    ws.serializeAttachment(att);
    if (!paid) {
      // Closed, with the rest of its credit forfeit: frames already under way are not answered.
      closeSocket(ws, 1008, "too many frames: reconnect later");
      return;
    }
    if (!frame) {
      // The socket only listens: messages and notices are written through the REST routes.
      send(ws, {
        type: "error",
        code: "invalid",
        message: 'expected {"type":"resume","after":<seq>} or ping',
      });
      return;
    }
    if (frame.type === "ping") {
      send(ws, { type: "pong" });
      return;
    }
    if (this.#expired(ws, att)) return;
    // Resuming again starts over from the client's own count: it ignores seqs it already has.
    att.sent = Math.max(0, Math.min(frame.after, this.#lastSeq()));
    att.resumed = true;
    ws.serializeAttachment(att);
    this.#sendState(ws, att);
    this.#catchUp(ws, att);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Completes the closing handshake the client started (1005/1006 cannot be sent back).
    closeSocket(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeSocket(ws, 1011, "socket error");
  }

  /**
   * Pushes what is new to every resumed socket: each gets the entries after the last seq it was
   * sent (its attachment, so a hibernated object resumes the count), then the state if it changed.
   * Runs synchronously after the entries are stored, so nothing is sent before it is kept.
   */
  #deliver(stateChanged: boolean) {
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as LiveAttachment | null;
      if (!att?.resumed || this.#expired(ws, att)) continue;
      if (stateChanged) this.#sendState(ws, att);
      this.#catchUp(ws, att);
    }
  }

  /** Closes an operator's socket past its age; true when it did. */
  #expired(ws: WebSocket, att: LiveAttachment): boolean {
    if (att.until === undefined || this.clock.now() < att.until) return false;
    closeSocket(ws, 4001, "reconnect: the session is checked again");
    return true;
  }

  #catchUp(ws: WebSocket, att: LiveAttachment) {
    const last = this.#lastSeq();
    if (att.sent >= last) return;
    // Entries are seq-ordered and seqs are dense from 1: the next one to send is at index `sent`.
    for (let i = att.sent; i < this.#messages.length; i++) {
      const m = this.#messages[i] as StoredMessage;
      if (m.seq > att.sent) send(ws, { type: "entry", ...entryOf(m) });
    }
    att.sent = last;
    ws.serializeAttachment(att);
  }

  #sendState(ws: WebSocket, att: LiveAttachment) {
    const meta = this.#meta;
    if (!meta) return;
    // A visitor is told who holds the conversation by the name the tenant lets it show, not by the
    // operator's id, which would tell one operator's conversations from another's.
    const holder = meta.holder && att.kind === "visitor" ? { name: meta.holder.name } : meta.holder;
    send(ws, { type: "state", status: inboxStatus(meta.state), holder, version: this.#lastSeq() });
  }

  /**
   * Sends the inbox event off the caller's path: a visitor's answer does not wait on the queue. A
   * state change (`always`) goes at once; new entries wait INBOX_DELAY_MS for company, and an
   * event sent meanwhile carries them (the event is built when it is sent).
   */
  #index(always = false) {
    if (always) {
      this.ctx.waitUntil(this.#emitInbox(true));
      return;
    }
    if (this.#inboxArmed) return;
    this.#inboxArmed = true;
    this.ctx.waitUntil(
      scheduler.wait(INBOX_DELAY_MS).then(() => {
        this.#inboxArmed = false;
        return this.#emitInbox();
      }),
    );
  }

  /**
   * The inbox index's event (docs/handoff.md): the state now and the entries since the last one
   * sent. `always`: also when no entry was added (a state change). A queue failure is logged and
   * the entries go with the next event.
   */
  async #emitInbox(always = false): Promise<void> {
    const meta = this.#meta;
    const event = this.#inboxEvent(always);
    if (!meta || !event) return;
    try {
      await this.#emit(event);
    } catch (err) {
      console.error(JSON.stringify({ msg: "inbox event not sent", error: String(err) }));
      return;
    }
    // Another emit may have carried more meanwhile: the mark only moves forward. It is stored with
    // the next write, not by a write of its own: an object evicted before then sends a few entries
    // again, which the index ignores (entries are keyed by seq).
    this.#markInbox(meta, event);
    // What did not fit in one event goes in the next, now.
    if (this.#meta === meta && this.#inboxBehind(meta)) await this.#emitInbox();
  }

  /**
   * A turn's inbox event, for the worker to send with its own events: the mark moves now, so an
   * event waiting out INBOX_DELAY_MS here does not carry the entries again. Were the worker's send
   * to fail, the entries would miss the index as the turn's analytics event would (the transcript
   * keeps them).
   */
  #handInbox(): InboxEvent | undefined {
    const meta = this.#meta;
    const event = this.#inboxEvent();
    if (meta && event) {
      this.#markInbox(meta, event);
      // What did not fit goes from here, after INBOX_DELAY_MS.
      if (this.#inboxBehind(meta)) this.#index();
    }
    return event;
  }

  #markInbox(meta: Meta, event: InboxEvent): void {
    const top = event.entries.at(-1)?.seq;
    if (this.#meta === meta && top !== undefined && top > meta.inboxSeq) meta.inboxSeq = top;
  }

  /** The inbox event now: the state and the entries since the last one sent (none: undefined unless `always`). */
  #inboxEvent(always = false): InboxEvent | undefined {
    const meta = this.#meta;
    if (!meta) return undefined;
    const fresh = this.#freshEntries(meta);
    if (!always && fresh.length === 0 && meta.inboxSeq > 0) return undefined;
    return {
      type: "inbox",
      id: crypto.randomUUID(),
      tenantId: meta.tenantId,
      conversationId: meta.conversationId,
      userId: meta.userId,
      version: this.#lastSeq(),
      at: this.clock.now(),
      status: inboxStatus(meta.state),
      channel: meta.channel,
      experiment: meta.experiment,
      variant: meta.variant,
      csat: meta.csat,
      totalCostUsd: meta.totalCostUsd,
      totalTokens: meta.totalTokens,
      turnCount: meta.turnCount,
      startedAt: meta.startedAt,
      lastActivityAt: meta.lastActivityAt,
      waitingSince: meta.waitingSince,
      holder: meta.holder,
      entries: fresh,
    };
  }

  /** The entries the inbox has not had, oldest first, as many as one event carries. */
  #freshEntries(meta: Meta): TranscriptEntry[] {
    const out: TranscriptEntry[] = [];
    let chars = 0;
    for (const m of this.#messages) {
      if (m.seq <= meta.inboxSeq) continue;
      const { text: content, size } = clipped(m.content, INBOX_EVENT_CHARS);
      if (out.length === INBOX_BATCH || (out.length > 0 && chars + size > INBOX_EVENT_CHARS)) break;
      chars += size;
      out.push({ ...entryOf(m), content });
    }
    return out;
  }

  /** Whether entries are left for a later inbox event (one did not carry them all). */
  #inboxBehind(meta: Meta): boolean {
    return (this.#messages.at(-1)?.seq ?? 0) > meta.inboxSeq;
  }

  /** Idle timeout: an open or escalated conversation nobody touched ends unresolved. */
  override async alarm(): Promise<void> {
    const meta = this.#meta;
    if (!meta) return;
    // An ended conversation's alarm is its retention: the transcript goes once it is old enough.
    if (isEnded(meta)) {
      if (meta.retentionMs !== undefined) await this.#expire(this.clock.now() - meta.retentionMs);
      return;
    }
    const due = meta.lastActivityAt + meta.idleTimeoutMs;
    if (this.clock.now() < due) {
      // Turns since the last whole save live only on their rows (TURN_FIELDS): saved whole here,
      // at most once an idle timeout, so a build that reads only the meta row (a rollback) finds
      // the counters at most that old.
      if ((meta.savedSeq ?? 0) < this.#lastSeq()) this.#save();
      await this.ctx.storage.setAlarm(due);
      return;
    }
    await this.#end(meta.tenantId, { resolved: false, reason: "idle" });
  }

  /**
   * Deletes this conversation's whole storage when its last activity is before `cutoffMs`: the
   * retention sweep's call (src/privacy/retention.ts) for a tenant whose retention was shortened.
   */
  async expire(tenantId: string, cutoffMs: number): Promise<boolean> {
    if (this.#meta?.tenantId !== tenantId) return false;
    return this.#expire(cutoffMs);
  }

  /**
   * Deletes this conversation's whole storage now: a tenant's purge, or (`userId`) a visitor's
   * erasure, which finds its conversations by rows that name the visitor: another user's
   * conversation is refused.
   */
  async forget(tenantId: string, userId?: string): Promise<boolean> {
    if (this.#meta?.tenantId !== tenantId) return false;
    if (userId !== undefined && this.#meta.userId !== userId) return false;
    await this.#forget();
    return true;
  }

  async #expire(cutoffMs: number): Promise<boolean> {
    const meta = this.#meta;
    if (!meta) return false;
    if (meta.lastActivityAt <= cutoffMs) {
      await this.#forget();
      return true;
    }
    // Not yet: an ended conversation is woken again when its own retention runs out.
    if (isEnded(meta)) await this.#armExpiry(meta);
    return false;
  }

  async #forget(): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, "conversation deleted");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.#meta = undefined;
    this.#messages = [];
    this.#endedTable = undefined;
  }

  /** After the end, the only alarm left is the transcript's expiry (none without a retention). */
  async #armExpiry(meta: Meta): Promise<void> {
    if (meta.retentionMs === undefined) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(meta.lastActivityAt + meta.retentionMs);
  }

  #require(tenantId: string): Meta {
    const meta = this.#meta;
    // Another tenant's id reads as unknown: nothing tells it the conversation exists.
    if (!meta || meta.tenantId !== tenantId) throw new ConversationError("not_found", "no such conversation");
    return meta;
  }

  #insert(m: StoredMessage, counters?: TurnCounters) {
    this.ctx.storage.sql.exec(
      "insert into messages (idx, role, author, content, tokens, at, tool_calls, turn_meta) values (?, ?, ?, ?, ?, ?, ?, ?)",
      m.seq,
      m.role,
      m.author ?? null,
      m.content,
      m.tokens,
      m.at,
      m.toolCalls ? JSON.stringify(m.toolCalls) : null,
      counters ? JSON.stringify(counters) : null,
    );
  }

  #lastSeq(): number {
    return this.#messages.at(-1)?.seq ?? 0;
  }

  /** Saves the whole meta; turns recorded until now are covered by it (`savedSeq`). */
  #save() {
    const meta = this.#meta as Meta;
    meta.savedSeq = this.#lastSeq();
    this.ctx.storage.sql.exec("insert or replace into meta (k, v) values (1, ?)", JSON.stringify(meta));
  }

  #view(): ConversationView {
    const m = this.#meta as Meta;
    return {
      conversationId: m.conversationId,
      tenantId: m.tenantId,
      userId: m.userId,
      state: m.state,
      turnCount: m.turnCount,
      startedAt: m.startedAt,
      lastActivityAt: m.lastActivityAt,
      totalTokens: m.totalTokens,
      totalCostUsd: m.totalCostUsd,
      experiment: m.experiment,
      variant: m.variant,
      channel: m.channel,
      csat: m.csat,
      consecutiveFailures: m.consecutiveFailures,
      historyTokens: this.#messages.reduce((n, x) => n + x.tokens, 0),
      holder: m.holder,
      waitingSince: m.waitingSince,
      version: this.#lastSeq(),
    };
  }

  async #summary(m: Meta, escalated: boolean): Promise<ConversationEvent> {
    return {
      type: "conversation",
      // One summary per conversation: its id is derived, so a retried end can never count twice.
      id: await nameUuid(`conversation/${m.tenantId}/${m.conversationId}`),
      tenantId: m.tenantId,
      conversationId: m.conversationId,
      userId: m.userId,
      at: m.endedAt ?? this.clock.now(),
      startedAt: m.startedAt,
      endedAt: m.endedAt ?? this.clock.now(),
      turnCount: m.turnCount,
      resolved: m.state === "resolved",
      escalated,
      csat: m.csat,
      totalTokens: m.totalTokens,
      totalCostUsd: m.totalCostUsd,
      avgResponseMs: m.answeredTurns > 0 ? m.latencySumMs / m.answeredTurns : 0,
      toolsUsed: m.toolsUsed,
      channel: m.channel,
      experiment: m.experiment,
      variant: m.variant,
      errorCount: m.errorCount,
      humanHandled: m.humanHandled,
      firstHumanReplyMs:
        m.firstHumanReplyAt !== null && m.askedAt !== null
          ? Math.max(0, m.firstHumanReplyAt - m.askedAt)
          : null,
      resolvedBy: m.resolvedBy,
    };
  }

  async #emit(event: ConversationEvent | FeedbackEvent | InboxEvent) {
    await this.env.ANALYTICS_QUEUE.send(event, { contentType: "json" });
  }

  /**
   * Sends a queue message about what is stored already, off the caller's path: a queue that fails
   * now must not fail the request (its retry would record the turn or the rating again, and pay
   * again), so it is tried three times over about 3 s and then logged as lost.
   */
  #sendAfterCommit(what: string, send: () => Promise<unknown>): void {
    const conversationId = this.#meta?.conversationId;
    this.ctx.waitUntil(
      (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            await send();
            return;
          } catch (err) {
            if (attempt >= SEND_ATTEMPTS) {
              console.error(JSON.stringify({ msg: `${what} not sent`, conversationId, error: String(err) }));
              return;
            }
            await scheduler.wait(attempt * 1_000);
          }
        }
      })(),
    );
  }

  #escalationNotice(m: Meta, reason: string, origin?: string): EscalationNotice {
    // Without an escalation email the notice still goes: the consumer sends it to a webhook.
    return {
      type: "escalation",
      id: crypto.randomUUID(),
      tenantId: m.tenantId,
      conversationId: m.conversationId,
      userId: m.userId,
      to: m.escalationEmail,
      reason,
      at: this.clock.now(),
      ...(origin ? { origin } : {}),
      ...noticeTranscript(this.#messages),
    };
  }
}

function wrapOutcome<T, U>(out: GateOutcome<T>, wrap: (v: T) => U): GateOutcome<U> {
  return out.ok ? { ok: true, value: wrap(out.value) } : out;
}

function send(ws: WebSocket, frame: LiveServerFrame) {
  try {
    ws.send(JSON.stringify(frame));
  } catch {
    // A socket closing meanwhile: its client resumes by seq when it reconnects.
  }
}

/**
 * When an operator's socket opened now must reconnect: at its age limit, or at its session's own
 * expiry if that comes first (the worker says when, `x-live-session-expires`).
 */
function operatorSocketEnd(now: number, headers: Headers): number {
  const sessionEnds = Number(headers.get("x-live-session-expires"));
  const byAge = now + OPERATOR_SOCKET_MS;
  return Number.isFinite(sessionEnds) && sessionEnds > 0 ? Math.min(byAge, sessionEnds) : byAge;
}

function closeSocket(ws: WebSocket, code: number, reason: string) {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

/** The keep-alive frames the runtime answers by itself (setWebSocketAutoResponse). */
export const PING_FRAME = JSON.stringify({ type: "ping" });
export const PONG_FRAME = JSON.stringify({ type: "pong" });

function clientFrame(message: string | ArrayBuffer): LiveClientFrame | undefined {
  if (typeof message !== "string" || message.length > 200) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const f = v as Record<string, unknown>;
  if (f.type === "ping") return { type: "ping" };
  if (f.type === "resume" && Number.isSafeInteger(f.after) && (f.after as number) >= 0)
    return { type: "resume", after: f.after as number };
  return undefined;
}

function liveRefusal(status: number, message: string): Response {
  const code =
    {
      400: "VALIDATION_FAILED",
      401: "UNAUTHORIZED",
      404: "NOT_FOUND",
      409: "CONFLICT",
      426: "VALIDATION_FAILED",
      429: "RATE_LIMITED",
    }[status] ?? "ERROR";
  return Response.json({ error: { code, message } }, { status });
}

const ROLES = new Set(["user", "assistant", "operator", "system"]);

/**
 * An escalation notice's transcript: the newest entries that fit NOTICE_TRANSCRIPT_CHARS, each cut
 * to NOTICE_ENTRY_CHARS, and how many earlier ones are left out. A queue message holds 128 KB, and
 * a notice is an email; the console has the whole conversation.
 */
function noticeTranscript(
  messages: readonly StoredMessage[],
): Pick<EscalationNotice, "transcript" | "omitted"> {
  const said = messages.filter((x) => x.role !== "system");
  const transcript: EscalationNotice["transcript"] = [];
  let chars = 0;
  for (let i = said.length - 1; i >= 0; i--) {
    const x = said[i] as StoredMessage;
    const { text: content, size } = clipped(x.content, NOTICE_ENTRY_CHARS);
    if (transcript.length > 0 && chars + size > NOTICE_TRANSCRIPT_CHARS) break;
    chars += size;
    transcript.unshift({ role: x.role, content, at: x.at });
  }
  const omitted = said.length - transcript.length;
  return omitted > 0 ? { transcript, omitted } : { transcript };
}

/** The characters `text` takes inside a JSON string: escapes spelled out. */
function jsonLength(text: string): number {
  return JSON.stringify(text).length - 2;
}

/**
 * `text` cut to take at most `max` characters as JSON (`jsonLength`), marked as cut, never inside a
 * surrogate pair; with the characters it takes.
 */
function clipped(text: string, max: number): { text: string; size: number } {
  const whole = text.length <= max ? jsonLength(text) : max + 1;
  if (whole <= max) return { text, size: whole };
  let end = Math.min(text.length, max - 1);
  for (;;) {
    if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
    const out = `${text.slice(0, end)}…`;
    // Each character left out shortens the JSON by one or more: cutting as many as it is over fits.
    const size = jsonLength(out);
    if (size <= max) return { text: out, size };
    end -= size - max;
  }
}

function entryOf(m: StoredMessage): TranscriptEntry {
  return { seq: m.seq, role: m.role, author: m.author ?? null, content: m.content, at: m.at };
}

function isEnded(meta: Meta): boolean {
  return meta.state === "resolved" || meta.state === "unresolved";
}

/** A UUID (version 8, name-based) from the SHA-256 of a name: the same name, the same id. */
async function nameUuid(name: string): Promise<string> {
  const hex = await sha256Hex(name);
  const variant = ((Number.parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
