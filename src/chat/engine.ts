import { admitMessage, type MessageRequest, settleMessage } from "../admission/client";
import { rateLimitHeaders, refusalError } from "../admission/headers";
import type { AdmitResult, Admitted } from "../admission/types";
import type { ToolCallRecord, TurnEvent } from "../analytics/events";
import { countRefusal, sendAnalytics } from "../analytics/producer";
import type { Env } from "../env";
import { AppError } from "../errors";
import type { Grounding } from "../knowledge/retrieve";
import { turnKnowledge } from "../knowledge/turn-knowledge";
import type { ResponseTiming } from "../response-timing";
import type { TenantConfig } from "../tenants/config";
import { calledModel } from "./providers/aliases";
import { runChain } from "./providers/chain";
import { resolveChain } from "./providers/registry";
import { policyFromEnv } from "./providers/retry";
import type {
  ChatEvent,
  ChatMessage,
  FinishReason,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from "./providers/types";
import { DEFAULT_POLICY_MESSAGE, OutputGuard, TopicMatcher } from "./safety";
import { countTextTokens, estimateTokens } from "./tokens";

/** One visitor message on its way to a model: everything the engine needs, already validated. */
export interface TurnRequest {
  env: Env;
  ctx: ExecutionContext;
  tenant: TenantConfig;
  userId: string;
  conversationId: string;
  channel: string;
  turnIndex: number;
  /** The conversation so far, ending with the new user message. */
  messages: ChatMessage[];
  /** The caller's own system text (OpenAI path); it follows the tenant's system prompt. */
  clientSystem?: string;
  /** The tenant's reference data for this message (src/knowledge), marked untrusted; it comes last. */
  knowledge?: string;
  /** What retrieval decided for this message: the turn event records the sources its answer cites. */
  grounding?: Grounding;
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  temperature?: number;
  stop?: string[];
  model: string;
  /** What the caller asked for; clamped to the tenant's max_tokens_per_response. */
  maxTokens?: number;
  experiment: string | null;
  variant: string | null;
  /** Fires when the client goes away; the upstream call is cancelled with it. */
  signal: AbortSignal;
  /**
   * The HTTP request's arrival and last byte (src/response-timing.ts): turn times then run from
   * arrival, and the turn's latency to the response's last byte. Without it, from admission to the model's end.
   */
  timing?: ResponseTiming;
  /** An input estimate known to be an upper bound (conversation path); else the engine counts. */
  inputTokens?: number;
  /** Whether the caller streams; a caller that does not gets one upstream answer, not SSE to re-parse. */
  stream?: boolean;
  /** A tool-loop step: the reservation of the message's first call (src/tools/loop.ts). */
  continues?: string;
  /** Set by the tool loop, which records one turn event for all the steps of a message. */
  deferRecord?: boolean;
}

/** What the route streams or gathers. `policy` replaces blocked output with the tenant's message. */
export type TurnOutput =
  | { type: "text"; delta: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; argumentsDelta: string }
  | { type: "policy"; text: string; topic: string }
  | { type: "failed"; message: string; cause?: FailureCause };

/**
 * Why the model did not answer, for a caller that may be told (the OpenAI route): the provider's
 * status and whether another attempt could help. A visitor gets `message` only.
 */
export interface FailureCause {
  status?: number;
  retryable: boolean;
}

/** How the turn ended; the route records it (conversation path) after the stream is done. */
export interface TurnSummary {
  outcome: TurnEvent["outcome"];
  text: string;
  toolCalls: ToolCall[];
  /** The model called last (the one that answered, or failed last), an alias resolved. */
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  latencyMs: number;
  firstTokenMs: number | null;
  finishReason: FinishReason | "error";
  error: string | null;
  blockedTopic: string | null;
  /** Set by the tool loop: the tools it ran (else the names of `toolCalls` are recorded). */
  toolsUsed?: string[];
  tools?: ToolCallRecord[];
}

/** A turn ready to run: admission passed; `events` yields the output, `summary` settles when it ends. */
export interface PreparedTurn {
  admitted: Admitted;
  headers: Record<string, string>;
  model: string;
  inputTokens: number;
  events: AsyncGenerator<TurnOutput, void, undefined>;
  summary: Promise<TurnSummary>;
}

/** A message answered by policy before any model or admission: a blocked topic on the input. */
export interface BlockedTurn {
  blocked: true;
  topic: string;
  text: string;
}

/**
 * A message answered without a model: a blocked topic, the hand-over to a human, or (`ok`) the
 * tenant's own "I don't know" when its knowledge has nothing relevant (src/knowledge).
 */
export type UnansweredTurn = { outcome: "blocked"; topic: string } | { outcome: "human" } | { outcome: "ok" };

// Compiled topic lists per tenant config version; bounded by the number of active tenants.
const matchers = new Map<string, TopicMatcher>();

function matcherOf(tenant: TenantConfig): TopicMatcher {
  const key = `${tenant.id}@${tenant.configVersion}`;
  let m = matchers.get(key);
  if (!m) {
    if (matchers.size > 1_000) matchers.clear();
    m = new TopicMatcher(tenant.blockedTopics);
    matchers.set(key, m);
  }
  return m;
}

/** The tenant's answer to a blocked topic, or the platform's when it has none. */
export function policyMessage(tenant: TenantConfig): string {
  return tenant.policyMessage || DEFAULT_POLICY_MESSAGE;
}

/** Refuses tool definitions the tenant has not allowed (tool calls themselves pass through). */
export function checkTools(tenant: TenantConfig, tools: readonly ToolDefinition[] | undefined): void {
  const refused = (tools ?? []).map((t) => t.name).filter((n) => !tenant.allowedTools.includes(n));
  if (refused.length > 0) {
    throw new AppError("VALIDATION_FAILED", `tools not allowed for this tenant: ${refused.join(", ")}`, {
      details: [{ path: "tools", message: `allowed: ${tenant.allowedTools.join(", ") || "none"}` }],
    });
  }
}

/**
 * Emits a turn event (and a safety event on a hit) to the analytics queue, off the response path:
 * one per visitor message that got an answer, whatever answered it.
 */
function record(
  req: TurnRequest,
  s: Omit<TurnSummary, "model"> & { model: string | null },
  at: number,
  direction?: "input" | "output",
) {
  const base = { tenantId: req.tenant.id, conversationId: req.conversationId, userId: req.userId, at };
  const knowledge = turnKnowledge(s.outcome, s.text, req.grounding);
  const turn: TurnEvent = {
    type: "turn",
    id: crypto.randomUUID(),
    ...base,
    turnIndex: req.turnIndex,
    model: req.model,
    calledModel: s.model,
    experiment: req.experiment,
    variant: req.variant,
    inputTokens: s.inputTokens,
    outputTokens: s.outputTokens,
    costUsd: s.costUsd,
    latencyMs: s.latencyMs,
    firstTokenMs: s.firstTokenMs,
    outcome: s.outcome,
    error: s.error,
    toolsUsed: s.toolsUsed ?? [...new Set(s.toolCalls.map((c) => c.name))],
    ...(s.tools?.length ? { tools: s.tools } : {}),
    ...(knowledge ? { knowledge } : {}),
    channel: req.channel,
  };
  // Sent once the response's last byte left (a write-back after the model included): its latency.
  const timing = req.timing;
  if (timing)
    req.ctx.waitUntil(
      timing.sent.then((end) =>
        sendAnalytics(req.env, req.ctx, { ...turn, latencyMs: Math.max(end - timing.arrivedAt, 0) }),
      ),
    );
  else sendAnalytics(req.env, req.ctx, turn);
  if (s.blockedTopic && direction) {
    sendAnalytics(req.env, req.ctx, {
      type: "safety",
      id: crypto.randomUUID(),
      ...base,
      direction,
      topic: s.blockedTopic,
    });
  }
}

/** Records the turn event of a message the tool loop answered in several model calls. */
export function recordAnswered(req: TurnRequest, s: TurnSummary, at: number): void {
  record(req, s, at, "output");
}

/**
 * Checks the input for blocked topics. A hit answers with the policy message and costs nothing: no
 * admission, no model. The caller records it (`recordUnanswered`) once it knows the turn's index.
 */
export function screenInput(req: TurnRequest): BlockedTurn | undefined {
  const last = [...req.messages].reverse().find((m) => m.role === "user");
  const topic = last ? matcherOf(req.tenant).match(last.content) : undefined;
  if (!topic) return undefined;
  return { blocked: true, topic, text: policyMessage(req.tenant) };
}

/**
 * Records a message answered without a model: its turn event (outcome `blocked` or `human`), and
 * for a blocked topic the safety event. Nothing was called, so nothing is priced.
 */
export function recordUnanswered(req: TurnRequest, turn: UnansweredTurn, at = Date.now()): void {
  const topic = turn.outcome === "blocked" ? turn.topic : null;
  record(
    req,
    {
      outcome: turn.outcome,
      text: "",
      toolCalls: [],
      model: null,
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      latencyMs: 0,
      firstTokenMs: null,
      finishReason: topic ? "content_filter" : "stop",
      error: null,
      blockedTopic: topic,
    },
    at,
    "input",
  );
}

/** A turn that passed admission and has not run yet. */
export interface AdmittedTurn {
  admitted: Admitted;
  headers: Record<string, string>;
  chain: ReturnType<typeof resolveChain>["chain"];
  system: string;
  inputTokens: number;
  started: number;
}

/**
 * Refuses, before admission reserves anything, a turn that no model of its chain can serve because
 * the operator never configured their providers: a 400 naming each missing setting, where calling
 * would end in a 502 after retries. A configured fallback still answers for a model without its key.
 */
function refuseUnconfigured(req: TurnRequest): void {
  const { chain } = resolveChain([req.model, req.tenant.fallbackModel], req.env);
  if (chain.length === 0 || chain.some((m) => m.configured)) return;
  const needs = chain.map((m, i) => `${m.model}${i > 0 ? " (fallback)" : ""} needs ${m.missing}`);
  console.warn(
    JSON.stringify({
      msg: "model not configured",
      tenantId: req.tenant.id,
      models: chain.map((m) => m.model),
      missing: [...new Set(chain.map((m) => m.missing))],
    }),
  );
  throw new AppError("VALIDATION_FAILED", `model not configured on this platform: ${needs.join("; ")}`, {
    details: [{ path: "model", message: `provider not configured: ${chain[0]?.missing} is not set` }],
  });
}

/** Admits the turn: the one Durable Object call before the model. Refusals throw a 429 AppError. */
export async function admitTurn(
  req: TurnRequest,
  /** How the gate is asked: directly, or through the conversation's object (one round trip). */
  admit: (m: MessageRequest) => Promise<AdmitResult> = (m) => admitMessage(req.env, req.tenant, m),
): Promise<AdmittedTurn> {
  const started = req.timing?.arrivedAt ?? Date.now();
  const system = [req.tenant.systemPrompt, req.clientSystem, req.knowledge].filter(Boolean).join("\n\n");
  const inputTokens = req.inputTokens ?? estimateTokens(req.messages, { system, tools: req.tools });
  const maxTokens = Math.min(
    req.maxTokens ?? req.tenant.maxTokensPerResponse,
    req.tenant.maxTokensPerResponse,
  );
  const { chain: requested, unknown } = resolveChain([req.model], req.env);
  if (unknown.length > 0 || requested.length === 0) {
    throw new AppError("VALIDATION_FAILED", `unknown model: ${req.model}`, {
      details: [{ path: "model", message: "unknown model" }],
    });
  }
  refuseUnconfigured(req);
  // Admission reserves at the price of the model the name calls (an alias resolved).
  const admitted = await admit({
    userId: req.userId,
    conversationId: req.conversationId,
    inputTokens,
    model: (requested[0] as (typeof requested)[number]).calledModel,
    maxTokens,
    continues: req.continues,
  });
  if (!admitted.ok) throw refused(req, admitted);
  const { chain } = resolveChain([admitted.model, req.tenant.fallbackModel], req.env);
  return { admitted, headers: rateLimitHeaders(admitted), chain, system, inputTokens, started };
}

/** A refused admission, counted in the tenant's analytics, as the error its route answers. */
function refused(req: TurnRequest, r: Extract<AdmitResult, { ok: false }>): AppError {
  countRefusal(
    req.env,
    req.ctx,
    req.tenant.id,
    r.level === "budget" ? (r.budget ?? "monthly_tokens") : r.level,
  );
  return refusalError(r);
}

/**
 * The admission of a message no model answers (a blocked topic, a request for a human, a
 * conversation an operator holds): one request in the user, tenant and global windows like any
 * message, no tokens and no budget, settled as it is admitted.
 */
function unpricedRequest(req: TurnRequest): MessageRequest {
  return {
    userId: req.userId,
    conversationId: req.conversationId,
    inputTokens: 0,
    model: req.model,
    maxTokens: 1,
    unpriced: true,
  };
}

/**
 * Counts a message no model answers in the rate windows; throws the refusal as admitTurn does.
 * Answers the RateLimit headers of the slot it took.
 */
export async function admitUnpriced(
  req: TurnRequest,
  admit: (m: MessageRequest) => Promise<AdmitResult> = (m) => admitMessage(req.env, req.tenant, m),
): Promise<Record<string, string>> {
  const r = await admit(unpricedRequest(req));
  if (!r.ok) throw refused(req, r);
  return rateLimitHeaders(r);
}

/** Gives back an admitted turn that will not run (its conversation turned out to be unknown). */
export function releaseTurn(req: TurnRequest, turn: AdmittedTurn): void {
  settleMessage(req.env, req.ctx, req.tenant, turn.admitted.reservationId, {
    model: calledModel(turn.admitted.model),
    inputTokens: 0,
    outputTokens: 0,
  });
}

/**
 * Starts the model call of an admitted turn. `messages` replaces the request's (the conversation's
 * history with the new message, a tool step's history); `turn.inputTokens` must count them, as
 * admitted: it is what a provider that reports no usage of its own (the mock, a cut stream) is
 * charged. The messages are not counted again here: a conversation's history, up to 6,000 tokens,
 * was counted once when it was stored, and counting it on every message cost about 0.1 ms a
 * thousand tokens.
 */
export function startTurn(req: TurnRequest, turn: AdmittedTurn, messages = req.messages): PreparedTurn {
  let resolveSummary: (s: TurnSummary) => void = () => {};
  const summary = new Promise<TurnSummary>((r) => {
    resolveSummary = r;
  });
  const inputTokens = turn.inputTokens;
  const events = run(
    { ...req, messages },
    turn.admitted,
    turn.chain,
    turn.system,
    inputTokens,
    turn.started,
    resolveSummary,
  );
  return {
    admitted: turn.admitted,
    headers: turn.headers,
    model: calledModel(turn.admitted.model),
    inputTokens,
    events,
    summary,
  };
}

/** Admits and starts a turn in one go (the stateless OpenAI path). */
export async function prepareTurn(req: TurnRequest): Promise<PreparedTurn> {
  return startTurn(req, await admitTurn(req));
}

async function* run(
  req: TurnRequest,
  admitted: Admitted,
  chain: ReturnType<typeof resolveChain>["chain"],
  system: string,
  inputTokens: number,
  started: number,
  done: (s: TurnSummary) => void,
): AsyncGenerator<TurnOutput, void, undefined> {
  const guard = new OutputGuard(matcherOf(req.tenant));
  const text: string[] = [];
  const calls: ToolCall[] = [];
  let usage: { inputTokens: number; outputTokens: number } | undefined;
  // The model called last, an alias resolved: what is priced and recorded.
  let model = calledModel(admitted.model);
  let firstTokenMs: number | null = null;
  let finishReason: TurnSummary["finishReason"] = "error";
  let error: string | null = null;
  let timedOut = false;
  let cause: FailureCause | undefined;
  let outcome: TurnSummary["outcome"] = "error";
  const upstream = runChain(
    chain,
    {
      system,
      messages: req.messages,
      maxTokens: admitted.maxTokens,
      temperature: req.temperature,
      stop: req.stop,
      tools: req.tools,
      toolChoice: req.toolChoice,
      stream: req.stream !== false,
      inputTokens,
    },
    { signal: req.signal, policy: policyFromEnv(req.env) },
  );
  try {
    for await (const ev of upstream as AsyncIterable<ChatEvent>) {
      if (ev.type === "text") {
        firstTokenMs ??= Date.now() - started;
        text.push(ev.delta);
        const safe = guard.push(ev.delta);
        if (guard.blocked) break;
        if (safe) yield { type: "text", delta: safe };
      } else if (ev.type === "tool_call") {
        firstTokenMs ??= Date.now() - started;
        let call = calls[ev.index];
        let out = ev;
        if (!call) {
          // A call's id comes with its first delta. One an upstream left out is made here, unique,
          // so the caller can answer the call and the transcript can pair the two.
          call = { id: ev.id || toolCallId(), name: "", arguments: "" };
          calls[ev.index] = call;
          if (!ev.id) out = { ...ev, id: call.id };
        }
        if (ev.name) call.name = ev.name;
        call.arguments += ev.argumentsDelta;
        yield out;
      } else if (ev.type === "usage") {
        usage = { inputTokens: ev.inputTokens, outputTokens: ev.outputTokens };
      } else if (ev.type === "done") {
        model = calledModel(ev.model);
        finishReason = ev.finishReason;
        outcome = "ok";
      } else if (ev.type === "error") {
        model = calledModel(ev.model);
        error = ev.error.message;
        timedOut = ev.error.kind === "timeout";
        cause = { status: ev.error.status, retryable: ev.error.retryable };
        outcome = "error";
      }
    }
    if (guard.blocked) {
      outcome = "blocked";
      finishReason = "content_filter";
      yield { type: "policy", text: policyMessage(req.tenant), topic: guard.blocked };
    } else {
      const tail = guard.flush();
      if (tail) yield { type: "text", delta: tail };
      if (outcome === "error") yield { type: "failed", message: visitorMessage(timedOut), cause };
    }
  } finally {
    // Runs on completion, on error and when the client goes away mid-stream: usage is settled
    // either way, from the provider's count or, if it never came, from what was produced.
    await upstream.return(undefined);
    const produced = text.join("");
    const used = usage ?? {
      inputTokens: firstTokenMs === null && outcome === "error" ? 0 : inputTokens,
      outputTokens: countTextTokens(produced) + calls.reduce((n, c) => n + countTextTokens(c.arguments), 0),
    };
    // The visitor left (closed the tab, cancelled the stream): not a failure of the model, so its
    // own outcome, kept out of the error rate. What was produced is still settled and counted.
    if (req.signal.aborted && outcome === "error") {
      outcome = "disconnected";
      error = "client disconnected";
    }
    const costUsd = settleMessage(req.env, req.ctx, req.tenant, admitted.reservationId, {
      model,
      inputTokens: used.inputTokens,
      outputTokens: used.outputTokens,
    });
    const summary: TurnSummary = {
      outcome,
      text: produced,
      toolCalls: calls.filter(Boolean),
      model,
      inputTokens: used.inputTokens,
      outputTokens: used.outputTokens,
      costUsd,
      latencyMs: Date.now() - started,
      // A caller that does not stream reads nothing before the last byte: no first token to report.
      firstTokenMs: req.stream === false ? null : firstTokenMs,
      finishReason,
      error,
      blockedTopic: guard.blocked ?? null,
    };
    if (!req.deferRecord) record(req, summary, started, "output");
    done(summary);
  }
}

/** An id for a tool call its upstream sent without one, in OpenAI's shape. */
function toolCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** What the visitor reads when the model could not answer; never the upstream's internals. */
function visitorMessage(timedOut: boolean): string {
  return timedOut
    ? "Sorry, the assistant took too long to answer. Please try again."
    : "Sorry, the assistant could not answer right now. Please try again in a moment.";
}
