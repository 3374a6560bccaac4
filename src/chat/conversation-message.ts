/** One visitor message on the conversation API, from admission to the recorded turn. */
import type { Context } from "hono";
import { countRefusal } from "../analytics/producer";
import { type AppEnv, execCtx } from "../app";
import { AppError } from "../errors";
import { type AppliedExperiments, applyAssignment, switchedOnExperiments } from "../experiments/apply";
import type { TenantConfig } from "../tenants/config";
import { limitAddress } from "./address-limits";
import { call, conversationUsers, historyBudgetOf, knownHistoryTokens, stubOf } from "./conversation-access";
import type { Outcome } from "./conversation-do";
import type { ConversationView, PrepareResult } from "./conversation-types";
import {
  admitTurn,
  recordUnanswered,
  releaseTurn,
  screenInput,
  startTurn,
  type TurnRequest,
  type TurnSummary,
} from "./engine";
import { endUserOf } from "./identity";
import type { ChatMessage } from "./providers/types";
import { asksForHuman } from "./safety";
import { frameStream, SSE_HEADERS, sseFrame } from "./sse";
import { estimateTokens, messageTokens } from "./tokens";

const HUMAN_REPLY =
  "I've passed our conversation to a member of the team; they will get back to you shortly. You can keep writing here in the meantime.";

/** Sends the visitor's next message: admission and history in parallel, the model, the record. */
export async function sendMessage(
  c: Context<AppEnv>,
  id: string,
  content: string,
  stream: boolean,
): Promise<Response> {
  // A browser's message counts against its address first: blocked and hand-over messages too. A
  // refused one is still a request: counted like an admission refusal.
  await limitAddress(c, "message").catch((err: unknown) => {
    if (err instanceof AppError && err.code === "RATE_LIMITED")
      countRefusal(c.get("svc").env, execCtx(c), c.get("tenant").id, "address");
    throw err;
  });
  const tenant = c.get("tenant");
  const stub = stubOf(c, id);
  const abort = new AbortController();
  const at = Date.now();

  // History loads in parallel with admission: the input estimate is an upper bound (the history
  // budget), so the reservation holds whatever history comes back. The budget is what the whole
  // history costs when this isolate knows it, else the flat HISTORY_TOKEN_BUDGET; the history is
  // trimmed to the same budget, so a stale size can only trim it, never exceed the reservation.
  const convKey = `${tenant.id}:${id}`;
  const sizes = knownHistoryTokens(c.get("svc").env);
  const historyBudget = historyBudgetOf(c.get("svc").env, convKey);
  const prepared = call(
    async (): Promise<Outcome<PrepareResult>> => ({
      ok: true,
      value: await stub.prepare(tenant.id, historyBudget),
    }),
  );
  const newMessage: ChatMessage = { role: "user", content };
  const early = () =>
    prepared.then(
      (r) => (r.ok ? r.view : undefined),
      () => undefined,
    );
  // The end user a message counts against: a browser's visitor id, or for servers the user the
  // conversation was started for (remembered in this isolate; else read before admission).
  let user: string;
  let view: ConversationView | undefined;
  if (c.get("apiKey").kind === "publishable") user = endUserOf(c, undefined);
  else {
    const known = conversationUsers.get(convKey);
    if (!known) view = await early();
    user = known ?? view?.userId ?? endUserOf(c, undefined);
  }
  // The conversation's variant was fixed at its start and is stored with it. A tenant with
  // experiments waits for it before admission (a variant may change the model and the limits);
  // the others load history and admit in parallel, as ever.
  const svc = c.get("svc");
  const stored =
    (await switchedOnExperiments(svc, tenant.id)).length > 0 ? (view ?? (await early())) : undefined;
  const exp = await applyAssignment(svc, tenant, stored ?? { experiment: null, variant: null });
  const base = { tenant: exp.config, userId: user, conversationId: id };
  const screenReq: TurnRequest = turnRequest(c, base, [newMessage], 0, abort.signal, exp);
  const blocked = screenInput(screenReq);
  const human = !blocked && asksForHuman(content);
  const estimate = estimateTokens([newMessage], { system: exp.config.systemPrompt }) + historyBudget;
  const admitReq = { ...screenReq, inputTokens: estimate };
  const admitting = blocked || human ? undefined : admitTurn(admitReq);
  // Both run at once; when the conversation turns out unusable, an admitted turn is released.
  const [state, admission] = await Promise.allSettled([prepared, admitting ?? Promise.resolve(undefined)]);
  const release = () => {
    if (admission.status === "fulfilled" && admission.value) releaseTurn(admitReq, admission.value);
  };
  if (state.status === "rejected") {
    release();
    throw state.reason;
  }
  const p = state.value;
  if (p.ok) {
    conversationUsers.set(convKey, p.view.userId);
    sizes.set(convKey, p.view.historyTokens);
  }
  // Another visitor's conversation does not exist for this one, ended or not: a 409 would tell.
  const foreign = c.get("apiKey").kind === "publishable" && p.view?.userId !== user;
  if (!p.ok || foreign) {
    release();
    if (!foreign && !p.ok && p.reason === "ended")
      throw new AppError("CONFLICT", "conversation has ended; start a new one");
    throw new AppError("NOT_FOUND", "no such conversation");
  }
  if (admission.status === "rejected") throw admission.reason;
  const admitted = admission.value;

  const record = async (s: TurnSummary | undefined, replyText: string, escalate?: string) => {
    const toolCalls = s?.toolCalls.length ? s.toolCalls : undefined;
    const r = await call(() =>
      stub.recordTurn(tenant.id, {
        at,
        user: { content, tokens: messageTokens(newMessage) },
        assistant: replyText
          ? {
              content: replyText,
              // Counted as the model is sent it (tool calls too), so history costs what it is sent.
              tokens: messageTokens({ role: "assistant", content: replyText, toolCalls }),
              toolCalls,
            }
          : null,
        inputTokens: s?.inputTokens ?? 0,
        outputTokens: s?.outputTokens ?? 0,
        costUsd: s?.costUsd ?? 0,
        latencyMs: s?.latencyMs ?? 0,
        outcome: s?.outcome ?? (blocked ? "blocked" : "human"),
        toolsUsed: [...new Set((s?.toolCalls ?? []).map((t) => t.name))],
        escalate,
        escalationEmail: tenant.escalationEmail,
      }),
    );
    // The next message reserves what the history now costs.
    sizes.set(convKey, r.view.historyTokens);
    return r;
  };

  // Recorded under the conversation's own assignment, also if its experiment stopped meanwhile,
  // at the message's position in the conversation.
  const { experiment, variant } = p.view;
  const turnReq = { ...admitReq, turnIndex: p.view.turnCount, experiment, variant };

  // Answers that need no model: a blocked topic, or a visitor asking for a human. Each is a turn
  // like any other: one request in every count.
  if (!admitted) {
    recordUnanswered(
      turnReq,
      blocked ? { outcome: "blocked", topic: blocked.topic } : { outcome: "human" },
      at,
    );
    const text = blocked ? blocked.text : HUMAN_REPLY;
    const r = await record(undefined, text, human ? "visitor asked for a human" : undefined);
    const reply = replyOf(
      id,
      text,
      r.view.state,
      r.escalatedNow || p.view.state === "escalated",
      Boolean(blocked),
      undefined,
    );
    if (!stream) return c.json(reply, 200);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify({ text }), blocked ? "policy" : "delta");
      yield sseFrame(JSON.stringify(reply), "done");
    })();
    return c.body(
      frameStream(frames, () => {}),
      200,
      SSE_HEADERS,
    );
  }

  const withHistory: ChatMessage[] = [...p.history.map(toChat), newMessage];
  const ready = startTurn(turnReq, admitted, withHistory);
  const gather = async (onText?: (t: string, event: string) => void) => {
    let text = "";
    let failed: string | undefined;
    let policy = false;
    for await (const out of ready.events) {
      if (out.type === "text") {
        text += out.delta;
        onText?.(out.delta, "delta");
      } else if (out.type === "policy") {
        text += (text ? "\n\n" : "") + out.text;
        policy = true;
        onText?.(out.text, "policy");
      } else if (out.type === "failed") failed = out.message;
    }
    const s = await ready.summary;
    const willEscalate =
      s.outcome === "error" && p.view.consecutiveFailures + 1 >= 2 && p.view.state !== "escalated";
    const shown = failed ? (willEscalate ? `${failed} ${HUMAN_REPLY}` : failed) : text;
    const r = await record(s, failed ? "" : text);
    return {
      s,
      r,
      failed,
      policy,
      shown,
      reply: replyOf(id, shown, r.view.state, r.view.state === "escalated", policy, s),
    };
  };
  if (!stream) {
    const g = await gather();
    return c.json(g.reply, 200, ready.headers);
  }
  const frames = (async function* () {
    const queue: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    let finished: Awaited<ReturnType<typeof gather>> | undefined;
    let failure: unknown;
    const done = gather((t, event) => {
      queue.push(sseFrame(JSON.stringify({ text: t }), event));
      wake?.();
    }).then(
      (g) => {
        finished = g;
        wake?.();
      },
      (err) => {
        failure = err;
        wake?.();
      },
    );
    while (!finished && failure === undefined) {
      if (queue.length === 0) await new Promise<void>((r) => (wake = r));
      while (queue.length) yield queue.shift() as Uint8Array;
    }
    await done;
    while (queue.length) yield queue.shift() as Uint8Array;
    if (failure !== undefined || !finished) {
      yield sseFrame(
        JSON.stringify({ message: "the conversation could not be updated; please retry" }),
        "error",
      );
      return;
    }
    if (finished.failed) yield sseFrame(JSON.stringify({ message: finished.shown }), "error");
    yield sseFrame(JSON.stringify(finished.reply), "done");
  })();
  return c.body(
    frameStream(frames, () => abort.abort(new Error("client disconnected"))),
    200,
    { ...SSE_HEADERS, ...ready.headers },
  );
}

