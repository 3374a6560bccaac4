import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MOCK_GREETING_REPLY } from "../../src/chat/providers/mock";
import { type Stack, startStack } from "./stack";

let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: stack.secretKey, maxRetries: 0 });
}, 150_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

describe("the official openai client against `npm run dev`", () => {
  it("gets a non-streamed completion from the mock provider", async () => {
    const res = await client.chat.completions.create({
      model: "mock",
      messages: [{ role: "user", content: "hello" }],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]?.message.content).toBe(MOCK_GREETING_REPLY);
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("streams a completion chunk by chunk, with usage at the end", async () => {
    const stream = await client.chat.completions.create({
      model: "mock",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "what are your opening hours on sunday" }],
    });
    let text = "";
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toContain("opening hours on sunday");
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  it("surfaces errors as the client's typed errors", async () => {
    const bad = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: `sk_${"x".repeat(44)}`, maxRetries: 0 });
    await expect(
      bad.chat.completions.create({ model: "mock", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});
