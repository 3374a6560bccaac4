/**
 * The tool loop: one visitor message, several model calls. The model asks for tools, the platform
 * runs them (src/tools/invoke.ts) and hands their answers back as tool messages, until the model
 * answers in text or the tenant's step limit is reached. Every model call is admitted and settled
 * like a single one; the steps after the first continue the first one's admission, so a message is
 * one request in the rate windows while the tokens and cost of every step count in the budgets.
 */

import type { ToolCallRecord } from "../analytics/events";
import {
  type AdmittedTurn,
  admitTurn,
  recordAnswered,
  startTurn,
  type TurnOutput,
  type TurnRequest,
  type TurnSummary,
} from "../chat/engine";
import { calledModel } from "../chat/providers/aliases";
import type { ChatMessage, ToolCall, ToolDefinition } from "../chat/providers/types";
import { estimateTokens, messageTokens } from "../chat/tokens";
import { AppError } from "../errors";
import type { Services } from "../services";
import { invokeTool, type ToolCallContext, type ToolEnv, toolFailureMessage } from "./invoke";
import { toolsForTenant } from "./registry";
import type { RegisteredTool, ToolFailure, ToolOutcome } from "./types";

/** Tool rounds per message when the tenant's config predates the setting. */
export const DEFAULT_MAX_TOOL_STEPS = 3;
/** The most characters of one tool answer the model is given back (the invoker caps bytes first). */
export const TOOL_CONTENT_LIMIT = 16_000;
/** Tool calls run from one model answer; the rest get a corrective message instead. */
export const MAX_CALLS_PER_STEP = 8;

/** What the visitor reads when the model still wants tools after the last allowed round. */
export const STEP_LIMIT_MESSAGE =
  "Sorry, I could not finish looking that up. Please try again, or ask for a member of the team.";

/** How the loop reaches a tenant's tools: the registry's lookup and invoker (or a test's). */
export interface ToolRunner {
  /** The tenant's enabled tools that its allowed_tools lets the bot use. */
  tools: readonly RegisteredTool[];
  /** Validates, calls and caps one tool call; never throws. */
  invoke(tool: RegisteredTool, argumentsJson: string, signal: AbortSignal): Promise<ToolOutcome>;
}

/** The `tool` SSE event of the conversation API: a tool starting or ending (the widget's status line). */
export type ToolFrame =
  | { phase: "start"; name: string; label: string }
  | { phase: "end"; name: string; ok: boolean };

/** A tool starting or ending, as the loop yields it. */
export type ToolStatus = { type: "tool" } & ToolFrame;

/** What a tool turn yields: the engine's output plus tool status. */
export type LoopOutput = TurnOutput | ToolStatus;

/** A turn's summary with what its tools did; `toolCalls` is empty: every call was run here. */
export interface ToolTurnSummary extends TurnSummary {
  steps: number;
  tools: ToolCallRecord[];
  toolsUsed: string[];
}

/** A message on its way through the loop; the shape of the engine's PreparedTurn. */
export interface ToolTurn {
  headers: Record<string, string>;
  model: string;
  events: AsyncGenerator<LoopOutput, void, undefined>;
  summary: Promise<ToolTurnSummary>;
}

/** The tenant's tools as the registry has them, called for real (signed https or dispatch). */
export async function registryRunner(
  svc: Services,
  env: ToolEnv,
  tenant: TurnRequest["tenant"],
  context: ToolCallContext,
): Promise<ToolRunner> {
  return {
    tools: await toolsForTenant(svc, tenant),
    invoke: (tool, args, signal) => invokeTool(env, tool, args, signal, context),
  };
}

/** The runner once it is ready; undefined (no tools this time) when the registry could not answer. */
export async function toolsOrNone(
  runner: Promise<ToolRunner>,
  tenantId: string,
): Promise<ToolRunner | undefined> {
  return runner.catch((err: unknown) => {
    // The registry being unreachable must not cost the visitor the answer.
    console.warn(JSON.stringify({ msg: "tools unavailable", tenantId, error: String(err) }));
    return undefined;
  });
}

/** A tool status as the conversation API streams it. */
export function toolFrame(s: ToolStatus): ToolFrame {
  return s.phase === "start"
    ? { phase: "start", name: s.name, label: s.label }
    : { phase: "end", name: s.name, ok: s.ok };
}

/** A registered tool as the model is offered it. */
export function toolDefinition(t: RegisteredTool): ToolDefinition {
  return { name: t.name, description: t.description, parameters: t.parameters };
}

