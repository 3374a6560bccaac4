/** One visitor message on the conversation API, from admission to the recorded turn. */
import type { Context } from "hono";
import type { AddressHit } from "../admission/address-windows";
import { admissionCall, type MessageRequest } from "../admission/client";
import { gateFailure, rejectionError } from "../admission/headers";
import type { AdmitInput, AdmitResult } from "../admission/types";
import { countRefusal, sendAnalytics } from "../analytics/producer";
import { type AppEnv, execCtx } from "../app";
import { AppError } from "../errors";
import { type AppliedExperiments, applyAssignment, switchedOnExperiments } from "../experiments/apply";
import type { AnswerSource } from "../knowledge/chat-schemas";
import {
  citedSources,
  contextTokens,
  groundMessage,
  knowledgeOf,
  planKnowledge,
  recordUnansweredQuestion,
  saysUnknown,
} from "../knowledge/retrieve";
import { redact, redactorOf, redactReply } from "../privacy/redact";
import type { TenantConfig } from "../tenants/config";
import type { ToolCallContext } from "../tools/invoke";
import { registryRunner, startToolTurn, toolDefinition, toolFrame, toolsOrNone } from "../tools/loop";
import { addressHitOf, addressRefusal, knownRefusal, type Refused, rememberRefusal } from "./address-limits";
import {
  call,
  conversationAssignments,
  HISTORY_TOKEN_BUDGET,
  type StoredAssignment,
  stubOf,
} from "./conversation-access";
import { MAX_CONVERSATION_ENTRIES, type Outcome } from "./conversation-do";
import type { ConversationView, PrepareResult, TurnCallResult } from "./conversation-types";
import {
  type AdmittedTurn,
  admitTurn,
  admitUnpriced,
  recordUnanswered,
  releaseTurn,
  screenInput,
  type TurnRequest,
  type TurnSummary,
} from "./engine";
import { endUserOf } from "./identity";
import type { ChatMessage } from "./providers/types";
import { RequestHold } from "./request-hold";
import { asksForHuman } from "./safety";
import { frameStream, SSE_HEADERS, sseFrame } from "./sse";
import { estimateTokens, messageTokens } from "./tokens";

/** Thrown out of admission when an operator holds the conversation: nothing is admitted. */
const HELD = new Error("held by an operator");

const HUMAN_REPLY =
  "I've passed our conversation to a member of the team; they will get back to you shortly. You can keep writing here in the meantime.";

/**
 * Sends the visitor's next message: history and admission in one call, the model, the record. Held
 * from before admission until the turn is recorded, whether or not its client stays.
 */
export function sendMessage(
  c: Context<AppEnv>,
  id: string,
  content: string,
  stream: boolean,
): Promise<Response> {
  const hold = new RequestHold(execCtx(c));
  return hold.run(() => answerMessage(c, id, content, stream, hold));
}

