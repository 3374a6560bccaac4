import { describe, expect, it } from "vitest";
import { eventually } from "../eventually";
import { query, send, sql, uniqueId } from "../helpers";
import { chatTenant, completions } from "./helpers";

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
  input_tokens: string;
  output_tokens: string;
  outcome: string;
  error: string | null;
  model: string;
  cost_usd: number;
};

/** The conversation's turn rows, once the analytics consumer has written some. */
function turnsOf(conversationId: string): Promise<TurnRow[]> {
  return eventually(async () => {
    const rows = await query<TurnRow>(
      sql`select input_tokens, output_tokens, outcome, error, model, cost_usd from turns where conversation_id = ${conversationId}`,
    );
    expect(rows).not.toHaveLength(0);
    return rows;
  });
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
    expect(turn).toMatchObject({ outcome: "ok", error: null, model: "gpt-4o-mini" });
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
    expect(turn?.outcome).toBe("error");
    expect(turn?.error).toBe("client disconnected");
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
});
