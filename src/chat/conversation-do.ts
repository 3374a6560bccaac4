import { DurableObject } from "cloudflare:workers";
import type { AddressedAdmission, AddressHit } from "../admission/address-windows";
import type { GateOutcome } from "../admission/types";
import type { ConversationEvent, FeedbackEvent } from "../analytics/events";
import { sha256Hex } from "../auth/keys";
import { Clock } from "../clock";
import type { RawEnv } from "../env";
import { guard, Rejection, type Outcome as RpcOutcome } from "../outcome";
import { preloaded } from "../preload";
import type {
  ConversationState,
  ConversationView,
  EscalationNotice,
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
  escalationEmail: string;
  /** How long the transcript outlives the last activity (docs/privacy.md); absent: until the cron's sweep. */
  retentionMs?: number;
}

export type ConversationErrorCode = "not_found" | "ended" | "invalid";

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
      if (row) this.#meta = JSON.parse(row.v) as Meta;
      for (const m of sql.exec<{
        role: string;
        content: string;
        tokens: number;
        at: number;
        tool_calls: string | null;
      }>("select role, content, tokens, at, tool_calls from messages order by idx")) {
        this.#messages.push({
          role: m.role === "assistant" ? "assistant" : "user",
          content: m.content,
          tokens: m.tokens,
          at: m.at,
          ...(m.tool_calls ? { toolCalls: JSON.parse(m.tool_calls) } : {}),
        });
      }
    });
  }

  /** Opens the conversation; calling it again for the same conversation is refused. */
  start(input: StartInput): Promise<Outcome<ConversationView>> {
    return guard(() => this.#start(input));
  }

  async #start(input: StartInput): Promise<ConversationView> {
    const s = parse(shapes.get().StartInput, input);
    if (this.#meta) throw new ConversationError("invalid", "conversation already exists");
    const sql = this.ctx.storage.sql;
    sql.exec(`create table if not exists meta (k integer primary key check (k = 1), v text not null)`);
    sql.exec(`create table if not exists messages (
      idx integer primary key, role text not null, content text not null, tokens integer not null,
      at integer not null, tool_calls text)`);
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
    };
    this.#save();
    await this.ctx.storage.setAlarm(now + s.idleTimeoutMs);
    return this.#view();
  }

  /** The state and the newest history that fits in `budgetTokens`, in one call before a turn. */
  prepare(tenantId: string, budgetTokens: number): PrepareResult {
    const meta = this.#meta;
    if (!meta || meta.tenantId !== tenantId) return { ok: false, reason: "not_found" };
    if (isEnded(meta)) return { ok: false, reason: "ended", view: this.#view() };
    const history: StoredMessage[] = [];
    let used = 0;
    for (let i = this.#messages.length - 1; i >= 0; i--) {
      const m = this.#messages[i] as StoredMessage;
      if (used + m.tokens > budgetTokens) break;
      used += m.tokens;
      history.push(m);
    }
    history.reverse();
    // A history must not open with an assistant message (some providers refuse that).
    while (history[0]?.role === "assistant") history.shift();
    return { ok: true, view: this.#view(), history };
  }

  /**
   * A message's one call before its model: `prepare`, and the tenant's gate asked from here (the
   * address count; admission when the conversation can take the message), so the worker makes one
   * round trip. Admission reserves exactly the history this answer returns: the snapshot is taken
   * before the gate is asked, so a turn recorded meanwhile cannot grow it.
   */
  async prepareTurn(tenantId: string, call: TurnCall): Promise<TurnCallResult> {
    let conversation = this.prepare(tenantId, call.historyBudget);
    // Another user's conversation does not exist for this one, ended or not: a 409 would tell.
    if (call.owner !== undefined && conversation.view && conversation.view.userId !== call.owner)
      conversation = { ok: false, reason: "not_found" };
    const historyTokens = conversation.ok ? conversation.history.reduce((n, m) => n + m.tokens, 0) : 0;
    const admit =
      conversation.ok && call.admit
        ? {
            ...call.admit,
            userId: conversation.view.userId,
            inputTokens: call.admit.inputTokens + historyTokens,
          }
        : undefined;
    if (!admit && !call.address) return { conversation, historyTokens };
    const gate = this.env.TENANT_GATE.getByName(tenantId);
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

  async #recordTurn(tenantId: string, input: TurnInput): Promise<TurnResult> {
    const t = parse(shapes.get().TurnInput, input);
    const meta = this.#require(tenantId);
    if (isEnded(meta)) throw new ConversationError("ended", "conversation has ended");
    const userMsg: StoredMessage = { role: "user", content: t.user.content, tokens: t.user.tokens, at: t.at };
    const answer: StoredMessage | undefined = t.assistant
      ? {
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
    const escalatedNow = reason !== undefined && meta.state !== "escalated";
    if (escalatedNow) meta.state = "escalated";

    this.ctx.storage.transactionSync(() => {
      this.#insert(userMsg);
      if (answer) this.#insert(answer);
      this.#save();
    });
    this.#messages.push(userMsg);
    if (answer) this.#messages.push(answer);
    // The idle alarm is not moved on every turn (a storage write each time): when it fires early
    // it re-arms itself for lastActivityAt + idleTimeoutMs.
    if (escalatedNow && reason) await this.#notifyEscalation(meta, reason);
    return { view: this.#view(), escalatedNow, consecutiveFailures: meta.consecutiveFailures };
  }

  /** Ends the conversation once and emits its summary; ending again returns the same view. */
  end(tenantId: string, input: { resolved: boolean; reason: string }): Promise<Outcome<ConversationView>> {
    return guard(() => this.#end(tenantId, input));
  }

  async #end(tenantId: string, input: { resolved: boolean; reason: string }): Promise<ConversationView> {
    const e = parse(shapes.get().EndInput, input);
    const meta = this.#require(tenantId);
    if (isEnded(meta)) return this.#view();
    const escalated = meta.state === "escalated";
    const endedAt = this.clock.now();
    const state = e.resolved ? "resolved" : "unresolved";
    // Emit before recording the end: if the queue fails the caller can retry, and the summary's
    // id is derived from the conversation, so a retry after a half-done end cannot count twice.
    await this.#emit(await this.#summary({ ...meta, state, endedAt }, escalated));
    // Another end may have finished while this one waited on the queue.
    if (isEnded(meta)) return this.#view();
    meta.state = state;
    meta.endedAt = endedAt;
    this.#save();
    await this.#armExpiry(meta);
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
    meta.csat = f.csat;
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
    await this.#emit(event);
    return this.#view();
  }

  /** The whole transcript, for the tenant's own API and for escalation emails. */
  transcript(tenantId: string): Promise<Outcome<{ view: ConversationView; messages: StoredMessage[] }>> {
    return guard(() => {
      this.#require(tenantId);
      return { view: this.#view(), messages: [...this.#messages] };
    });
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

  /** Deletes this conversation's whole storage now (a visitor's erasure, a tenant's purge). */
  async forget(tenantId: string): Promise<boolean> {
    if (this.#meta?.tenantId !== tenantId) return false;
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
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.#meta = undefined;
    this.#messages = [];
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

  #insert(m: StoredMessage) {
    this.ctx.storage.sql.exec(
      "insert into messages (role, content, tokens, at, tool_calls) values (?, ?, ?, ?, ?)",
      m.role,
      m.content,
      m.tokens,
      m.at,
      m.toolCalls ? JSON.stringify(m.toolCalls) : null,
    );
  }

  #save() {
    this.ctx.storage.sql.exec("insert or replace into meta (k, v) values (1, ?)", JSON.stringify(this.#meta));
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
    };
  }

  async #emit(event: ConversationEvent | FeedbackEvent) {
    await this.env.ANALYTICS_QUEUE.send(event, { contentType: "json" });
  }

  async #notifyEscalation(m: Meta, reason: string) {
    // Without an escalation email the notice still goes: the consumer sends it to a webhook.
    const notice: EscalationNotice = {
      type: "escalation",
      id: crypto.randomUUID(),
      tenantId: m.tenantId,
      conversationId: m.conversationId,
      userId: m.userId,
      to: m.escalationEmail,
      reason,
      at: this.clock.now(),
      transcript: this.#messages.map((x) => ({ role: x.role, content: x.content, at: x.at })),
    };
    await this.env.NOTIFY_QUEUE.send(notice, { contentType: "json" });
  }
}

function wrapOutcome<T, U>(out: GateOutcome<T>, wrap: (v: T) => U): GateOutcome<U> {
  return out.ok ? { ok: true, value: wrap(out.value) } : out;
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