function toChat(m: {
  role: "user" | "assistant";
  content: string;
  toolCalls?: { id: string; name: string; arguments: string }[];
}): ChatMessage {
  return m.role === "user"
    ? { role: "user", content: m.content }
    : { role: "assistant", content: m.content, ...(m.toolCalls ? { toolCalls: m.toolCalls } : {}) };
}

function replyOf(
  id: string,
  text: string,
  state: ConversationView["state"],
  escalated: boolean,
  blocked: boolean,
  s: TurnSummary | undefined,
) {
  return {
    conversation_id: id,
    message: { role: "assistant" as const, content: text },
    state,
    escalated,
    blocked,
    usage: {
      input_tokens: s?.inputTokens ?? 0,
      output_tokens: s?.outputTokens ?? 0,
      cost_usd: s?.costUsd ?? 0,
    },
  };
}

function turnRequest(
  c: Context<AppEnv>,
  base: { tenant: TenantConfig; userId: string; conversationId: string },
  messages: ChatMessage[],
  turnIndex: number,
  signal: AbortSignal,
  exp: AppliedExperiments,
): TurnRequest {
  return {
    env: c.get("svc").env,
    ctx: execCtx(c),
    ...base,
    channel: "web",
    turnIndex,
    messages,
    model: base.tenant.model,
    temperature: exp.overrides.temperature,
    experiment: exp.experiment,
    variant: exp.variant,
    signal,
  };
}
