/** Reaching a conversation's Durable Object from a route: the stub, its answers, who may see it. */
import type { Context } from "hono";
import type { AppEnv } from "../app";
import { IsolateCache } from "../cache/isolate";
import { AppError } from "../errors";
import type { Outcome } from "./conversation-do";
import type { ConversationView, PrepareResult } from "./conversation-types";
import { endUserOf } from "./identity";

/** History sent with each message is capped at this many tokens (and at what the model holds). */
export const HISTORY_TOKEN_BUDGET = 6_000;

/** The API's view of a conversation. */
export function viewOut(v: ConversationView) {
  return {
    id: v.conversationId,
    state: v.state,
    turns: v.turnCount,
    started_at: new Date(v.startedAt).toISOString(),
    last_activity_at: new Date(v.lastActivityAt).toISOString(),
    total_tokens: v.totalTokens,
    total_cost_usd: v.totalCostUsd,
    csat: v.csat,
  };
}

/** The conversation's Durable Object, named by tenant and id so no tenant can reach another's. */
export function stubOf(c: Context<AppEnv>, id: string) {
  return c.get("svc").env.CONVERSATION.getByName(`${c.get("tenant").id}:${id}`);
}

/** Unwraps a Conversation answer: refusals become 4xx; an object that cannot answer is a 503. */
export async function call<T>(run: () => Promise<Outcome<T>>): Promise<T> {
  let out: Outcome<T>;
  try {
    out = await run();
  } catch (err) {
    console.error(JSON.stringify({ msg: "conversation object failed", error: String(err) }));
    throw new AppError("UNAVAILABLE", "conversation store unavailable; retry shortly", {
      headers: { "Retry-After": "1" },
    });
  }
  if (out.ok) return out.value;
  if (out.code === "not_found") throw new AppError("NOT_FOUND", "no such conversation");
  if (out.code === "ended") throw new AppError("CONFLICT", "conversation has ended; start a new one");
  if (out.code === "conflict") throw new AppError("CONFLICT", out.message);
  throw new AppError("VALIDATION_FAILED", out.message);
}

/** A visitor may only touch conversations it started; another visitor's id reads as unknown. */
export function own(c: Context<AppEnv>, view: Pick<ConversationView, "userId">, user: string) {
  if (c.get("apiKey").kind === "publishable" && view.userId !== user)
    throw new AppError("NOT_FOUND", "no such conversation");
}

/**
 * Browsers (publishable keys) may only touch conversations their visitor started: anything else
 * reads as unknown. Servers own every conversation of their tenant, so they need no lookup.
 */
export async function ensureOwner(
  c: Context<AppEnv>,
  stub: ReturnType<typeof stubOf>,
  tenantId: string,
): Promise<void> {
  if (c.get("apiKey").kind !== "publishable") return;
  const user = endUserOf(c, undefined);
  // A zero history budget: only the view crosses the RPC boundary, not the transcript.
  const r = await call(
    async (): Promise<Outcome<PrepareResult>> => ({ ok: true, value: await stub.prepare(tenantId, 0) }),
  );
  own(c, r.ok ? r.view : (r.view ?? { userId: "" }), user);
}

/** The experiment assignment a conversation was started under. */
export interface StoredAssignment {
  experiment: string | null;
  variant: string | null;
}

// Conversation -> the assignment it was started under, isolate-wide, so a tenant with experiments
// admits a message without first asking the Conversation object. Bounded; entries are immutable facts.
export const conversationAssignments = new IsolateCache<StoredAssignment>(20_000, 3_600_000);
