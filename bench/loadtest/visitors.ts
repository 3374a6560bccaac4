/**
 * The load: visitors holding multi-turn conversations until the deadline, each request timed and
 * every admitted reply's usage booked per tenant and per conversation, as the visitor saw it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Dispatcher, fetch as undiciFetch } from "undici";
import type { Settings } from "./options.ts";
import type { Tenant } from "./profiles.ts";

export type Kind = "start" | "message" | "end";

/** What one conversation looked like from the visitor's side. */
export interface ClientConversation {
  tenant: string;
  id: string;
  user: string;
  admitted: number;
  tokens: number;
  ended: boolean;
}

/** What the visitors of one tenant saw, summed over its admitted replies. */
export interface ClientBooks {
  admitted: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  refused: number;
}

/** Everything measured while the load ran. */
export interface LoadStats {
  latency: Record<Kind, number[]>;
  refusals: Record<string, number>;
  errors: { http5xx: number; network: number; unexpected4xx: number; samples: string[] };
  /** Errors by request kind, status and error code (or message), with counts. */
  errorKinds: Map<string, number>;
  /** Conversations with a message whose outcome the visitor could not know (5xx or no answer). */
  unknownOutcome: Set<string>;
  books: Map<string, ClientBooks>;
  conversations: ClientConversation[];
  messagesSent: number;
}

interface Answer {
  status: number;
  body: unknown;
}

interface Reply {
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
}

/** One run's load: where it goes, how, until when, and what it measured. */
interface Run {
  url: string;
  opts: Settings;
  dispatcher: Dispatcher;
  deadline: number;
  stats: LoadStats;
}

const left = (run: Run) => run.deadline - Date.now();

// Ordinary support questions: none names a blocked topic or asks for a human, so every admitted
// message reaches the model.
const OPENERS = [
  "where is my order",
  "can I change the delivery address for order",
  "what are your opening hours on",
  "do you ship to",
  "how long does a refund take for invoice",
  "is the blue jacket in stock in size",
  "my password reset email never arrived for account",
  "what does the premium plan include for",
];
const TAILS = ["Monday", "Spain", "12345", "M", "the weekend", "order 778", "Lisbon", "team plans"];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const question = () => `${pick(OPENERS)} ${pick(TAILS)} ${Math.floor(Math.random() * 1000)}`;

function newStats(tenants: readonly Tenant[]): LoadStats {
  return {
    latency: { start: [], message: [], end: [] },
    refusals: {},
    errors: { http5xx: 0, network: 0, unexpected4xx: 0, samples: [] },
    errorKinds: new Map(),
    unknownOutcome: new Set(),
    books: new Map(
      tenants.map((t) => [t.id, { admitted: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, refused: 0 }]),
    ),
    conversations: [],
    messagesSent: 0,
  };
}

function noteError(stats: LoadStats, kind: "http5xx" | "network" | "unexpected4xx", what: string): void {
  stats.errors[kind] += 1;
  if (stats.errors.samples.length < 10) stats.errors.samples.push(what);
  // Grouped by request kind, status and the envelope's code (or the text's start).
  const m = /^(\w+) (\d+) .*?"code":"([A-Z_]+)","message":"([^"]{0,60})/.exec(what);
  const group = m ? `${m[1]} ${m[2]} ${m[3]} (${m[4]})` : what.slice(0, 90);
  stats.errorKinds.set(group, (stats.errorKinds.get(group) ?? 0) + 1);
}

/** The error envelope's refusal details, when the body is one. */
function refusalOf(body: unknown): { level: string; budget: string | null } | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error = (body as { error: { details?: { level?: unknown; budget?: unknown } } }).error;
  const level = error.details?.level;
  if (typeof level !== "string") return undefined;
  const budget = error.details?.budget;
  return { level, budget: typeof budget === "string" ? budget : null };
}

