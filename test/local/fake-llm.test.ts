import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeLlm, parseFault, startFakeLlm } from "../../local/fake-llm.ts";

// The official client is the judge of whether the fake speaks OpenAI's protocol; Anthropic's
// stream is checked byte by byte against the documented event sequence.
let fake: FakeLlm;
let n = 0;
const key = (stem = "sk-node") => `${stem}-${process.pid}-${++n}`;
const client = (apiKey: string, maxRetries = 0) =>
  new OpenAI({ apiKey, baseURL: `${fake.url}/v1`, maxRetries, timeout: 5_000 });

async function stats(k: string): Promise<Record<string, number>> {
  const res = await fetch(`${fake.url}/__stats?key=${encodeURIComponent(k)}`);
  return ((await res.json()) as { requests: Record<string, number> }).requests;
}

async function queue(k: string, faults: string[]) {
  const res = await fetch(`${fake.url}/__control`, {
    method: "POST",
    body: JSON.stringify({ key: k, faults }),
  });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});

describe("fake LLM: OpenAI Chat Completions through the official openai client", () => {
  it("answers a non-streaming completion with message, finish reason and usage", async () => {
    const res = await client(key()).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello there friend" },
      ],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]?.message).toMatchObject({
      role: "assistant",
      content: "Fake openai reply: hello there friend",
    });
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
  });

  it("streams chunks the client assembles, with the usage chunk last when include_usage is set", async () => {
    const stream = await client(key()).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "one two three" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const finishes: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.object).toBe("chat.completion.chunk");
      text += chunk.choices[0]?.delta.content ?? "";
      const f = chunk.choices[0]?.finish_reason;
      if (f) finishes.push(f);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Fake openai reply: one two three");
    expect(finishes).toEqual(["stop"]);
    expect(usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 6 });
    // role chunk + 6 words + finish chunk + usage chunk
    expect(chunks).toBe(9);
  });

  it("omits usage without include_usage, like the real API", async () => {
    const stream = await client(key()).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    for await (const chunk of stream) expect(chunk.usage).toBeUndefined();
  });

  it("streams tool-call deltas that the client's helper assembles into a call", async () => {
    const runner = client(key()).chat.completions.stream({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "please get_weather for Paris" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" && call.function.name).toBe("get_weather");
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({
      query: "please get_weather for Paris",
    });
  });

  it("answers queued faults as the client expects: 429 with retry-after, then 500", async () => {
    const k = key();
    await queue(k, ["429:3", "500"]);
    const c = client(k);
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "x" }] };
    const first = await c.chat.completions.create(body).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(OpenAI.RateLimitError);
    expect((first as InstanceType<typeof OpenAI.RateLimitError>).headers.get("retry-after")).toBe("3");
    expect((first as InstanceType<typeof OpenAI.RateLimitError>).code).toBe("rate_limit_exceeded");
    const second = await c.chat.completions.create(body).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(OpenAI.InternalServerError);
    const third = await c.chat.completions.create(body);
    expect(third.choices[0]?.message.content).toBe("Fake openai reply: x");
    expect(await stats(k)).toEqual({ "/v1/chat/completions": 3 });
  });

  it("cuts a stream mid-body: the client sees part of the reply, then an error", async () => {
    const stream = await client(key()).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "a b c d e f g h [[fault:cut]]" }],
      stream: true,
    });
    let text = "";
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // 14 events (role chunk, 11 words, finish chunk, [DONE]); the first 7 arrive: role + 6 words.
    expect(text).toBe("Fake openai reply: a b c");
  });

  it("paces a stream: each event in a read of its own, the whole answer as usual", async () => {
    // Raw reads, not the client: what is checked is how the bytes arrive.
    const res = await fetch(`${fake.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key()}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        messages: [{ role: "user", content: "a b c [[fault:pace:15]]" }],
      }),
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const reads: string[] = [];
    const started = performance.now();
    for (let r = await reader.read(); !r.done; r = await reader.read()) reads.push(decoder.decode(r.value));
    const ms = performance.now() - started;
    const events = reads.join("").split("\n\n").filter(Boolean);
    // role chunk, 6 words, finish chunk, [DONE]: 9 events, one a read, 15 ms apart.
    expect(events).toHaveLength(9);
    expect(reads).toHaveLength(9);
    expect(ms).toBeGreaterThanOrEqual(8 * 15 - 5);
    const text = events
      .filter((e) => e.startsWith("data: {"))
      .map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? "")
      .join("");
    expect(text).toBe("Fake openai reply: a b c");
  });

  it("rejects a bad key with 401 and counts requests per path and per key", async () => {
    const k = key("sk-bad");
    const err = await client(k)
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(await stats(k)).toEqual({ "/v1/chat/completions": 1 });
  });
});

/** Splits an SSE body into (event, data) pairs the plain way: blank-line separated blocks. */
function rawEvents(body: string): Array<{ event: string; data: Record<string, unknown> }> {
  return body
    .split("\n\n")
    .filter((b) => b.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "";
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6) ?? "{}";
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

function anthropic(k: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(`${fake.url}/v1/messages`, {
    method: "POST",
    headers: {
      "x-api-key": k,
      "anthropic-version": "2023-06-01",
      "content-type": "application/json",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

describe("fake LLM: Anthropic Messages, parsed raw", () => {
  it("streams the documented event sequence with text deltas and usage", async () => {
    const res = await anthropic(key("sk-ant"), {
      model: "claude-haiku-4-5",
      max_tokens: 100,
      system: "Be kind.",
      stream: true,
      messages: [{ role: "user", content: "hello world" }],
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = rawEvents(await res.text());
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events.map((e) => e.event)).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      ...Array(5).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const text = events
      .filter((e) => e.event === "content_block_delta")
      .map((e) => (e.data.delta as { text: string }).text)
      .join("");
    expect(text).toBe("Fake anthropic reply: hello world");
    expect((events[0]!.data.message as { usage: unknown }).usage).toMatchObject({
      input_tokens: 4,
      output_tokens: 1,
    });
    expect(events[9]?.data).toEqual({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: 5 },
    });
  });

  it("streams a tool_use block after a text block, with input_json_delta fragments", async () => {
    const res = await anthropic(key("sk-ant"), {
      model: "claude-haiku-4-5",
      max_tokens: 100,
      stream: true,
      tools: [{ name: "lookup", input_schema: { type: "object" } }],
      messages: [{ role: "user", content: "lookup order 42" }],
    });
    const events = rawEvents(await res.text());
    const start = events.find((e) => e.event === "content_block_start" && e.data.index === 1);
    expect(start?.data.content_block).toEqual({
      type: "tool_use",
      id: expect.stringMatching(/^toolu_/),
      name: "lookup",
      input: {},
    });
    const json = events
      .filter((e) => e.event === "content_block_delta" && e.data.index === 1)
      .map((e) => (e.data.delta as { partial_json: string }).partial_json)
      .join("");
    expect(JSON.parse(json)).toEqual({ query: "lookup order 42" });
    expect((events.at(-2)!.data.delta as { stop_reason: string }).stop_reason).toBe("tool_use");
  });

  it("answers non-streaming with content blocks and usage", async () => {
    const res = await anthropic(key("sk-ant"), {
      model: "claude-haiku-4-5",
      max_tokens: 2,
      messages: [{ role: "user", content: "truncate this please" }],
    });
    expect(await res.json()).toMatchObject({
      type: "message",
      content: [{ type: "text", text: "Fake anthropic" }],
      stop_reason: "max_tokens",
      usage: { input_tokens: 3, output_tokens: 2 },
    });
  });

  it("enforces the protocol's required headers and fields, in Anthropic's error shape", async () => {
    const noVersion = await anthropic(
      key("sk-ant"),
      { model: "m", max_tokens: 1, messages: [] },
      { "anthropic-version": "" },
    );
    expect(noVersion.status).toBe(400);
    const noMax = await anthropic(key("sk-ant"), { model: "m", messages: [] });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "max_tokens: Field required" },
    });
  });

  it("answers 529 overloaded with Anthropic's error body when asked by header", async () => {
    const res = await anthropic(
      key("sk-ant"),
      { model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }] },
      { "x-fake-fault": "529" },
    );
    expect(res.status).toBe(529);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("overloaded_error");
  });
});

describe("fault specs", () => {
  it("parses each kind and rejects nonsense", () => {
    expect(parseFault("500")).toEqual({ kind: "status", status: 500 });
    expect(parseFault("429:2")).toEqual({ kind: "status", status: 429, retryAfter: 2 });
    expect(parseFault("429ms:300")).toEqual({ kind: "status", status: 429, retryAfterMs: 300 });
    expect(parseFault("hang")).toEqual({ kind: "hang" });
    expect(parseFault("cut")).toEqual({ kind: "cut" });
    expect(parseFault("slow:800")).toEqual({ kind: "slow", ms: 800 });
    expect(parseFault("pace:5")).toEqual({ kind: "pace", ms: 5 });
    expect(parseFault("200")).toBeUndefined();
    expect(parseFault("nope")).toBeUndefined();
  });
});
