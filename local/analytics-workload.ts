/**
 * A synthetic, reproducible analytics workload: conversations with known outcomes, their turns,
 * ratings (in the summary and as separate feedback events, sometimes both, sometimes twice) and
 * safety hits, spread over the last N UTC days. The seeding script, the bench and the dashboard
 * correctness test all draw from it. Pure TypeScript: runs in Node and in workerd.
 */
import type {
  AnalyticsEvent,
  ConversationEvent,
  FeedbackEvent,
  SafetyEvent,
  TurnEvent,
} from "../src/analytics/events.ts";

export interface WorkloadOptions {
  tenantId: string;
  conversations: number;
  /** Total turns over all conversations (at least one per conversation). */
  turns: number;
  /** Distinct visitors the conversations are spread over. */
  users: number;
  /** Conversations start within the last `days` UTC days (today included). */
  days: number;
  now: number;
  seed: number;
  /** Share of conversations still open: turns, but no summary. */
  openShare?: number;
}

/**
 * The human handoff fields of a summary: escalated conversations mostly reach an operator (who
 * sometimes never writes), some open ones are taken over too, and a share of summaries carry no
 * handoff fields at all, as from before handoff existed.
 */
function handoff(
  h: () => number,
  resolved: boolean,
  escalated: boolean,
): Pick<ConversationEvent, "humanHandled" | "firstHumanReplyMs" | "resolvedBy"> {
  if (h() < 0.2) return {};
  const humanHandled = escalated ? h() < 0.8 : h() < 0.15;
  const firstHumanReplyMs = humanHandled && h() < 0.9 ? Math.round(5_000 + h() * 1_800_000) : null;
  const resolvedBy = resolved ? (humanHandled && h() < 0.7 ? "human" : "bot") : null;
  return { humanHandled, firstHumanReplyMs, resolvedBy };
}

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A UUID (v4 layout) from the generator, so a seed always makes the same ids. */
function uuidFrom(r: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16));
  hex[12] = "4";
  hex[16] = "89ab"[Math.floor(r() * 4)] ?? "8";
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Response times: log-normal around 900 ms, and a 2% tail of slow answers up to 30 s. */
function latency(r: () => number): number {
  if (r() < 0.02) return 4_000 + r() * 26_000;
  const normal = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return Math.exp(Math.log(900) + 0.6 * normal);
}

/**
 * Yields the events of one conversation at a time (turns, then its summary, feedback and safety
 * events). Turn counts are spread around turns/conversations and add up exactly to `turns`.
 */
