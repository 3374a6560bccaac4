/**
 * Issue #15 (item 4): a conversation message reserves what its history really costs, not a flat
 * 6,000 tokens, so a small budget serves as many messages on the conversation API as on the
 * OpenAI route. The Conversation object asks for admission itself, so any isolate reserves exactly
 * the history it sends.
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StartedConversation } from "../../../src/api-types";
import { HISTORY_TOKEN_BUDGET } from "../../../src/chat/conversation-access";
import type { ChatMessage } from "../../../src/chat/providers/types";
import { estimateTokens } from "../../../src/chat/tokens";
import type { RawEnv } from "../../../src/env";
import worker from "../../../src/index";
import { BASE, envelope, send } from "../helpers";
import { chatTenant, completions } from "./helpers";

const SYSTEM = "You help.";
const MAX_OUT = 100;
const OPEN_LIMITS = { rate_limit_per_minute: 10_000, user_rate_limit_per_minute: 10_000 };

/** Another isolate: a copy of env, so everything kept in isolate memory starts empty. */
const anotherIsolate = (): RawEnv => ({ ...env });

/** Sends a request to the worker as the isolate whose environment is `isolateEnv`. */
async function sendOn(isolateEnv: RawEnv, path: string, key: string, body: unknown) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    isolateEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

async function start(key: string): Promise<string> {
  const res = await send("POST", "/v1/conversations", key, {});
  expect(res.status).toBe(201);
  return ((await res.json()) as StartedConversation).id;
}

const say = (key: string, id: string, content: string) =>
  send("POST", `/v1/conversations/${id}/messages`, key, { content });

/** The tokens each admission of a conversation reserved (input bound + max output), in order. */
function reservations(tenantId: string, conversationId: string): Promise<number[]> {
  return runInDurableObject(env.TENANT_GATE.getByName(tenantId), (_g, state) =>
    state.storage.sql
      .exec<{ res_tokens: number }>(
        "SELECT res_tokens FROM admissions WHERE conv_id = ? ORDER BY seq",
        conversationId,
      )
      .toArray()
      .map((r) => Number(r.res_tokens)),
  );
}

/** The conversation's stored messages, as the model is sent them. */
async function historyOf(key: string, id: string): Promise<ChatMessage[]> {
  const res = await send("GET", `/v1/conversations/${id}`, key);
  const t = (await res.json()) as { messages: { role: "user" | "assistant"; content: string }[] };
  return t.messages.map((m) => ({ role: m.role, content: m.content }));
}

