/** The load test's report: the load's figures, the drain, the checks; and the same as text. */
import { pct, round } from "../lib.ts";
import type { Check } from "./checks.ts";
import type { Settings } from "./options.ts";
import type { ProfileName } from "./profiles.ts";
import type { Kind, LoadStats } from "./visitors.ts";

type Percentiles = { p50: number; p95: number; p99: number; max: number };

/** What the load did, from the visitors' side. */
export interface LoadFigures {
  seconds: number;
  requests: number;
  messagesSent: number;
  admitted: number;
  refused: number;
  messagesPerSec: number;
  admittedPerSec: number;
  requestsPerSec: number;
  latencyMs: Record<Kind | "all", Percentiles>;
  refusalsByLevel: Record<string, number>;
  errors: {
    http5xx: number;
    network: number;
    unexpected4xx: number;
    total: number;
    byKind: Record<string, number>;
    samples: string[];
  };
  /** Conversations in which a message got a 5xx or no answer: its outcome is unknown to the visitor. */
  unknownOutcomeConversations: number;
  conversations: { started: number; ended: number };
}

export interface LoadtestReport {
  options: Settings;
  profiles: Record<ProfileName, number>;
  load: LoadFigures;
  drain: { seconds: number; settled: boolean; turns: number; conversations: number };
  checks: Check[];
  /** Every check passed and nothing errored. */
  ok: boolean;
}

function summarize(xs: readonly number[]): Percentiles {
  return {
    p50: round(pct(xs, 0.5), 1),
    p95: round(pct(xs, 0.95), 1),
    p99: round(pct(xs, 0.99), 1),
    max: round(
      xs.reduce((m, x) => Math.max(m, x), 0),
      1,
    ),
  };
}

/** Messages admitted and refused, over every tenant. */
export function admittedAndRefused(stats: LoadStats): { admitted: number; refused: number } {
  const books = [...stats.books.values()];
  return {
    admitted: books.reduce((n, b) => n + b.admitted, 0),
    refused: books.reduce((n, b) => n + b.refused, 0),
  };
}

/** The load's figures from what the visitors measured over `seconds`. */
export function loadFigures(stats: LoadStats, seconds: number): LoadFigures {
  const { admitted, refused } = admittedAndRefused(stats);
  const all = [...stats.latency.start, ...stats.latency.message, ...stats.latency.end];
  const errorsTotal = stats.errors.http5xx + stats.errors.network + stats.errors.unexpected4xx;
  return {
    seconds: round(seconds, 2),
    requests: all.length,
    messagesSent: stats.messagesSent,
    admitted,
    refused,
    messagesPerSec: round(stats.messagesSent / seconds, 1),
    admittedPerSec: round(admitted / seconds, 1),
    requestsPerSec: round(all.length / seconds, 1),
    latencyMs: {
      message: summarize(stats.latency.message),
      start: summarize(stats.latency.start),
      end: summarize(stats.latency.end),
      all: summarize(all),
    },
    refusalsByLevel: stats.refusals,
    errors: { ...stats.errors, total: errorsTotal, byKind: Object.fromEntries(stats.errorKinds) },
    unknownOutcomeConversations: stats.unknownOutcome.size,
    conversations: {
      started: stats.conversations.length,
      ended: stats.conversations.filter((c) => c.ended).length,
    },
  };
}

/** The report as text: the load figures, then one PASS/FAIL line per check. */
export function formatReport(r: LoadtestReport): string {
  const l = r.load;
  const lat = (k: keyof typeof l.latencyMs) =>
    `p50 ${l.latencyMs[k].p50} / p95 ${l.latencyMs[k].p95} / p99 ${l.latencyMs[k].p99} / max ${l.latencyMs[k].max} ms`;
  const profiles = Object.entries(r.profiles)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ");
  const refusals = Object.entries(l.refusalsByLevel)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const errorKinds = Object.entries(l.errors.byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `\n  ${v} x ${k}`)
    .join("");
  const lines = [
    `tenants ${r.options.tenants} (${profiles}), visitors ${r.options.visitors}, ${r.options.durationSec} s, ${r.options.turnsPerConversation} messages per conversation`,
    `load: ${l.seconds} s, ${l.requests} requests (${l.requestsPerSec}/s), ${l.messagesSent} messages (${l.messagesPerSec}/s), ${l.admitted} admitted (${l.admittedPerSec}/s), ${l.refused} refused`,
    `conversations: ${l.conversations.started} started, ${l.conversations.ended} ended`,
    `latency message: ${lat("message")}`,
    `latency start:   ${lat("start")}`,
    `latency end:     ${lat("end")}`,
    `latency all:     ${lat("all")}`,
    `refusals by level: ${refusals || "none"}`,
    `errors: ${l.errors.total} (5xx ${l.errors.http5xx}, network ${l.errors.network}, unexpected 4xx ${l.errors.unexpected4xx})${errorKinds}`,
    `drain: ${r.drain.seconds} s, ${r.drain.turns} turns and ${r.drain.conversations} conversations in Postgres, settled ${r.drain.settled}`,
    ...r.checks.map((c) => `${c.pass ? "PASS" : "FAIL"} ${c.name}: ${c.detail}`),
    r.ok ? "OK: every check passed, no errors" : "FAILED",
  ];
  return lines.join("\n");
}