export function* workload(o: WorkloadOptions): Generator<AnalyticsEvent[]> {
  const r = rng(o.seed);
  // Its own stream: the handoff fields leave every other draw (and so older seeded figures) as it was.
  const h = rng(o.seed ^ 0x5eed);
  const base = Math.floor(o.turns / o.conversations);
  const extra = o.turns - base * o.conversations;
  const todayStart = Math.floor(o.now / DAY) * DAY;
  const windowStart = todayStart - (o.days - 1) * DAY;
  let swing = 0;
  for (let i = 0; i < o.conversations; i++) {
    // Pairs of conversations swing by ±d around the mean, so the total stays exact.
    if (i % 2 === 0) swing = i + 1 < o.conversations ? Math.floor(r() * Math.min(base, 6)) : 0;
    const n = Math.max(1, base + (i < extra ? 1 : 0) + (i % 2 === 0 ? swing : -swing));
    const id = `conv-${o.seed}-${i}`;
    const userId = `user-${Math.floor(r() * o.users)}`;
    const gap = 5_000 + Math.floor(r() * 55_000);
    const span = n * gap + 10 * MINUTE;
    const startedAt = windowStart + Math.floor(r() * Math.max(1, o.now - windowStart - span));
    const experiment = r() < 0.5 ? "prompt-v2" : null;
    const variant = experiment ? (r() < 0.5 ? "control" : "concise") : null;
    const channel = r() < 0.8 ? "web" : "api";
    const events: AnalyticsEvent[] = [];
    const toolsUsed = new Set<string>();
    let tokens = 0;
    let cost = 0;
    let latencySum = 0;
    let answered = 0;
    let errors = 0;
    for (let k = 0; k < n; k++) {
      const x = r();
      const outcome: TurnEvent["outcome"] =
        x < 0.9 ? "ok" : x < 0.93 ? "error" : x < 0.97 ? "blocked" : "refused";
      const reachedModel = outcome === "ok" || outcome === "error";
      const inputTokens = reachedModel ? 50 + Math.floor(r() * 1_950) : 0;
      const outputTokens = outcome === "ok" ? 10 + Math.floor(r() * 790) : 0;
      const costUsd = (inputTokens * 0.15 + outputTokens * 0.6) / 1_000_000;
      const latencyMs = reachedModel ? latency(r) : r() * 5;
      const tools = outcome === "ok" && r() < 0.2 ? ["lookup_order"] : [];
      for (const t of tools) toolsUsed.add(t);
      const at = startedAt + k * gap;
      const turn: TurnEvent = {
        type: "turn",
        id: uuidFrom(r),
        tenantId: o.tenantId,
        conversationId: id,
        userId,
        at,
        turnIndex: k,
        model: "gpt-4o-mini",
        calledModel: reachedModel ? "gpt-4o-mini" : null,
        experiment,
        variant,
        inputTokens,
        outputTokens,
        costUsd,
        latencyMs,
        firstTokenMs: outcome === "ok" ? latencyMs * 0.3 : null,
        outcome,
        error: outcome === "error" ? "provider timeout" : null,
        toolsUsed: tools,
        channel,
      };
      events.push(turn);
      tokens += inputTokens + outputTokens;
      cost += costUsd;
      if (reachedModel) {
        latencySum += latencyMs;
        answered += 1;
      }
      if (outcome === "error") errors += 1;
      if (outcome === "blocked") {
        const hit: SafetyEvent = {
          type: "safety",
          id: uuidFrom(r),
          tenantId: o.tenantId,
          conversationId: id,
          userId,
          at,
          direction: r() < 0.8 ? "input" : "output",
          topic: "medical advice",
        };
        events.push(hit);
      }
    }
    const endedAt = startedAt + n * gap + MINUTE;
    const open = r() < (o.openShare ?? 0);
    const rated = r() < 0.4 ? 1 + Math.floor(r() * 5) : null;
    const resolved = r() < 0.75;
    if (!open) {
      // Drawn in the order of the summary's fields before handoff: id, then escalated.
      const summaryId = uuidFrom(r);
      const escalated = !resolved && r() < 0.5;
      const summary: ConversationEvent = {
        type: "conversation",
        id: summaryId,
        tenantId: o.tenantId,
        conversationId: id,
        userId,
        at: endedAt,
        startedAt,
        endedAt,
        turnCount: n,
        resolved,
        escalated: escalated,
        csat: rated,
        totalTokens: tokens,
        totalCostUsd: cost,
        avgResponseMs: answered > 0 ? latencySum / answered : 0,
        toolsUsed: [...toolsUsed],
        channel,
        experiment,
        variant,
        errorCount: errors,
        ...handoff(h, resolved, escalated),
      };
      events.push(summary);
    }
    // Ratings given after the end, once or twice (the later one counts).
    const ratings = r() < 0.25 ? (r() < 0.2 ? 2 : 1) : 0;
    for (let j = 0; j < ratings; j++) {
      const fb: FeedbackEvent = {
        type: "feedback",
        id: uuidFrom(r),
        tenantId: o.tenantId,
        conversationId: id,
        userId,
        at: Math.min(endedAt + (j + 1) * MINUTE, o.now),
        csat: 1 + Math.floor(r() * 5),
        comment: r() < 0.3 ? "thanks" : null,
      };
      events.push(fb);
    }
    yield events;
  }
}