/** The visitor-facing part of a tool's description: its first sentence, short. */
function labelOf(tool: RegisteredTool | undefined): string {
  const first = (tool?.description ?? "").split(/(?<=[.!?])\s/)[0] ?? "";
  return first.length > 80 ? `${first.slice(0, 79)}…` : first;
}

/**
 * Starts a message with tools: the first model call is the admitted `first`; later steps are
 * admitted as continuations of it. Without usable tools it is exactly the engine's single call.
 */
export function startToolTurn(
  req: TurnRequest,
  first: AdmittedTurn,
  messages: ChatMessage[],
  runner: ToolRunner | undefined,
): ToolTurn {
  if (!runner || runner.tools.length === 0) {
    const plain = startTurn(req, first, messages);
    const summary = plain.summary.then((s) => ({ ...s, steps: 1, tools: [], toolsUsed: [] }));
    return { headers: plain.headers, model: plain.model, events: plain.events, summary };
  }
  let resolve: (s: ToolTurnSummary) => void = () => {};
  const summary = new Promise<ToolTurnSummary>((ok) => {
    resolve = ok;
  });
  return {
    headers: first.headers,
    model: calledModel(first.admitted.model),
    events: loop(req, first, messages, runner, resolve),
    summary,
  };
}

async function* loop(
  req: TurnRequest,
  first: AdmittedTurn,
  messages: ChatMessage[],
  runner: ToolRunner,
  done: (s: ToolTurnSummary) => void,
): AsyncGenerator<LoopOutput, void, undefined> {
  const started = first.started;
  const maxSteps = req.tenant.maxToolSteps ?? DEFAULT_MAX_TOOL_STEPS;
  const tools = runner.tools.map(toolDefinition);
  const base: TurnRequest = { ...req, tools, toolChoice: undefined, deferRecord: true };
  const text: string[] = [];
  const records: ToolCallRecord[] = [];
  let totals = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
  let firstTokenMs: number | null = null;
  let last: TurnSummary | undefined;
  let error: string | null = null;
  let turn = first;
  let history = messages;
  /** What `history` costs with the system prompt and tool definitions, once a step needs it. */
  let counted: number | undefined;
  let steps = 0;
  try {
    for (let round = 0; ; round++) {
      // After the last allowed round the model is still shown the tools (its history holds calls
      // to them) but must answer in text.
      const stepReq: TurnRequest = round >= maxSteps ? { ...base, toolChoice: "none" } : base;
      const step = startTurn(stepReq, turn, history);
      steps += 1;
      // A step's text starts a paragraph of its own after what earlier steps said.
      let gap = text.join("") ? "\n\n" : "";
      for await (const out of step.events) {
        // Tool calls are the platform's business here; the caller sees their status instead.
        if (out.type === "tool_call") continue;
        if (out.type === "text" && gap) {
          yield { type: "text", delta: gap };
          text.push(gap);
          gap = "";
        }
        yield out;
      }
      const s = await step.summary;
      last = s;
      text.push(s.text);
      totals = {
        inputTokens: totals.inputTokens + s.inputTokens,
        outputTokens: totals.outputTokens + s.outputTokens,
        costUsd: totals.costUsd + s.costUsd,
      };
      if (firstTokenMs === null && s.firstTokenMs !== null)
        firstTokenMs = turn.started - started + s.firstTokenMs;
      const calls = s.toolCalls;
      if (s.outcome !== "ok" || calls.length === 0) break;
      if (round >= maxSteps) {
        for (const c of calls) records.push({ name: c.name, ok: false, failure: "step_limit", latencyMs: 0 });
        error = "tool step limit reached";
        yield* say(text, STEP_LIMIT_MESSAGE);
        break;
      }
      const results = yield* runCalls(req, runner, calls, records);
      if (req.signal.aborted) break;
      // The next step sends the history so far, the tool definitions and what this step added:
      // the history is counted once a message, then only what each step adds.
      counted ??= estimateTokens(history, { system: first.system, tools });
      const added: ChatMessage[] = [{ role: "assistant", content: s.text, toolCalls: calls }, ...results];
      for (const m of added) counted += messageTokens(m);
      history = [...history, ...added];
      try {
        turn = await admitTurn({
          ...base,
          messages: history,
          inputTokens: counted,
          continues: first.admitted.reservationId,
        });
      } catch (err) {
        // Refused mid-message (a budget ran out) or the gate unreachable: the visitor is told,
        // the model is not called again; what ran so far is settled.
        error = `tool step refused: ${err instanceof AppError ? err.code : "INTERNAL"}`;
        if (!(err instanceof AppError))
          console.error(JSON.stringify({ msg: "tool step admission failed", error: String(err) }));
        yield* say(text, refusalMessage(err));
        break;
      }
    }
  } finally {
    const outcome =
      req.signal.aborted && (last === undefined || last.outcome === "ok") ? "disconnected" : last?.outcome;
    const summary: ToolTurnSummary = {
      outcome: outcome ?? "error",
      text: text.join(""),
      toolCalls: [],
      model: last?.model ?? calledModel(first.admitted.model),
      ...totals,
      latencyMs: Date.now() - started,
      firstTokenMs,
      finishReason: last?.finishReason === "tool_calls" ? "stop" : (last?.finishReason ?? "error"),
      error: last?.error ?? (outcome === "disconnected" ? "client disconnected" : error),
      blockedTopic: last?.blockedTopic ?? null,
      steps,
      tools: records,
      toolsUsed: [...new Set(records.map((t) => t.name))],
    };
    recordAnswered(req, summary, started);
    done(summary);
  }
}