describe("conversation history reservation", () => {
  it("serves an 8,000-token tenant as many short messages as the OpenAI route does", async () => {
    const tenant = { monthly_token_budget: 8_000, system_prompt: SYSTEM, ...OPEN_LIMITS };
    const content = (i: number) => `hello again, question number ${i} about my order`;

    const a = await chatTenant(tenant);
    const conv = await start(a.key);
    let onConversation = 0;
    for (; onConversation < 200; onConversation++) {
      const res = await say(a.key, conv, content(onConversation));
      if (res.status !== 200) {
        expect(res.status).toBe(429);
        expect((await envelope(res)).details).toMatchObject({ budget: "monthly_tokens" });
        break;
      }
      await res.json();
    }

    const b = await chatTenant(tenant);
    const messages: ChatMessage[] = [];
    let onOpenAi = 0;
    for (; onOpenAi < 200; onOpenAi++) {
      messages.push({ role: "user", content: content(onOpenAi) });
      const res = await completions(b.key, { model: "mock", user: "alice", messages });
      if (res.status !== 200) {
        expect(res.status).toBe(429);
        break;
      }
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      messages.push({ role: "assistant", content: body.choices[0]?.message.content ?? "" });
    }

    // With the flat 6,000-token history reservation the conversation API stopped after about
    // 2,565 tokens (a handful of messages) while the OpenAI route went on.
    expect(onOpenAi).toBeGreaterThan(10);
    expect(Math.abs(onConversation - onOpenAi)).toBeLessThanOrEqual(1);
  });

  it("lets a tenant with a 6,000-token budget use the conversation API", async () => {
    const { key } = await chatTenant({ monthly_token_budget: 6_000, system_prompt: SYSTEM });
    const conv = await start(key);
    expect((await say(key, conv, "where is my order")).status).toBe(200);
    expect((await say(key, conv, "and when does it ship")).status).toBe(200);
  });

  it("reserves the message plus what its history costs, exactly what is sent", async () => {
    const { id, key } = await chatTenant({ system_prompt: SYSTEM, max_tokens_per_response: MAX_OUT });
    const conv = await start(key);
    const expected: number[] = [];
    for (const content of ["where is my order", "it is order 5512", "and when does it ship"]) {
      const sent = [...(await historyOf(key, conv)), { role: "user" as const, content }];
      const res = await say(key, conv, content);
      expect(res.status).toBe(200);
      const reply = (await res.json()) as { usage: { input_tokens: number } };
      // The mock is charged what it was sent: the same count the reservation held.
      expect(reply.usage.input_tokens).toBe(estimateTokens(sent, { system: SYSTEM }));
      expected.push(estimateTokens(sent, { system: SYSTEM }) + MAX_OUT);
    }
    expect(await reservations(id, conv)).toEqual(expected);
  });

  it("reserves what the history costs in an isolate that never saw the conversation", async () => {
    const { id, key } = await chatTenant({ system_prompt: SYSTEM, max_tokens_per_response: MAX_OUT });
    const conv = await start(key);
    expect((await say(key, conv, "where is my order")).status).toBe(200);

    // The Conversation object counts its own history when it asks for admission: another isolate,
    // which remembers nothing about the conversation, reserves exactly what is sent, not 6,000.
    const other = anotherIsolate();
    const path = `/v1/conversations/${conv}/messages`;
    const first = await sendOn(other, path, key, { content: "and when does it ship" });
    expect(first.status).toBe(200);
    const history = await historyOf(key, conv);
    const sent = estimateTokens(history.slice(0, 3), { system: SYSTEM });
    expect(((await first.json()) as { usage: { input_tokens: number } }).usage.input_tokens).toBe(sent);
    const [, fresh] = await reservations(id, conv);
    expect(fresh).toBe(sent + MAX_OUT);
    expect(fresh).toBeLessThan(HISTORY_TOKEN_BUDGET);
  });

  it("trims a history longer than the budget and reserves only what is sent", async () => {
    const { id, key } = await chatTenant({ system_prompt: SYSTEM, max_tokens_per_response: MAX_OUT });
    const conv = await start(key);
    const long = (i: number) => `order ${i} details 4711 `.repeat(300);
    let sent = 0;
    while (estimateTokens(await historyOf(key, conv)) <= HISTORY_TOKEN_BUDGET) {
      expect((await say(key, conv, long(sent++))).status).toBe(200);
    }
    const res = await say(key, conv, "thanks");
    expect(res.status).toBe(200);
    const used = ((await res.json()) as { usage: { input_tokens: number } }).usage.input_tokens;
    expect((await reservations(id, conv)).at(-1)).toBe(used + MAX_OUT);
    expect(used).toBeLessThanOrEqual(
      estimateTokens([{ role: "user", content: "thanks" }], { system: SYSTEM }) + HISTORY_TOKEN_BUDGET,
    );
  });

  it("admits nothing for an unknown conversation", async () => {
    const UNKNOWN = `conv_${"0".repeat(24)}`;
    const { id, key } = await chatTenant({ system_prompt: SYSTEM });
    const res = await say(key, UNKNOWN, "hello");
    expect(res.status).toBe(404);
    expect(await reservations(id, UNKNOWN)).toEqual([]);
  });
});