/** One POST; answers undefined (and counts the error) when it never got an HTTP answer. */
async function post(
  run: Run,
  kind: Kind,
  tenant: Tenant,
  path: string,
  body: unknown,
): Promise<Answer | undefined> {
  const t = performance.now();
  try {
    const res = await undiciFetch(`${run.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      dispatcher: run.dispatcher,
      signal: AbortSignal.timeout(run.opts.requestTimeoutMs),
    });
    const text = await res.text();
    run.stats.latency[kind].push(performance.now() - t);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: kept as text for the error sample.
    }
    if (res.status >= 500) noteError(run.stats, "http5xx", `${kind} ${res.status} ${text.slice(0, 200)}`);
    return { status: res.status, body: parsed };
  } catch (err) {
    noteError(run.stats, "network", `${kind} ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Starts a conversation; undefined when the worker did not. */
async function start(run: Run, tenant: Tenant, user: string): Promise<ClientConversation | undefined> {
  const a = await post(run, "start", tenant, "/v1/conversations", { user });
  if (a?.status !== 201) {
    if (a && a.status < 500)
      noteError(run.stats, "unexpected4xx", `start ${a.status} ${JSON.stringify(a.body)}`);
    return undefined;
  }
  const id = (a.body as { id: string }).id;
  const conv: ClientConversation = { tenant: tenant.id, id, user, admitted: 0, tokens: 0, ended: false };
  run.stats.conversations.push(conv);
  return conv;
}

/** Books a message's answer; says whether the conversation goes on, and after a refusal. */
function book(run: Run, conv: ClientConversation, m: Answer | undefined): "next" | "refused" | "stop" {
  const { stats } = run;
  const books = stats.books.get(conv.tenant) as ClientBooks;
  if (!m || m.status >= 500) {
    // The message may or may not have been answered and recorded: the books will tell.
    stats.unknownOutcome.add(`${conv.tenant}:${conv.id}`);
    return "stop";
  }
  if (m.status === 200) {
    const u = (m.body as Reply).usage;
    books.admitted += 1;
    books.inputTokens += u.input_tokens;
    books.outputTokens += u.output_tokens;
    books.costUsd += u.cost_usd;
    conv.admitted += 1;
    conv.tokens += u.input_tokens + u.output_tokens;
    return "next";
  }
  const refusal = m.status === 429 ? refusalOf(m.body) : undefined;
  if (!refusal) {
    noteError(stats, "unexpected4xx", `message ${m.status} ${JSON.stringify(m.body).slice(0, 200)}`);
    return "stop";
  }
  books.refused += 1;
  const label = refusal.budget ? `${refusal.level}:${refusal.budget}` : refusal.level;
  stats.refusals[label] = (stats.refusals[label] ?? 0) + 1;
  // This conversation cannot afford another message: the visitor gives up on it.
  return refusal.budget === "conversation_cost" ? "stop" : "refused";
}

/** The conversation's messages, until its turns are done, the deadline passed or it cannot go on. */
async function converse(run: Run, tenant: Tenant, conv: ClientConversation): Promise<void> {
  const { opts } = run;
  for (let k = 0; k < opts.turnsPerConversation && left(run) > 0; k++) {
    // A pause that would end past the deadline ends at a random point of the next few seconds
    // instead: visitors leave spread out, not as one burst of ends at the deadline.
    const spread = Math.max(0, left(run)) + Math.random() * Math.min(opts.thinkMs, 5_000);
    await sleep(Math.min(Math.random() * opts.thinkMs, spread));
    if (left(run) <= 0) break;
    run.stats.messagesSent += 1;
    const m = await post(run, "message", tenant, `/v1/conversations/${conv.id}/messages`, {
      content: question(),
    });
    const next = book(run, conv, m);
    if (next === "stop") break;
    // A refused visitor waits a moment (not the whole Retry-After, which may be a month).
    if (next === "refused") await sleep(Math.min(1000 + Math.random() * 2000, Math.max(0, left(run))));
  }
}

async function end(run: Run, tenant: Tenant, conv: ClientConversation): Promise<void> {
  const e = await post(run, "end", tenant, `/v1/conversations/${conv.id}/end`, {
    resolved: Math.random() < 0.6,
  });
  if (e?.status === 200) conv.ended = true;
  else if (e && e.status < 500)
    noteError(run.stats, "unexpected4xx", `end ${e.status} ${JSON.stringify(e.body)}`);
}

/** Visitor `v`: one conversation after another with its tenant until the deadline. */
async function visitor(run: Run, tenants: readonly Tenant[], v: number): Promise<void> {
  const tenant = tenants[v % tenants.length] as Tenant;
  const user = `visitor-${v}`;
  // Visitors arrive over the ramp-up, not in one synchronized burst at a cold isolate.
  const { opts } = run;
  await sleep((v / opts.visitors) * Math.min(opts.rampUpSec, opts.durationSec / 4) * 1000);
  while (left(run) > 0) {
    const conv = await start(run, tenant, user);
    if (!conv) {
      await sleep(Math.min(1000, Math.max(0, left(run))));
      continue;
    }
    await converse(run, tenant, conv);
    await end(run, tenant, conv);
  }
}

/** Runs the visitors until the deadline; every conversation started is also ended. */
export async function runLoad(
  url: string,
  tenants: readonly Tenant[],
  opts: Settings,
  dispatcher: Dispatcher,
): Promise<{ stats: LoadStats; seconds: number }> {
  const started = Date.now();
  const run: Run = {
    url,
    opts,
    dispatcher,
    deadline: started + opts.durationSec * 1000,
    stats: newStats(tenants),
  };
  await Promise.all(Array.from({ length: opts.visitors }, (_, v) => visitor(run, tenants, v)));
  return { stats: run.stats, seconds: (Date.now() - started) / 1000 };
}