async function answerMessage(
  c: Context<AppEnv>,
  id: string,
  content: string,
  stream: boolean,
  hold: RequestHold,
): Promise<Response> {
  const tenant = c.get("tenant");
  const svc = c.get("svc");
  // PII is redacted before the transcript stores it; before the model sees it too when the tenant asks.
  const redactor = redactorOf(tenant);
  const stub = stubOf(c, id);
  const abort = new AbortController();
  const at = Date.now();
  const convKey = `${tenant.id}:${id}`;
  const newMessage: ChatMessage = {
    role: "user",
    content: redactor.beforeModel ? redact(content, redactor) : content,
  };
  // A browser's message counts against its address (blocked and hand-over messages too), and may
  // reach only a conversation its own visitor (or verified user) started.
  const address = addressHitOf(c, "message");
  const refuseAddress = (hit: AddressHit, refused: Refused): never => {
    countRefusal(svc.env, execCtx(c), tenant.id, "address");
    throw addressRefusal(hit, refused);
  };
  // An address this isolate was told is over its limit is refused here, before the knowledge
  // search, the tools and the calls to the conversation and the tenant's gate.
  const known = address && knownRefusal(address);
  if (address && known) refuseAddress(address, known);
  const owner = c.get("apiKey").kind === "publishable" ? endUserOf(c, undefined) : undefined;
  // The one round trip before the model: the conversation answers its state and newest history,
  // and asks the tenant's gate itself (the address count; admission, when it can take the message).
  let answer: TurnCallResult | undefined;
  let askedAt = 0;
  const visit = async (admit?: AdmitInput): Promise<TurnCallResult> => {
    askedAt = Date.now();
    answer = await call(
      async (): Promise<Outcome<TurnCallResult>> => ({
        ok: true,
        value: await stub.prepareTurn(tenant.id, {
          owner,
          historyBudget: HISTORY_TOKEN_BUDGET,
          address,
          admit,
        }),
      }),
    );
    return answer;
  };
  // The conversation's variant was fixed at its start and is stored with it. A tenant with
  // experiments needs it before admission (a variant may change the model and the limits): this
  // isolate remembers it, else it is read first (a second round trip, once per isolate).
  let stored: StoredAssignment | undefined;
  if ((await switchedOnExperiments(svc, tenant.id)).length > 0) {
    stored = conversationAssignments.get(convKey);
    if (!stored) {
      const r = await call(
        async (): Promise<Outcome<PrepareResult>> => ({ ok: true, value: await stub.prepare(tenant.id, 0) }),
      );
      stored = r.ok ? r.view : undefined;
    }
  }
  const exp = await applyAssignment(svc, tenant, stored ?? { experiment: null, variant: null });
  // Admission counts the message against the conversation's own user: the object puts it in.
  const base = { tenant: exp.config, userId: owner ?? endUserOf(c, undefined), conversationId: id, stream };
  const screenReq: TurnRequest = turnRequest(c, base, [newMessage], 0, abort.signal, exp);
  const blocked = screenInput(screenReq);
  const human = !blocked && asksForHuman(content);
  // The tenant's knowledge (src/knowledge) is searched once the message is admitted: its address
  // counted, its conversation found to be its visitor's, its tokens reserved. Admission reserves
  // the most its block can take; the turn is charged what it was.
  const knowledge = blocked || human ? undefined : await planKnowledge(svc, tenant.id);
  const knowledgeTokens = knowledge?.bound ?? 0;
  // The conversation API always offers the tenant's tools (src/tools/loop.ts), from the first model
  // call: their definitions are sent, so they are counted before admission (the registry is cached).
  // Its calls name the conversation's own user, known once the conversation answers (below).
  const toolContext: ToolCallContext = {
    conversationId: id,
    requestId: c.get("requestId"),
    user: base.userId,
  };
  const runner =
    blocked || human
      ? undefined
      : await toolsOrNone(registryRunner(svc, svc.env, exp.config, toolContext), tenant.id);
  const offered = runner?.tools.length ? runner.tools.map(toolDefinition) : undefined;
  // The new message, the system prompt, the tools and the knowledge block's bound; the object adds
  // what the history it returns costs, so the reservation holds what is sent, in any isolate.
  const userTokens = messageTokens(newMessage);
  const estimate =
    estimateTokens([], { system: exp.config.systemPrompt, tools: offered }) + userTokens + knowledgeTokens;
  const admitReq = { ...screenReq, inputTokens: estimate };
  // The gate's refusal of the address, remembered for the address's next requests.
  const refuseGated =
    address &&
    ((hit: Refused): never => {
      rememberRefusal(address, hit, askedAt);
      return refuseAddress(address, hit);
    });
  // Asks the gate through the conversation's object, with this isolate's queued settlements.
  const visitGate = async (m: MessageRequest): Promise<AdmitResult> => {
    const gateCall = admissionCall(svc.env, admitReq.tenant, m);
    const r = await visit(gateCall.input);
    gateCall.done(
      r.gate?.reached === true && r.gate.outcome.ok && r.gate.outcome.value.admission !== undefined,
    );
    const { conversation, admission } = verdict(r, refuseGated);
    // An operator holds it: the object counted the message as one no model answers (refused
    // like any message), and no model will be called.
    if (conversation.view.state === "human" && (admission?.ok ?? true)) throw HELD;
    if (!admission) throw new Error("the conversation did not ask for admission");
    return admission;
  };
  let turn: AdmittedTurn | undefined;
  let unpricedHeaders: Record<string, string> | undefined;
  if (!blocked && !human) {
    turn = await admitTurn(admitReq, visitGate).catch(async (err: unknown) => {
      if (err === HELD) return undefined;
      // Refused before the conversation was reached (an unknown or unconfigured model): the
      // address still counts, and its refusals and the conversation's come first, as ever.
      if (!answer) verdict(await visit(), refuseGated);
      throw err;
    });
  } else {
    // A blocked topic or a request for a human reaches no model, and is one request in every
    // window all the same.
    unpricedHeaders = await admitUnpriced(admitReq, visitGate).catch((err: unknown) => {
      if (err !== HELD) throw err;
      return undefined;
    });
  }
  const visited = answer ?? (await visit());
  const { conversation: p } = verdict(visited, refuseGated);
  conversationAssignments.set(convKey, { experiment: p.view.experiment, variant: p.view.variant });
  // The knowledge block, for an admitted message its conversation will answer (none when the
  // tenant's knowledge is off). A search that fails gives the reservation back.
  const grounding =
    turn && knowledge && knowledgeTokens > 0
      ? await groundMessage(svc, tenant.id, newMessage.content, knowledge).catch((err: unknown) => {
          releaseTurn(admitReq, turn);
          throw err;
        })
      : undefined;
  const block = knowledgeOf(grounding);
  // The turn holds what is sent: the new message, the history returned with it, the block found.
  const admitted = turn && {
    ...turn,
    system: [turn.system, block].filter(Boolean).join("\n\n"),
    inputTokens: turn.inputTokens - knowledgeTokens + contextTokens(grounding) + visited.historyTokens,
  };

  const record = async (s: TurnSummary | undefined, replyText: string, escalate?: string) => {
    const toolCalls = s?.toolCalls.length ? s.toolCalls : undefined;
    const r = await call(() =>
      stub.recordTurn(tenant.id, {
        at,
        user: { content: redact(content, redactor), tokens: userTokens },
        assistant: replyText
          ? {
              content: redactReply(replyText, content, redactor),
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
        toolsUsed: s?.toolsUsed ?? [...new Set((s?.toolCalls ?? []).map((t) => t.name))],
        escalate,
        escalationEmail: tenant.escalationEmail,
        origin: new URL(c.req.url).origin,
      }),
    );
    // The turn's inbox entries leave with this isolate's analytics events, in one pack.
    if (r.inbox) sendAnalytics(svc.env, execCtx(c), r.inbox);
    return r;
  };

  // Recorded under the conversation's own assignment, also if its experiment stopped meanwhile,
  // at the message's position in the conversation.
  const { experiment, variant } = p.view;
  toolContext.user = p.view.userId;
  const turnReq = {
    ...admitReq,
    knowledge: block,
    grounding,
    userId: p.view.userId,
    turnIndex: p.view.turnCount,
    experiment,
    variant,
  };

  // An operator holds the conversation: the message is recorded (and reaches the operator live,
  // src/handoff) and nothing answers here. Blocked topics are still refused as ever.
  if (p.view.state === "human" && !blocked) {
    recordUnanswered(turnReq, { outcome: "human" }, at);
    const r = await record(undefined, "");
    const reply = { ...replyOf(id, "", r.view.state, false, false, undefined), message: null };
    if (!stream) return c.json(reply, 200);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify(reply), "done");
    })();
    return c.body(
      frameStream(frames, () => {}),
      200,
      SSE_HEADERS,
    );
  }

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
    if (!stream) return c.json(reply, 200, unpricedHeaders);
    const frames = (async function* () {
      yield sseFrame(JSON.stringify({ text }), blocked ? "policy" : "delta");
      yield sseFrame(JSON.stringify(reply), "done");
    })();
    return c.body(
      frameStream(frames, () => {}),
      200,
      { ...SSE_HEADERS, ...unpricedHeaders },
    );
  }

  // The object sends the history in the model's shape: it is used as it came.
  const withHistory: ChatMessage[] = [...p.history, newMessage];
  const ready = startToolTurn(turnReq, admitted, withHistory, runner);
  // Streamed, it runs after the handler returned and closed the request's pool.
  const gather = async (onText?: (t: string, event: string, data?: object) => void) => {
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
      } else if (out.type === "tool") onText?.("", "tool", toolFrame(out));
      else if (out.type === "failed") failed = out.message;
    }
    const s = await ready.summary;
    const willEscalate =
      s.outcome === "error" && p.view.consecutiveFailures + 1 >= 2 && p.view.state !== "escalated";
    const shown = failed ? (willEscalate ? `${failed} ${HUMAN_REPLY}` : failed) : text;
    const r = await record(s, failed ? "" : text);
    // The model said the tenant's "I don't know": the question is listed for the tenant to answer.
    if (!failed && saysUnknown(text, grounding))
      await recordUnansweredQuestion(svc, tenant.id, redact(content, redactor), { ownPool: stream });
    return {
      s,
      r,
      failed,
      policy,
      shown,
      reply: replyOf(
        id,
        shown,
        r.view.state,
        r.view.state === "escalated",
        policy,
        s,
        failed ? [] : citedSources(text, grounding),
      ),
    };
  };
  if (!stream) {
    const g = await gather();
    return c.json(g.reply, 200, ready.headers);
  }
  // The turn runs whether or not anyone reads its frames: the client may have gone.
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let finished: Awaited<ReturnType<typeof gather>> | undefined;
  let failure: unknown;
  const done = gather((t, event, data) => {
    queue.push(sseFrame(JSON.stringify(data ?? { text: t }), event));
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
  hold.until(done);
  const frames = (async function* () {
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
    frameStream(frames, () => abort.abort(new Error("client disconnected")), c.get("timing")),
    200,
    { ...SSE_HEADERS, ...ready.headers },
  );
}

/**
 * What a visit answered, refused in the order a message always was: its address (503 when the
 * gate could not count it, 429 over the limit, counted as a refusal), then the conversation (404
 * unknown or another visitor's, 409 ended), then admission's own rejection. A rate or budget
 * refusal is returned in `admission` for the engine to answer.
 */
function verdict(
  r: TurnCallResult,
  refuseAddress: ((hit: Refused) => never) | undefined,
): { conversation: Extract<PrepareResult, { ok: true }>; admission: AdmitResult | undefined } {
  const gate = r.gate;
  if (refuseAddress && gate) {
    if (!gate.reached) throw gateFailure(new Error(gate.error));
    if (!gate.outcome.ok) throw rejectionError(gate.outcome);
    const hit = gate.outcome.value.address;
    if (hit && !hit.ok) refuseAddress(hit);
  }
  const conversation = r.conversation;
  if (!conversation.ok) {
    if (conversation.reason === "ended")
      throw new AppError("CONFLICT", "conversation has ended; start a new one");
    if (conversation.reason === "full")
      throw new AppError(
        "CONFLICT",
        `conversation has reached its ${MAX_CONVERSATION_ENTRIES} messages; start a new one`,
      );
    throw new AppError("NOT_FOUND", "no such conversation");
  }
  if (!gate) return { conversation, admission: undefined };
  if (!gate.reached) throw gateFailure(new Error(gate.error));
  if (!gate.outcome.ok) throw rejectionError(gate.outcome);
  return { conversation, admission: gate.outcome.value.admission };
}

function replyOf(
  id: string,
  text: string,
  state: ConversationView["state"],
  escalated: boolean,
  blocked: boolean,
  s: TurnSummary | undefined,
  sources: AnswerSource[] = [],
) {
  return {
    conversation_id: id,
    message: { role: "assistant" as const, content: text },
    state,
    escalated,
    blocked,
    sources,
    usage: {
      input_tokens: s?.inputTokens ?? 0,
      output_tokens: s?.outputTokens ?? 0,
      cost_usd: s?.costUsd ?? 0,
    },
  };
}

function turnRequest(
  c: Context<AppEnv>,
  base: { tenant: TenantConfig; userId: string; conversationId: string; stream: boolean },
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
    timing: c.get("timing"),
  };
}
