/**
 * The replay: a generated workload with known outcomes (seeded) through both chat APIs for two
 * tenants (one running an experiment, one run into its token budget), then every figure of
 * /v1/usage, the dashboard, /admin/metrics and the experiment's results against a recomputation
 * from this test's own record of what it sent and what came back. Nothing of the production code's
 * math is imported: prices, sums, the latency histogram, percentiles and the clustered statistics
 * are written here from their documented definitions (docs/analytics.md, docs/experiments.md).
 * The one thing the client cannot see is the server's clock: per-turn latencies are read from the
 * `turns` rows, checked against the client's own arrival-to-last-byte time of the same request,
 * and every latency figure is recomputed from them.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { chatTenant } from "../chat/helpers";
import { eventually } from "../eventually";
import { clusteredOls, type Observation } from "../experiments/clustered-oracle";
import { createExperiment, twoArms } from "../experiments/helpers";
import { admin, query, send, sql, uniqueId } from "../helpers";
import { prng } from "../prng";

/** List prices in USD per million tokens (input, output) of the two models the workload calls. */
const PRICES: Record<string, [number, number]> = { "gpt-4o-mini": [0.15, 0.6], "gpt-4o": [2.5, 10] };
/** Nano-dollars, the unit budgets and usage are kept in: list prices are whole nano-dollars per token. */
const nanos = (model: string, input: number, output: number) => {
  const [i, o] = PRICES[model] as [number, number];
  return Math.round(i * 1000) * input + Math.round(o * 1000) * output;
};

/** One visitor message as the test saw it. */
interface Sent {
  tenant: string;
  api: "conversation" | "openai";
  user: string;
  conversation: string;
  turnIndex: number;
  status: number;
  outcome: "ok" | "error" | "blocked" | "human" | "refused";
  refusal?: string;
  model?: string;
  input: number;
  output: number;
  costNanos: number;
  /** Client time from just before the request to the last byte read. */
  clientMs: number;
  /** Whether the client asked for a stream (SSE): only then is a first-token time recorded. */
  stream: boolean;
  /** The UTC day the request was sent on. */
  day: string;
}

/** One conversation as the test ended it. */
interface Ended {
  tenant: string;
  id: string;
  user: string;
  variant: string | null;
  turns: number;
  resolved: boolean;
  escalated: boolean;
  csat: number | null;
  costNanos: number;
}

/** Reads an SSE body into its frames. */
async function frames(res: Response): Promise<{ event: string; data: string }[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((f) => f.trim())
    .map((f) => {
      const lines = f.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
      const data = lines
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      return { event, data };
    });
}

/** The model a cost was priced at, from the tokens and the cost the reply reported. */
function modelOfCost(input: number, output: number, costUsd: number): string | undefined {
  return Object.keys(PRICES).find((m) => Math.abs(nanos(m, input, output) / 1e9 - costUsd) < 1e-12);
}

type Reply = {
  blocked: boolean;
  escalated: boolean;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
};

type Envelope = {
  error: { code: string; param?: string | null; details?: { level?: string; budget?: string } };
};

/** The refusal reason of a 429 in either envelope: the rate level or the budget. */
function refusalOf(body: Envelope): string {
  const e = body.error;
  if (e.param) return e.param;
  return e.details?.budget ?? e.details?.level ?? "unknown";
}

class Workload {
  readonly sent: Sent[] = [];
  readonly ended: Ended[] = [];
  /** The variant each user was seen in (the model it was priced at), per tenant. */
  readonly variants = new Map<string, string>();

  constructor(
    readonly tenant: string,
    readonly key: string,
    readonly variantOf: (model: string) => string | null,
  ) {}