/** Yields `message` as text of the answer, on its own paragraph; kept in the turn's text. */
function* say(text: string[], message: string): Generator<LoopOutput, void, undefined> {
  const delta = text.join("") ? `\n\n${message}` : message;
  text.push(delta);
  yield { type: "text", delta };
}

/** The visitor's reading of a refusal: its message, which never holds internals. */
function refusalMessage(err: unknown): string {
  return err instanceof AppError && (err.code === "BUDGET_EXCEEDED" || err.code === "RATE_LIMITED")
    ? `Sorry, I cannot continue right now: ${err.message}`
    : "Sorry, I could not finish that. Please try again in a moment.";
}

/**
 * Runs one model answer's tool calls at once and yields their status; answers the tool messages
 * that go back to the model, one per call, in the calls' order.
 */
async function* runCalls(
  req: TurnRequest,
  runner: ToolRunner,
  calls: readonly ToolCall[],
  records: ToolCallRecord[],
): AsyncGenerator<LoopOutput, ChatMessage[], undefined> {
  const byName = new Map(runner.tools.map((t) => [t.name, t]));
  for (const c of calls)
    yield { type: "tool", phase: "start", name: c.name, label: labelOf(byName.get(c.name)) };
  const outcomes = await Promise.all(
    calls.map((c, i) =>
      i >= MAX_CALLS_PER_STEP
        ? refused(c.name, "step_limit", `Not run: at most ${MAX_CALLS_PER_STEP} tool calls per answer.`)
        : runCall(req, runner, byName.get(c.name), c),
    ),
  );
  const results: ChatMessage[] = [];
  for (const [i, c] of calls.entries()) {
    const o = outcomes[i] as ToolOutcome;
    records.push({ name: c.name, ok: o.ok, failure: o.ok ? null : o.failure, latencyMs: o.latencyMs });
    yield { type: "tool", phase: "end", name: c.name, ok: o.ok };
    results.push({ role: "tool", toolCallId: c.id, content: capped(o.content) });
  }
  return results;
}

async function runCall(
  req: TurnRequest,
  runner: ToolRunner,
  tool: RegisteredTool | undefined,
  call: ToolCall,
): Promise<ToolOutcome> {
  const name = call.name.slice(0, 64);
  if (!tool) {
    // A name the tenant allows but has not registered (or disabled) is unknown; any other is not allowed.
    const failure = req.tenant.allowedTools.includes(call.name) ? "unknown_tool" : "not_allowed";
    const available = runner.tools.map((t) => t.name).join(", ");
    return refused(name, failure, `${toolFailureMessage(name, failure)} They are: ${available}.`);
  }
  const t0 = Date.now();
  try {
    return await runner.invoke(tool, call.arguments, req.signal);
  } catch (err) {
    // The invoker promises not to throw; if it does, the model still gets an answer to its call.
    console.error(JSON.stringify({ msg: "tool invoke threw", tool: tool.name, error: String(err) }));
    return refused(name, "unreachable", "Error: the tool could not be reached.", Date.now() - t0);
  }
}

function refused(name: string, failure: ToolFailure, content: string, latencyMs = 0): ToolOutcome {
  return { ok: false, name, failure, content, latencyMs };
}

/** Tool output is untrusted data: it goes back only as tool content, and only this much of it. */
function capped(content: string): string {
  return content.length > TOOL_CONTENT_LIMIT
    ? `${content.slice(0, TOOL_CONTENT_LIMIT)}\n[truncated: the tool's answer was longer]`
    : content;
}
