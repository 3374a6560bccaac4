/**
 * A client that leaves before its answer has begun. Workers then run only what `ctx.waitUntil`
 * holds, and the runtime aborts the incoming request's signal (compatibility flag
 * `enable_request_signal`). These tests call the worker's fetch with an execution context of their
 * own, abort the request's signal once the model has the message, and then wait on that context
 * alone, as the runtime would keep it: by then the message's reservation must be settled, the
 * model call stopped, and the turn on its way to the analytics queue. Before, the reservation stayed
 * open until the gate's 10-minute expiry and the turn went unrecorded.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { eventually } from "../eventually";
import { BASE, query, send, sql, uniqueId } from "../helpers";
import { chatTenant, upstreamRequests } from "./helpers";

// The model answers nothing for this long: long enough that only an aborted call ends sooner.
const SILENT = "[[fault:slow:20000]]";

/** Sends `body` to `path`, and leaves (aborts the request's signal) once the model has `marker`. */
async function leaveBeforeTheAnswer(
  path: string,
  key: string,
  body: unknown,
  marker: string,
  headers: Record<string, string> = {},
) {
  const ctx = createExecutionContext();
  const gone = new AbortController();
  const answered = worker.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: gone.signal,
    }),
    env,
    ctx,
  );
  await eventually(async () => {
    const seen = await upstreamRequests();
    expect(seen.some((r) => JSON.stringify(r.body).includes(marker))).toBe(true);
  });
  gone.abort();
  // What the runtime still runs for a request whose client has gone: its waitUntil promises.
  await waitOnExecutionContext(ctx);
  await answered.then((res) => res.body?.cancel());
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
    const rows = await query<{ outcome: string; error: string | null; output_tokens: string }>(
      sql`select outcome, error, output_tokens from turns where conversation_id = ${conversationId}`,
    );
    expect(rows).toHaveLength(1);
    return rows[0];
  });
}

/**
 * Nothing is left open for the gate's expiry to find, nothing was produced to pay for, and the turn
 * is recorded as the client's leaving, not as the model's failure: the model call stopped when the
 * client left (else it would have run on until the model answered, or the provider timeout ended it
 * as an error).
 */
async function expectLeft(key: string, conversationId: string) {
  const usage = await usageOf(key);
  expect(usage.window.open_reservations).toBe(0);
  expect(usage.month.tokens_reserved).toBe(0);
  expect(await turnOf(conversationId)).toMatchObject({
    outcome: "disconnected",
    error: "client disconnected",
    output_tokens: "0",
  });
}

describe("a client that leaves before the answer", () => {
  for (const stream of [true, false]) {
    it(`OpenAI route (${stream ? "streamed" : "not streamed"}): settled, stopped and recorded`, async () => {
      const { key } = await chatTenant({ model: "gpt-4o-mini" });
      const conv = uniqueId("gone");
      const marker = uniqueId("marker");
      await leaveBeforeTheAnswer(
        "/v1/chat/completions",
        key,
        { model: "gpt-4o-mini", stream, messages: [{ role: "user", content: `${marker} ${SILENT}` }] },
        marker,
        { "x-conversation-id": conv },
      );
      await expectLeft(key, conv);
    });
  }

  for (const stream of [true, false]) {
    it(`conversation API (${stream ? "streamed" : "not streamed"}): settled, stopped and recorded`, async () => {
      const { key } = await chatTenant({ model: "gpt-4o-mini" });
      const started = await send("POST", "/v1/conversations", key, {});
      const { id } = (await started.json()) as { id: string };
      const marker = uniqueId("marker");
      await leaveBeforeTheAnswer(
        `/v1/conversations/${id}/messages`,
        key,
        { content: `${marker} ${SILENT}`, stream },
        marker,
      );
      await expectLeft(key, id);
      // The visitor's message is in the transcript; no answer is.
      const transcript = (await (await send("GET", `/v1/conversations/${id}`, key)).json()) as {
        messages: { role: string; content: string }[];
      };
      expect(transcript.messages.map((m) => m.role)).toEqual(["user"]);
    });
  }
});