  #see(user: string, model: string | undefined) {
    if (model && this.variantOf(model) !== null) this.variants.set(user, this.variantOf(model) as string);
  }

  /** One message on the conversation API; `stream` reads the SSE answer. */
  async say(
    conv: { id: string; user: string; turns: number; costNanos: number; escalated: boolean },
    content: string,
    stream: boolean,
  ) {
    const t0 = Date.now();
    const res = await send("POST", `/v1/conversations/${conv.id}/messages`, this.key, { content, stream });
    let reply: Reply | undefined;
    let failed = false;
    let refusal: string | undefined;
    if (res.status === 429) {
      refusal = refusalOf((await res.json()) as Envelope);
    } else if (stream) {
      const f = await frames(res);
      failed = f.some((x) => x.event === "error");
      reply = JSON.parse(f.find((x) => x.event === "done")?.data ?? "null") as Reply;
    } else if (res.status === 200) {
      reply = await res.json<Reply>();
    } else await res.text();
    const clientMs = Date.now() - t0;
    if (refusal) {
      this.sent.push({
        tenant: this.tenant,
        api: "conversation",
        user: conv.user,
        conversation: conv.id,
        turnIndex: -1,
        status: 429,
        outcome: "refused",
        refusal,
        input: 0,
        output: 0,
        costNanos: 0,
        clientMs,
        stream,
        day: new Date(t0).toISOString().slice(0, 10),
      });
      return;
    }
    expect(res.status, content).toBe(200);
    if (!reply) throw new Error(`no reply to ${content}`);
    const r = reply;
    const { input_tokens: input, output_tokens: output, cost_usd: cost } = r.usage;
    const model = input + output > 0 ? modelOfCost(input, output, cost) : undefined;
    if (input + output > 0) expect(model, `priced at a list price: ${cost}`).toBeDefined();
    this.#see(conv.user, model);
    const human = content === "talk to a real person";
    // Known by construction: the fake LLM fails every attempt of a message with the fault marker.
    const faulted = content.includes("[[fault:500]]");
    if (stream) expect(failed, content).toBe(faulted);
    const outcome = r.blocked ? "blocked" : human ? "human" : faulted ? "error" : "ok";
    const costNanos = model ? nanos(model, input, output) : 0;
    this.sent.push({
      tenant: this.tenant,
      api: "conversation",
      user: conv.user,
      conversation: conv.id,
      turnIndex: conv.turns,
      status: 200,
      outcome,
      model,
      input,
      output,
      costNanos,
      clientMs,
      stream,
      day: new Date(t0).toISOString().slice(0, 10),
    });
    conv.turns += 1;
    conv.costNanos += costNanos;
    conv.escalated ||= r.escalated;
  }

  /** One request on /v1/chat/completions, streamed or not. */
  async complete(user: string, content: string, stream: boolean) {
    const conversation = uniqueId("oa");
    const t0 = Date.now();
    const res = await send(
      "POST",
      "/v1/chat/completions",
      this.key,
      {
        messages: [{ role: "user", content }],
        user,
        ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      },
      { "x-conversation-id": conversation },
    );
    let input = 0;
    let output = 0;
    let model: string | undefined;
    let finish: string | undefined;
    let refusal: string | undefined;
    if (res.status === 429) refusal = refusalOf((await res.json()) as Envelope);
    else if (res.status === 200 && stream) {
      const chunks = (await frames(res)).filter((f) => f.data !== "[DONE]").map((f) => JSON.parse(f.data));
      const usage = chunks.find((c) => c.usage)?.usage;
      input = usage.prompt_tokens;
      output = usage.completion_tokens;
      model = chunks.at(-1).model;
      finish = chunks.find((c) => c.choices?.[0]?.finish_reason)?.choices[0].finish_reason;
    } else if (res.status === 200) {
      const body = await res.json<{
        model: string;
        usage: { prompt_tokens: number; completion_tokens: number };
        choices: { finish_reason: string }[];
      }>();
      input = body.usage.prompt_tokens;
      output = body.usage.completion_tokens;
      model = body.model;
      finish = body.choices[0]?.finish_reason;
    } else await res.text();
    const clientMs = Date.now() - t0;
    this.#see(user, model);
    const outcome = refusal
      ? "refused"
      : res.status !== 200
        ? "error"
        : finish === "content_filter"
          ? "blocked"
          : "ok";
    // A blocked message never reached a model: nothing is priced.
    const priced = outcome === "ok" && model !== undefined;
    this.sent.push({
      tenant: this.tenant,
      api: "openai",
      user,
      conversation,
      turnIndex: 0,
      status: res.status,
      outcome,
      refusal,
      model,
      input,
      output,
      costNanos: priced ? nanos(model as string, input, output) : 0,
      clientMs,
      stream,
      day: new Date(t0).toISOString().slice(0, 10),
    });
  }

  async conversation(user: string, messages: string[], rand: () => number) {
    const res = await send("POST", "/v1/conversations", this.key, { user });
    expect(res.status).toBe(201);
    const conv = {
      id: ((await res.json()) as { id: string }).id,
      user,
      turns: 0,
      costNanos: 0,
      escalated: false,
    };
    for (const m of messages) await this.say(conv, m, rand() < 0.4);
    const csat = rand() < 0.6 ? 1 + Math.floor(rand() * 5) : null;
    if (csat !== null)
      expect((await send("POST", `/v1/conversations/${conv.id}/feedback`, this.key, { csat })).status).toBe(
        200,
      );
    const end = await send("POST", `/v1/conversations/${conv.id}/end`, this.key, { resolved: rand() < 0.55 });
    expect(end.status).toBe(200);
    const state = ((await end.json()) as { state: string }).state;
    this.ended.push({
      tenant: this.tenant,
      id: conv.id,
      user,
      variant: this.variants.get(user) ?? null,
      turns: conv.turns,
      resolved: state === "resolved",
      escalated: conv.escalated,
      csat,
      costNanos: conv.costNanos,
    });
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The latency histogram's bucket, from docs/analytics.md: whole ms below 64, then 32 per power of two. */
function bucketOf(ms: number): number {
  const v = Math.round(ms);
  if (v < 64) return v;
  const e = Math.floor(Math.log2(v)) - 5;
  return 32 * e + Math.floor(v / 2 ** e);
}
/** A bucket's representative value: its midpoint (exact below 64 ms). */
function bucketMid(b: number): number {
  if (b < 64) return b;
  const e = Math.floor(b / 32) - 1;
  const lo = (b - 32 * e) * 2 ** e;
  return lo + (2 ** e - 1) / 2;
}
/** Nearest-rank percentile over the histogram: the bucket holding rank ceil(q·n/100). */
function percentile(latencies: number[], q: number): number | null {
  if (latencies.length === 0) return null;
  const sorted = latencies.map(bucketOf).sort((a, b) => a - b);
  return bucketMid(sorted[Math.ceil((q * sorted.length) / 100) - 1] as number);
}
/** The exact median with interpolation (percentile_cont(0.5)). */
function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return ((s[Math.floor(m)] as number) + (s[Math.ceil(m)] as number)) / 2;
}

