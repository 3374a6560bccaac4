import { describe, expect, it } from "vitest";
import { affordableOutput, costOf, nanosOf, priceOf } from "../../../src/admission/pricing";
import type { StartedConversation } from "../../../src/api-types";
import { estimateTokens } from "../../../src/chat/tokens";
import { eventually } from "../eventually";
import { admin, query, send, sql, uniqueId } from "../helpers";
import { chatTenant, completions, FAKE } from "./helpers";

type Usage = {
  month: { tokens_used: number; tokens_reserved: number };
  window: { open_reservations: number };
};

/** /v1/usage once no reservation is open (settlements land off the response path). */
function settledUsage(key: string): Promise<Usage> {
  return eventually(
    async () => {
      const u = (await (await send("GET", "/v1/usage", key)).json()) as Usage;
      expect(u.window.open_reservations).toBe(0);
      return u;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
}

type TurnRow = {
  turn_index: number;
  input_tokens: string;
  output_tokens: string;
  outcome: string;
  error: string | null;
  model: string;
  called_model: string | null;
  cost_usd: number;
};

/** The conversation's turn rows in turn order, once the analytics consumer has written `n` (default 1). */
function turnsOf(conversationId: string, n = 1): Promise<TurnRow[]> {
  return eventually(async () => {
    const rows = await query<TurnRow>(
      sql`select turn_index, input_tokens, output_tokens, outcome, error, model, called_model, cost_usd
          from turns where conversation_id = ${conversationId} order by turn_index`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(n);
    return rows;
  });
}

/** The max_tokens of the newest request the fake LLM saw with the worker's Anthropic key. */
async function lastAnthropicMaxTokens(): Promise<number> {
  const res = await fetch(`${FAKE}/__requests?key=${encodeURIComponent("sk-ant-worker-test")}`);
  const { requests } = (await res.json()) as { requests: { body: { max_tokens?: number } }[] };
  return Number(requests.at(-1)?.body.max_tokens);
}

describe("accounting", () => {
  it("settles exactly the provider's usage and records the turn in Postgres", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const conv = uniqueId("conv");
    const res = await completions(
      key,
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "count these five words" }] },
      { "x-conversation-id": conv },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    const usage = await settledUsage(key);
    expect(usage.month.tokens_reserved).toBe(0);
    expect(usage.month.tokens_used).toBe(body.usage.total_tokens);
    const [turn] = await turnsOf(`${conv}`);
    expect(turn).toMatchObject({
      outcome: "ok",
      error: null,
      model: "gpt-4o-mini",
      called_model: "gpt-4o-mini",
      turn_index: 0,
    });
    expect(Number(turn?.input_tokens)).toBe(body.usage.prompt_tokens);
    expect(Number(turn?.output_tokens)).toBe(body.usage.completion_tokens);
    // gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    expect(turn?.cost_usd).toBeCloseTo(
      (body.usage.prompt_tokens * 0.15 + body.usage.completion_tokens * 0.6) / 1e6,
      12,
    );
  });

  it("settles what was produced when the client disconnects mid-stream", async () => {
    const { key } = await chatTenant({ model: "mock-slow", max_tokens_per_response: 400 });
    const conv = uniqueId("conv");
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");
    const res = await completions(
      key,
      { model: "mock-slow", stream: true, messages: [{ role: "user", content: long }] },
      { "x-conversation-id": conv },
    );
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    const usage = await settledUsage(key);
    expect(usage.window.open_reservations).toBe(0);
    expect(usage.month.tokens_reserved).toBe(0);
    const [turn] = await turnsOf(conv);
    // Its own outcome, not an error: the visitor left, the model did not fail.
    expect(turn).toMatchObject({
      outcome: "disconnected",
      error: "client disconnected",
      called_model: "mock-slow",
    });
    // Settled: the input plus the little that was produced, far below the reservation's 400 output tokens.
    expect(usage.month.tokens_used).toBe(Number(turn?.input_tokens) + Number(turn?.output_tokens));
    expect(Number(turn?.output_tokens)).toBeGreaterThan(0);
    expect(Number(turn?.output_tokens)).toBeLessThan(60);
  });

  it("refunds the whole reservation when the provider fails before any output", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const res = await completions(key, {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi [[fault:500]]" }],
    });
    expect(res.status).toBe(502);
    const usage = await settledUsage(key);
    expect(usage.month.tokens_used).toBe(0);
    expect(usage.month.tokens_reserved).toBe(0);
  });

  it("prices an alias as the model it calls, at admission and settlement, and records both names", async () => {
    // $0.0005 a day: at claude-haiku-4-5's $1/$5 admission lowers max_tokens to what that pays for
    // (at the short name's old $0.25/$1.25 it would have allowed four times as many).
    const { key } = await chatTenant({
      model: "claude-haiku",
      daily_cost_budget_usd: 0.0005,
      max_tokens_per_response: 1_000,
    });
    const conv = uniqueId("conv");
    const messages = [{ role: "user" as const, content: "price me as the model you are" }];
    const res = await completions(key, { messages }, { "x-conversation-id": conv });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      model: string;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(body.model).toBe("claude-haiku-4-5");
    const estimate = estimateTokens(messages, { system: "You help." });
    const allowed = affordableOutput(priceOf("claude-haiku-4-5"), estimate, nanosOf(0.0005));
    expect(allowed).toBeLessThan(affordableOutput({ input: 0.25, output: 1.25 }, estimate, nanosOf(0.0005)));
    expect(await lastAnthropicMaxTokens()).toBe(allowed);

    const [turn] = await turnsOf(conv);
    expect(turn).toMatchObject({ outcome: "ok", model: "claude-haiku", called_model: "claude-haiku-4-5" });
    const cost = costOf("claude-haiku-4-5", body.usage.prompt_tokens, body.usage.completion_tokens);
    expect(cost).toBe((body.usage.prompt_tokens * 1 + body.usage.completion_tokens * 5) / 1e6);
    expect(turn?.cost_usd).toBe(cost);
    const usage = (await (await send("GET", "/v1/usage", key)).json()) as { today: { cost_usd: number } };
    expect(usage.today.cost_usd).toBe(cost);
  });

  it("counts every visitor message once, at its position, whatever answered it", async () => {
    const { id, key } = await chatTenant({ blocked_topics: ["competitor pricing"] });
    const started = await send("POST", "/v1/conversations", key, { user: "alice" });
    expect(started.status).toBe(201);
    const conv = ((await started.json()) as StartedConversation).id;
    const say = (content: string) => send("POST", `/v1/conversations/${conv}/messages`, key, { content });
    for (const content of ["hello", "what is the competitor pricing", "talk to a real person", "thanks"]) {
      expect((await say(content)).status, content).toBe(200);
    }
    const rows = await turnsOf(conv, 4);
    expect(rows.map((r) => [r.turn_index, r.outcome, r.model, r.called_model])).toEqual([
      [0, "ok", "mock", "mock"],
      [1, "blocked", "mock", null],
      [2, "human", "mock", null],
      [3, "ok", "mock", "mock"],
    ]);
    const transcript = (await (await send("GET", `/v1/conversations/${conv}`, key)).json()) as {
      turns: number;
    };
    expect(transcript.turns).toBe(4);
    // Requests, turns and daily active users all count the four messages (and the one visitor).
    const dash = (await (await admin("GET", `/tenants/${id}/analytics/dashboard?days=1`)).json()) as {
      totals: {
        total_turns: number;
        human_turns: number;
        daily_active_users: number;
        error_rate_pct: number;
      };
    };
    expect(dash.totals).toMatchObject({
      total_turns: 4,
      human_turns: 1,
      daily_active_users: 1,
      error_rate_pct: 0,
    });
    const mon = (await (await admin("GET", `/tenants/${id}/monitoring`)).json()) as {
      volume: { requests: number; turns: number; answered: number; blocked: number; human: number };
    };
    expect(mon.volume).toMatchObject({ requests: 4, turns: 4, answered: 2, blocked: 1, human: 1 });
  });
});
