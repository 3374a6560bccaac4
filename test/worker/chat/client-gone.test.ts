/**
 * A client that leaves before its answer has begun. Workers then run only what `ctx.waitUntil`
 * holds, and cancel the body of a response they cannot deliver. These tests call the worker's fetch
 * with an execution context of their own, cancel the response's body when it comes, leave once the
 * model has the message (which answers after a silence), and then wait on that context alone, as
 * the runtime would keep it: by then the message must be settled (its reservation closed at what
 * was used) and its turn on its way to the analytics queue. Before, a message cut off there held
 * its reservation until the gate's 10-minute expiry and went unrecorded.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { eventually } from "../eventually";
import { BASE, query, send, sql, uniqueId } from "../helpers";
import { chatTenant, upstreamRequests } from "./helpers";

// The model's silence before its first token.
const SILENT = "[[fault:slow:1500]]";

/**
 * Sends `body` to `path` and leaves once the model has `marker`: only the request's `waitUntil`
 * is waited for, and the response's body is cancelled when it comes, as the runtime does for a
 * client that has gone.
 */
async function leaveBeforeTheAnswer(
  path: string,
  key: string,
  body: unknown,
  marker: string,
  headers: Record<string, string> = {},
) {
  const ctx = createExecutionContext();
  const answered = worker
    .fetch(
      new Request(`${BASE}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
      env,
      ctx,
    )
    .then((res) => res.body?.cancel());
  // Gone once the model has the message, or once the response came (a stream's comes before it).
  await Promise.race([
    answered,
    eventually(async () => {
      const seen = await upstreamRequests();
      expect(seen.some((r) => JSON.stringify(r.body).includes(marker))).toBe(true);
    }),
  ]);
  await waitOnExecutionContext(ctx);
  return { answered };
}

type Usage = {
  month: { tokens_used: number; tokens_reserved: number };
  window: { open_reservations: number };
};

async function usageOf(key: string): Promise<Usage> {
  return (await (await send("GET", "/v1/usage", key)).json()) as Usage;
}

function turnOf(conversationId: string) {
  return eventually(async () => {
    const rows = await query<{ outcome: string; input_tokens: string; output_tokens: string }>(
      sql`select outcome, input_tokens, output_tokens from turns where conversation_id = ${conversationId}`,
    );
    expect(rows).toHaveLength(1);
    return rows[0];
  });
}

/**
 * Nothing is left open for the gate's expiry to find: the message was settled at what was used and
 * its turn recorded. An answer not streamed runs to its end (`ok`); a stream ends where its body
 * was cancelled (`disconnected`).
 */
async function expectSettled(key: string, conversationId: string, outcome: "ok" | "disconnected") {
  const usage = await usageOf(key);
  expect(usage.window.open_reservations).toBe(0);
  expect(usage.month.tokens_reserved).toBe(0);
  const turn = await turnOf(conversationId);
  expect(turn?.outcome).toBe(outcome);
  expect(usage.month.tokens_used).toBe(Number(turn?.input_tokens) + Number(turn?.output_tokens));
}

describe("a client that leaves before the answer", () => {
  for (const stream of [true, false]) {
    it(`OpenAI route (${stream ? "streamed" : "not streamed"}): settled and recorded`, async () => {
      const { key } = await chatTenant({ model: "gpt-4o-mini" });
      const conv = uniqueId("gone");
      const marker = uniqueId("marker");
      const { answered } = await leaveBeforeTheAnswer(
        "/v1/chat/completions",
        key,
        { model: "gpt-4o-mini", stream, messages: [{ role: "user", content: `${marker} ${SILENT}` }] },
        marker,
        { "x-conversation-id": conv },
      );
      await expectSettled(key, conv, stream ? "disconnected" : "ok");
      await answered;
    });
  }

  for (const stream of [true, false]) {
    it(`conversation API (${stream ? "streamed" : "not streamed"}): settled and recorded`, async () => {
      const { key } = await chatTenant({ model: "gpt-4o-mini" });
      const started = await send("POST", "/v1/conversations", key, {});
      const { id } = (await started.json()) as { id: string };
      const marker = uniqueId("marker");
      const { answered } = await leaveBeforeTheAnswer(
        `/v1/conversations/${id}/messages`,
        key,
        { content: `${marker} ${SILENT}`, stream },
        marker,
      );
      await expectSettled(key, id, stream ? "disconnected" : "ok");
      // The visitor's message is in the transcript, and the answer it did not wait for when it came.
      const transcript = (await (await send("GET", `/v1/conversations/${id}`, key)).json()) as {
        messages: { role: string }[];
      };
      expect(transcript.messages.map((m) => m.role)).toEqual(stream ? ["user"] : ["user", "assistant"]);
      await answered;
    });
  }
});