type Figures = Record<string, number | null>;

describe("replay: every figure equals what happened", () => {
  it("recomputes usage, dashboard, Prometheus and experiment results from the workload's own record", async () => {
    const rand = prng(20_261_205);
    const topic = "competitor pricing";
    // A: a running experiment (B calls gpt-4o), a blocked topic, a per-user limit of 10 a minute.
    const a = await chatTenant({
      model: "gpt-4o-mini",
      blocked_topics: [topic],
      rate_limit_per_minute: 1_000,
      user_rate_limit_per_minute: 10,
    });
    // A fixed salt: which visitor lands in which arm is part of the known workload.
    await createExperiment(a.id, { ...twoArms("replay-exp", { model: "gpt-4o" }), salt: "replay15" });
    // B: 300 tokens a month, 60 per answer: the budget refuses before the workload ends.
    const b = await chatTenant({
      model: "gpt-4o-mini",
      monthly_token_budget: 300,
      max_tokens_per_response: 60,
      rate_limit_per_minute: 1_000,
    });
    const wa = new Workload(a.id, a.key, (m) => (m === "gpt-4o" ? "B" : "control"));
    const wb = new Workload(b.id, b.key, () => null);

    const words = ["order", "refund", "shipping", "invoice", "account", "password", "delivery", "tracking"];
    const ask = () => {
      const r = rand();
      if (r < 0.1) return `what is the ${topic} this year`;
      if (r < 0.16) return "talk to a real person";
      if (r < 0.2) return `help me please [[fault:500]]`;
      const n = 2 + Math.floor(rand() * 9);
      return Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(" ");
    };
    const plain = () => `where is my ${words[Math.floor(rand() * words.length)]}`;

    // Tenant A: 10 visitors, repeat conversations (1-3 each, 1-3 messages; the first always reaches
    // a model, so its price tells the variant), and stateless requests: at most 10 admitted
    // messages a visitor, under the per-user limit.
    for (let u = 0; u < 10; u++) {
      const user = `visitor-${u}`;
      const convs = 1 + Math.floor(rand() * 3);
      for (let c = 0; c < convs; c++) {
        const n = 1 + Math.floor(rand() * 3);
        await wa.conversation(user, [plain(), ...Array.from({ length: n - 1 }, ask)], rand);
      }
      if (rand() < 0.5) await wa.complete(user, rand() < 0.3 ? `any ${topic}?` : plain(), rand() < 0.5);
    }
    // Every outcome at least once, whatever the draw: a failure, a hand-over, a blocked topic.
    await wa.conversation(
      "visitor-all",
      [plain(), "help me please [[fault:500]]", "talk to a real person", `about ${topic}`],
      rand,
    );
    // One user past the per-user limit: 10 admitted in the minute, then refused.
    for (let i = 0; i < 12; i++) await wa.complete("burst", plain(), false);
    // Tenant B: a conversation, then stateless requests into the monthly budget.
    await wb.conversation("b-visitor", [plain(), plain()], rand);
    for (let i = 0; i < 40 && wb.sent.filter((s) => s.outcome === "refused").length < 2; i++)
      await wb.complete(`b-${i % 3}`, plain(), i % 2 === 0);

    expect(wa.sent.filter((s) => s.refusal === "user").length).toBe(2);
    expect(wb.sent.filter((s) => s.refusal === "monthly_tokens").length).toBe(2);
    for (const o of ["ok", "error", "blocked", "human"] as const)
      expect(
        wa.sent.some((s) => s.outcome === o),
        o,
      ).toBe(true);

    // Everything lands off the response path: wait for the turns, refusals and conversations.
    const turnsOf = (w: Workload) => w.sent.filter((s) => s.outcome !== "refused");
    type Row = {
      conversation_id: string;
      turn_index: number;
      latency_ms: number;
      first_token_ms: number | null;
      outcome: string;
    };
    const rows = new Map<string, Row[]>();
    for (const w of [wa, wb]) {
      rows.set(
        w.tenant,
        await eventually(
          async () => {
            const r = await query<Row>(
              sql`select conversation_id, turn_index, latency_ms, first_token_ms, outcome from turns where tenant_id = ${w.tenant}`,
            );
            expect(r.length).toBe(turnsOf(w).length);
            const [c] = await query<{ n: string; refused: string }>(
              sql`select (select count(*) from conversations where tenant_id = ${w.tenant}) as n,
                         (select coalesce(sum(refused_user + refused_tenant + refused_global + refused_address
                            + refused_monthly_tokens + refused_visitor_tokens + refused_daily_cost
                            + refused_conversation_cost), 0) from tenant_totals where tenant_id = ${w.tenant}) as refused`,
            );
            expect(Number(c?.n)).toBe(w.ended.length);
            expect(Number(c?.refused)).toBe(w.sent.length - turnsOf(w).length);
            return r;
          },
          { timeoutMs: 20_000, intervalMs: 100 },
        ),
      );
    }

    // Each turn's recorded outcome is what the client saw, and its latency (arrival to last byte)
    // fits inside the client's own time for the same request.
    const latency = new Map<string, number>();
    const firstToken = new Map<string, number>();
    for (const w of [wa, wb]) {
      const byKey = new Map(
        (rows.get(w.tenant) ?? []).map((r) => [`${r.conversation_id}#${r.turn_index}`, r]),
      );
      for (const s of turnsOf(w)) {
        const r = byKey.get(`${s.conversation}#${s.turnIndex}`);
        expect(r?.outcome, `${s.conversation}#${s.turnIndex}`).toBe(s.outcome);
        expect(r?.latency_ms).toBeGreaterThanOrEqual(0);
        expect(r?.latency_ms).toBeLessThanOrEqual(s.clientMs);
        // A first token is recorded for a streamed answer only, never for a JSON one.
        if (!s.stream) expect(r?.first_token_ms, `${s.conversation}#${s.turnIndex}`).toBeNull();
        if (s.stream && s.outcome === "ok") expect(r?.first_token_ms).not.toBeNull();
        if (r?.first_token_ms != null) expect(r.first_token_ms).toBeLessThanOrEqual(r.latency_ms);
        latency.set(`${w.tenant}/${s.conversation}#${s.turnIndex}`, r?.latency_ms as number);
        if (r?.first_token_ms != null)
          firstToken.set(`${w.tenant}/${s.conversation}#${s.turnIndex}`, r.first_token_ms);
      }
    }
    const answered = (w: Workload) => turnsOf(w).filter((s) => s.outcome === "ok" || s.outcome === "error");
    const latencies = (w: Workload, of = answered(w)) =>
      of.map((s) => latency.get(`${w.tenant}/${s.conversation}#${s.turnIndex}`) as number);

    for (const w of [wa, wb]) {
      const turns = turnsOf(w);
      const inTokens = sum(turns.map((s) => s.input));
      const outTokens = sum(turns.map((s) => s.output));
      const costNanos = sum(turns.map((s) => s.costNanos));
      const ends = w.ended;
      const rated = ends.filter((e) => e.csat !== null);
      const lat = latencies(w);
      // Streamed answers that reached the model (the fake fails a faulted message before any token).
      const streamed = answered(w).filter((s) => s.stream && s.outcome === "ok");
      const ft = streamed.map(
        (s) => firstToken.get(`${w.tenant}/${s.conversation}#${s.turnIndex}`) as number,
      );
      const refusals = (reason: string) => w.sent.filter((s) => s.refusal === reason).length;

      // /v1/usage: the ledger, in nano-dollars and tokens.
      const usage = (await (await send("GET", "/v1/usage", w.key)).json()) as {
        month: { tokens_used: number; tokens_reserved: number; cost_usd: number };
        today: { cost_usd: number };
        daily: { input_tokens: number; output_tokens: number; messages: number; cost_usd: number }[];
        window: { open_reservations: number };
      };
      expect(usage.window.open_reservations).toBe(0);
      expect(usage.month.tokens_used).toBe(inTokens + outTokens);
      expect(usage.month.tokens_reserved).toBe(0);
      expect(usage.month.cost_usd).toBeCloseTo(costNanos / 1e9, 12);
      expect(usage.today.cost_usd).toBeCloseTo(costNanos / 1e9, 12);
      expect(usage.daily[0]).toMatchObject({
        input_tokens: inTokens,
        output_tokens: outTokens,
        messages: answered(w).length,
      });

      // The dashboard, over two days so a run across midnight still sees everything.
      const dash = (await (await admin("GET", `/tenants/${w.tenant}/analytics/dashboard?days=2`)).json()) as {
        totals: Figures;
      };
      const ratio = (x: number, n: number) => (n === 0 ? null : x / n);
      const want: Figures = {
        total_conversations: ends.length,
        avg_turns_per_conversation: ratio(sum(ends.map((e) => e.turns)), ends.length),
        resolution_rate_pct: ratio(100 * ends.filter((e) => e.resolved).length, ends.length),
        escalation_rate_pct: ratio(100 * ends.filter((e) => e.escalated).length, ends.length),
        avg_csat: ratio(sum(rated.map((e) => e.csat as number)), rated.length),
        csat_responses: rated.length,
        total_turns: turns.length,
        disconnected_turns: 0,
        human_turns: turns.filter((s) => s.outcome === "human").length,
        total_tokens: inTokens + outTokens,
        total_cost_usd: costNanos / 1e9,
        avg_response_time_ms: ratio(sum(lat), lat.length),
        p50_response_time_ms: percentile(lat, 50),
        p99_response_time_ms: percentile(lat, 99),
        streamed_answers: streamed.length,
        p50_first_token_ms: percentile(ft, 50),
        p95_first_token_ms: percentile(ft, 95),
        error_rate_pct: ratio(100 * turns.filter((s) => s.outcome === "error").length, answered(w).length),
        // The window's figure is the average over its days of each day's distinct users.
        daily_active_users:
          sum(
            [...new Set(turns.map((s) => s.day))].map(
              (d) => new Set(turns.filter((s) => s.day === d).map((s) => s.user)).size,
            ),
          ) / 2,
        cost_per_conversation_usd: ratio(sum(ends.map((e) => e.costNanos)) / 1e9, ends.length),
        safety_violations_blocked: turns.filter((s) => s.outcome === "blocked").length,
      };
      for (const [k, v] of Object.entries(want)) {
        if (v === null) expect(dash.totals[k], k).toBeNull();
        else expect(dash.totals[k], k).toBeCloseTo(v, 9);
      }

      // Prometheus: the tenant's counters and response-time histogram since the beginning.
      const text = await (await admin("GET", "/metrics")).text();
      const families = parsePrometheusTextFormat(text) as {
        name: string;
        metrics: { labels?: Record<string, string>; value?: string }[];
      }[];
      const metric = (name: string, labels: Record<string, string> = {}) => {
        const f = families.find((x) => x.name === name);
        const m = f?.metrics.find(
          (x) =>
            x.labels?.tenant === w.tenant && Object.entries(labels).every(([k, v]) => x.labels?.[k] === v),
        );
        return m?.value === undefined ? undefined : Number(m.value);
      };
      const prom: [string, Record<string, string>, number][] = [
        ["chatedge_requests_total", {}, w.sent.length],
        ["chatedge_turns_total", { outcome: "ok" }, turns.filter((s) => s.outcome === "ok").length],
        ["chatedge_turns_total", { outcome: "error" }, turns.filter((s) => s.outcome === "error").length],
        ["chatedge_turns_total", { outcome: "blocked" }, turns.filter((s) => s.outcome === "blocked").length],
        ["chatedge_turns_total", { outcome: "human" }, turns.filter((s) => s.outcome === "human").length],
        ["chatedge_turns_total", { outcome: "disconnected" }, 0],
        ["chatedge_tokens_total", { direction: "input" }, inTokens],
        ["chatedge_tokens_total", { direction: "output" }, outTokens],
        ["chatedge_cost_usd_total", {}, costNanos / 1e9],
        ["chatedge_conversations_total", {}, ends.length],
        ["chatedge_conversations_resolved_total", {}, ends.filter((e) => e.resolved).length],
        ["chatedge_conversations_escalated_total", {}, ends.filter((e) => e.escalated).length],
        ["chatedge_csat_ratings_total", {}, rated.length],
        ["chatedge_csat_score_total", {}, sum(rated.map((e) => e.csat as number))],
        ["chatedge_safety_violations_total", {}, turns.filter((s) => s.outcome === "blocked").length],
        ["chatedge_rate_limit_refusals_total", { level: "user" }, refusals("user")],
        ["chatedge_budget_refusals_total", { budget: "monthly_tokens" }, refusals("monthly_tokens")],
      ];
      for (const [name, labels, v] of prom)
        expect(metric(name, labels), `${name} ${JSON.stringify(labels)}`).toBeCloseTo(v, 9);
      // The histogram: cumulative counts per bound, recomputed from the latencies with the
      // documented rule (a latency counts under the least bound whose bucket is at or after its own).
      const bounds = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60, 120];
      for (const [name, values] of [
        ["chatedge_response_time_seconds", lat],
        ["chatedge_first_token_seconds", ft],
      ] as const) {
        const line = (suffix: string, le?: string) => {
          const tail = le === undefined ? `{tenant="${w.tenant}"} ` : `{tenant="${w.tenant}",le="${le}"} `;
          const l = text.split("\n").find((x) => x.startsWith(`${name}_${suffix}${tail}`));
          return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(" ") + 1));
        };
        for (const bound of bounds) {
          const under = values.filter((ms) => bucketOf(ms) <= bucketOf(bound * 1000)).length;
          expect(line("bucket", String(bound)), `${name} le=${bound}`).toBe(under);
        }
        expect(line("bucket", "+Inf"), name).toBe(values.length);
        expect(line("count"), name).toBe(values.length);
        expect(line("sum"), name).toBeCloseTo(sum(values) / 1000, 9);
      }
    }

    // The experiment's results: per variant, from the test's own record of who was priced at which
    // model, and the comparison with user-clustered variance from the independent reference.
    const res = (await (await admin("GET", `/tenants/${a.id}/experiments/replay-exp/results`)).json()) as {
      analysis: { comparison_variance: string };
      variants: {
        name: string;
        users: number;
        conversations: number;
        csat_responses: number;
        resolution_rate: { value: number } | null;
        escalation_rate: { value: number } | null;
        csat: { value: number } | null;
        cost_per_conversation_usd: { value: number } | null;
        p50_latency_ms: number | null;
        vs_control: Record<string, { difference: number; statistic: number; p_value: number } | null> | null;
      }[];
    };
    expect(res.analysis.comparison_variance).toBe("user_clustered");
    const arms = ["control", "B"];
    for (const arm of arms) {
      const v = res.variants.find((x) => x.name === arm);
      const ends = wa.ended.filter((e) => e.variant === arm);
      const rated = ends.filter((e) => e.csat !== null);
      const seen = turnsOf(wa).filter((s) => wa.variants.get(s.user) === arm);
      expect(v?.users, arm).toBe(new Set(seen.map((s) => s.user)).size);
      expect(v?.conversations, arm).toBe(ends.length);
      expect(v?.csat_responses, arm).toBe(rated.length);
      expect(v?.resolution_rate?.value, arm).toBeCloseTo(
        ends.filter((e) => e.resolved).length / ends.length,
        12,
      );
      expect(v?.escalation_rate?.value, arm).toBeCloseTo(
        ends.filter((e) => e.escalated).length / ends.length,
        12,
      );
      // A mean has an estimate (with its interval) from two observations on.
      if (rated.length < 2) expect(v?.csat, arm).toBeNull();
      else
        expect(v?.csat?.value, arm).toBeCloseTo(sum(rated.map((e) => e.csat as number)) / rated.length, 12);
      expect(ends.length, arm).toBeGreaterThanOrEqual(2);
      expect(v?.cost_per_conversation_usd?.value, arm).toBeCloseTo(
        sum(ends.map((e) => e.costNanos)) / 1e9 / ends.length,
        12,
      );
      const answeredHere = answered(wa).filter((s) => wa.variants.get(s.user) === arm);
      expect(v?.p50_latency_ms, arm).toBeCloseTo(median(latencies(wa, answeredHere)) as number, 9);
    }
    const b2 = res.variants.find((x) => x.name === "B");
    const obs = (y: (e: Ended) => number | null): Observation[] =>
      wa.ended.flatMap((e) => {
        const v = y(e);
        return v === null ? [] : [{ cluster: e.user, treated: e.variant === "B", y: v }];
      });
    const metrics: Record<string, (e: Ended) => number | null> = {
      resolution_rate: (e) => (e.resolved ? 1 : 0),
      escalation_rate: (e) => (e.escalated ? 1 : 0),
      csat: (e) => e.csat,
      cost_per_conversation_usd: (e) => e.costNanos / 1e9,
    };
    for (const [name, y] of Object.entries(metrics)) {
      const ref = clusteredOls(obs(y));
      const got = b2?.vs_control?.[name];
      expect(got?.difference, name).toBeCloseTo(ref.difference, 12);
      expect((got?.statistic as number) / ref.z, name).toBeCloseTo(1, 8);
      expect((got?.p_value as number) / ref.p, name).toBeCloseTo(1, 7);
    }
  }, 90_000);
});
