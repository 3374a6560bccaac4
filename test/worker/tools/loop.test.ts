/**
 * The tool loop (issue #16) end to end: the conversation API and the OpenAI route, both wire
 * protocols streamed and not, against the fake LLM (local/fake-llm.ts) and real local tools
 * (local/tools.ts: the example order-status worker in workerd, and a faulty tool).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { estimateTokens } from "../../../src/chat/tokens";
import { TEST_TOOL_SECRET } from "../../local-services";
import { completions, FAKE, sseFrames } from "../chat/helpers";
import { eventually } from "../eventually";
import { admin, createKey, createTenant, query, send, sql, uniqueId } from "../helpers";
import { queueFaults } from "../providers/helpers";

const ORDER_TOOL = {
  description: "Looks up an order by its number. Answers its status, carrier and tracking.",
  parameters: {
    type: "object",
    properties: { order_id: { type: "string", pattern: "^[0-9]{1,12}$" } },
    required: ["order_id"],
    additionalProperties: false,
  },
};

type Tool = { name: string; url: string; timeout_ms?: number };

/** A tenant on `model` whose bot may use `tools`, registered through the API and signed with the test secret. */
async function toolTenant(model: string, tools: Tool[], overrides: Record<string, unknown> = {}) {
  const t = await createTenant({ model, allowed_tools: tools.map((x) => x.name), ...overrides });
  const { key } = await createKey(t.tenant_id);
  for (const tool of tools) {
    const res = await send("POST", "/v1/tools", key, {
      name: tool.name,
      ...ORDER_TOOL,
      target: { kind: "https", url: tool.url },
      ...(tool.timeout_ms ? { timeout_ms: tool.timeout_ms } : {}),
    });
    expect(res.status).toBe(201);
  }
  // The local tools check one known secret; the registry made its own, shown once.
  await query(sql`update tools set secret = ${TEST_TOOL_SECRET} where tenant_id = ${t.tenant_id}`);
  return { id: t.tenant_id, key };
}

const orderTool = (name = "order_status"): Tool => ({ name, url: env.ORDER_STATUS_URL });
const faulty = (path: string, name = "order_status", timeout_ms?: number): Tool => ({
  name,
  url: `${env.FAULTY_TOOL_URL}${path}`,
  timeout_ms,
});

async function startConversation(key: string): Promise<string> {
  const res = await send("POST", "/v1/conversations", key, {});
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

type Reply = { message: { content: string }; usage: { input_tokens: number; output_tokens: number } };

async function ask(key: string, conv: string, content: string, stream = false) {
  return send("POST", `/v1/conversations/${conv}/messages`, key, { content, stream });
}

type TurnRow = {
  outcome: string;
  error: string | null;
  tools_used: string[];
  tools: { name: string; ok: boolean; failure: string | null }[] | null;
  input_tokens: string;
  output_tokens: string;
};

/** The turn row of the conversation's message `index`, once the consumer wrote it. */
function turnOf(tenantId: string, conv: string, index = 0): Promise<TurnRow> {
  return eventually(
    async () => {
      const [row] = await query<TurnRow>(
        sql`select outcome, error, tools_used, tools, input_tokens, output_tokens from turns
          where tenant_id = ${tenantId} and conversation_id = ${conv} and turn_index = ${index}`,
      );
      if (!row) throw new Error("no turn yet");
      return row;
    },
    { timeoutMs: 25_000 },
  );
}

type Usage = {
  month: { tokens_used: number; tokens_reserved: number };
  window: { open_reservations: number };
};

/** /v1/usage once every reservation is settled. */
function settledUsage(key: string): Promise<Usage> {
  return eventually(
    async () => {
      const u = (await (await send("GET", "/v1/usage", key)).json()) as Usage;
      expect(u.window.open_reservations).toBe(0);
      expect(u.month.tokens_reserved).toBe(0);
      return u;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
}

/** The bodies the fake LLM saw for the worker's key of `proto`, newest last. */
async function upstream(proto: "openai" | "anthropic"): Promise<Record<string, unknown>[]> {
  const key = proto === "openai" ? "sk-worker-test" : "sk-ant-worker-test";
  const res = await fetch(`${FAKE}/__requests?key=${encodeURIComponent(key)}`);
  return ((await res.json()) as { requests: { body: Record<string, unknown> }[] }).requests.map(
    (r) => r.body,
  );
}

const MODELS = [
  { proto: "openai" as const, model: "gpt-4o-mini" },
  { proto: "anthropic" as const, model: "claude-haiku" },
];

describe.each(MODELS)("the tool loop on the conversation API ($proto)", ({ proto, model }) => {
  it.each([false, true])("looks up an order with the example tool (stream: %s)", async (stream) => {
    const t = await toolTenant(model, [orderTool()]);
    const conv = await startConversation(t.key);
    const res = await ask(t.key, conv, "where is my order 1234?", stream);
    expect(res.status).toBe(200);
    let answer: string;
    if (stream) {
      const frames = await sseFrames(res);
      const tool = frames.filter((f) => f.event === "tool").map((f) => JSON.parse(f.data));
      expect(tool).toEqual([
        { phase: "start", name: "order_status", label: "Looks up an order by its number." },
        { phase: "end", name: "order_status", ok: true },
      ]);
      const done = frames.find((f) => f.event === "done");
      answer = (JSON.parse(done?.data ?? "{}") as Reply).message.content;
      // The status comes before the answer's text that follows the tool.
      const events = frames.map((f) => f.event);
      expect(events.indexOf("tool")).toBeLessThan(events.lastIndexOf("delta"));
    } else {
      answer = ((await res.json()) as Reply).message.content;
    }
    // The fake model repeats the tool's answer: the order was really looked up.
    expect(answer).toContain("Tool result received:");
    expect(answer).toContain('"status":"shipped"');
    expect(answer).toContain("1Z999AA10123456784");

    // The second model call got the tool's answer as tool content, in the protocol's own shape.
    const bodies = (await upstream(proto)).filter((b) => JSON.stringify(b).includes("1Z999AA10123456784"));
    const second = bodies.at(-1) as { messages: Record<string, unknown>[]; system?: string };
    const msgs = second.messages;
    if (proto === "openai") {
      const assistant = msgs.at(-2) as {
        role: string;
        tool_calls: { id: string; function: { name: string; arguments: string } }[];
      };
      expect(assistant.role).toBe("assistant");
      expect(assistant.tool_calls[0]?.function).toEqual({
        name: "order_status",
        arguments: '{"order_id":"1234"}',
      });
      expect(msgs.at(-1)).toMatchObject({ role: "tool", tool_call_id: assistant.tool_calls[0]?.id });
      expect(JSON.stringify(msgs[0])).not.toContain("1Z999AA10123456784");
    } else {
      const assistant = msgs.at(-2) as { role: string; content: Record<string, unknown>[] };
      expect(assistant.role).toBe("assistant");
      const use = assistant.content.find((b) => b.type === "tool_use");
      expect(use).toMatchObject({ name: "order_status", input: { order_id: "1234" } });
      const result = msgs.at(-1) as { role: string; content: Record<string, unknown>[] };
      expect(result.role).toBe("user");
      expect(result.content[0]).toMatchObject({ type: "tool_result", tool_use_id: use?.id });
      // Tool output is data, never system text.
      expect(second.system ?? "").not.toContain("1Z999AA10123456784");
    }

    const turn = await turnOf(t.id, conv);
    expect(turn.outcome).toBe("ok");
    expect(turn.tools_used).toEqual(["order_status"]);
    expect(turn.tools).toEqual([expect.objectContaining({ name: "order_status", ok: true, failure: null })]);
    // Both model calls settled; the budget counts the tokens of both.
    const usage = await settledUsage(t.key);
    expect(usage.month.tokens_used).toBe(Number(turn.input_tokens) + Number(turn.output_tokens));
  });
});

describe("tool faults on the conversation API", () => {
  const cases: { what: string; tool: Tool; content?: string; failure: string; told: string }[] = [
    { what: "a tool answering 500", tool: faulty("/status/500"), failure: "http_error", told: "HTTP 500" },
    {
      what: "a hanging tool",
      tool: faulty("/hang", "order_status", 300),
      failure: "timeout",
      told: "did not answer in time",
    },
    { what: "invalid JSON", tool: faulty("/invalid-json"), failure: "invalid_json", told: "not JSON" },
    { what: "a huge body", tool: faulty("/huge"), failure: "too_large", told: "order_status" },
    {
      what: "arguments failing the schema",
      tool: orderTool(),
      content: 'where is my order 1234? [[args:{"order_id":12}]]',
      failure: "invalid_arguments",
      told: "do not match its parameters schema",
    },
    {
      what: "an unknown tool",
      tool: orderTool(),
      content: "where is my order 1234? [[call:delete_account]]",
      failure: "not_allowed",
      told: "order_status",
    },
  ];
  it.each(cases)(
    "$what: a corrective message to the model, a recorded failure, settled reservations",
    async (c) => {
      const t = await toolTenant("gpt-4o-mini", [c.tool]);
      const conv = await startConversation(t.key);
      const res = await ask(t.key, conv, c.content ?? "where is my order 1234?");
      expect(res.status).toBe(200);
      const reply = (await res.json()) as Reply;
      // The model was told what went wrong (the fake repeats it); the tool's own body never reaches it.
      expect(reply.message.content).toContain("Tool result received: Error:");
      expect(reply.message.content).toContain(c.told);
      expect(reply.message.content).not.toContain("stack trace with secrets");
      expect(JSON.stringify(reply)).not.toContain(TEST_TOOL_SECRET);
      const turn = await turnOf(t.id, conv);
      expect(turn.outcome).toBe("ok");
      expect(turn.tools?.map((x) => [x.name.slice(0, 14), x.ok, x.failure])).toEqual([
        [c.failure === "not_allowed" ? "delete_account" : "order_status", false, c.failure],
      ]);
      await settledUsage(t.key);
    },
  );

  it("stops at the tenant's step limit: the last call offers no tool choice and the model answers", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool()], { max_tool_steps: 2 });
    const conv = await startConversation(t.key);
    const res = await ask(t.key, conv, "where is my order 1235? [[again]]");
    expect(res.status).toBe(200);
    const reply = (await res.json()) as Reply;
    expect(reply.message.content).toContain('"status":"processing"');
    const turn = await turnOf(t.id, conv);
    expect(turn.tools?.length).toBe(2);
    const calls = (await upstream("openai")).filter((b) =>
      JSON.stringify(b.messages).includes("1235? [[again]]"),
    );
    // Two rounds with tools, then one call that must answer in text.
    expect(calls.slice(-3).map((b) => b.tool_choice ?? "auto")).toEqual(["auto", "auto", "none"]);
    await settledUsage(t.key);
  });

  it("aborts the running tool call when the visitor disconnects, and settles every reservation", async () => {
    const t = await toolTenant("gpt-4o-mini", [faulty("/hang", "order_status", 20_000)]);
    const conv = await startConversation(t.key);
    const res = await ask(t.key, conv, "where is my order 1234?", true);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let seen = "";
    while (!seen.includes("event: tool")) seen += decoder.decode((await reader.read()).value);
    await reader.cancel();
    const turn = await turnOf(t.id, conv);
    expect(turn.outcome).toBe("disconnected");
    expect(turn.tools).toEqual([
      expect.objectContaining({ name: "order_status", ok: false, failure: "cancelled" }),
    ]);
    await settledUsage(t.key);
  });
});

describe("budgets and rate windows across steps", () => {
  it("reserves for the tool definitions it offers from the first model call (conversation API)", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool()]);
    const conv = await startConversation(t.key);
    // No usage from the model (the fake leaves it out of a stream): the turn is charged what
    // admission counted for the call.
    const content = "hello, can you help me? [[nousage]]";
    const res = await ask(t.key, conv, content, true);
    expect(res.status).toBe(200);
    const done = (await sseFrames(res)).find((f) => f.event === "done");
    const reply = JSON.parse(done?.data ?? "{}") as Reply;
    type Fn = { name: string; description: string; parameters: Record<string, unknown> };
    const sent = (await upstream("openai")).at(-1) as {
      messages: { role: string; content: string }[];
      tools: { function: Fn }[];
    };
    expect(sent.tools.map((x) => x.function.name)).toEqual(["order_status"]);
    const system = sent.messages.find((m) => m.role === "system")?.content;
    // As sent (the registry's copy of the schema, in its stored key order).
    const tool = (sent.tools[0] as { function: Fn }).function;
    const withTools = estimateTokens([{ role: "user", content }], { system, tools: [tool] });
    expect(withTools).toBeGreaterThan(estimateTokens([{ role: "user", content }], { system }));
    expect(reply.usage.input_tokens).toBe(withTools);
  });

  it("records tools_used per conversation when it ends", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool(), orderTool("lookup_faq")]);
    const conv = await startConversation(t.key);
    expect((await ask(t.key, conv, "where is my order 1234?")).status).toBe(200);
    expect((await ask(t.key, conv, "hello again")).status).toBe(200);
    expect((await ask(t.key, conv, "please lookup_faq")).status).toBe(200);
    expect((await send("POST", `/v1/conversations/${conv}/end`, t.key, { resolved: true })).status).toBe(200);
    const row = await eventually(async () => {
      const [r] = await query<{ tools_used: string[] }>(
        sql`select tools_used from conversations where tenant_id = ${t.id} and conversation_id = ${conv}`,
      );
      if (!r) throw new Error("no conversation row yet");
      return r;
    });
    expect(row.tools_used).toEqual(["order_status", "lookup_faq"]);
    expect((await turnOf(t.id, conv, 1)).tools_used).toEqual([]);
  });

  it("counts a message with a tool step as one request in the rate window, and every step's tokens", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool()], { user_rate_limit_per_minute: 2 });
    const conv = await startConversation(t.key);
    // Two model calls each, two messages: a step counting as a request would refuse the second.
    for (const n of ["1234", "1236"]) {
      const res = await ask(t.key, conv, `where is my order ${n}?`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Reply).message.content).toContain(`"order_id":"${n}"`);
    }
    const third = await ask(t.key, conv, "and order 1237?");
    expect(third.status).toBe(429);
    const turns = [await turnOf(t.id, conv, 0), await turnOf(t.id, conv, 1)];
    const usage = await settledUsage(t.key);
    expect(usage.month.tokens_used).toBe(
      turns.reduce((n, x) => n + Number(x.input_tokens) + Number(x.output_tokens), 0),
    );
  });
});

describe.each(MODELS)("the OpenAI route with server-side tools ($proto)", ({ model }) => {
  it.each([false, true])("runs the registered tool and answers (stream: %s)", async (stream) => {
    const t = await toolTenant(model, [orderTool()], { tool_execution: "server" });
    const conv = uniqueId("conv");
    const res = await completions(
      t.key,
      { model, stream, messages: [{ role: "user", content: "where is my order 1236?" }] },
      { "x-conversation-id": conv },
    );
    expect(res.status).toBe(200);
    let text: string;
    let finish: string | undefined;
    if (stream) {
      const frames = (await sseFrames(res)).filter((f) => f.data !== "[DONE]").map((f) => JSON.parse(f.data));
      text = frames.map((f) => f.choices?.[0]?.delta?.content ?? "").join("");
      expect(frames.some((f) => f.choices?.[0]?.delta?.tool_calls)).toBe(false);
      finish = frames.at(-1)?.choices?.[0]?.finish_reason;
    } else {
      const body = (await res.json()) as {
        choices: { message: { content: string; tool_calls?: unknown }; finish_reason: string }[];
      };
      text = body.choices[0]?.message.content ?? "";
      expect(body.choices[0]?.message.tool_calls).toBeUndefined();
      finish = body.choices[0]?.finish_reason;
    }
    expect(text).toContain('"status":"delivered"');
    expect(finish).toBe("stop");
    const turn = await turnOf(t.id, conv);
    expect(turn.tools_used).toEqual(["order_status"]);
    await settledUsage(t.key);
  });
});

describe("the OpenAI route when the model fails after a tool ran", () => {
  it.each([false, true])(
    "is a 502 that says not to retry (a retry would run the tool again), recorded as an error (stream: %s)",
    async (stream) => {
      const t = await toolTenant("gpt-4o-mini", [orderTool()], { tool_execution: "server" });
      const conv = uniqueId("conv");
      // The first step asks for the tool as usual; the second is refused by the provider, finally.
      await queueFaults("sk-worker-test", ["slow:1", "400"]);
      const res = await completions(
        t.key,
        { model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "where is my order 1236?" }] },
        { "x-conversation-id": conv },
      );
      expect(res.status).toBe(502);
      expect(res.headers.get("x-should-retry")).toBe("false");
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toContain("refused the request (HTTP 400)");
      expect(body.error.message).not.toContain("Injected fault");
      const turn = await turnOf(t.id, conv);
      expect(turn.outcome).toBe("error");
      expect(turn.tools_used).toEqual(["order_status"]);
      await settledUsage(t.key);
    },
  );
});

describe("the OpenAI route's tool settings", () => {
  it("passes tool calls through to the caller by default, running nothing", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool()]);
    const res = await completions(t.key, {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "please order_status 1234" }],
      tools: [{ type: "function", function: { name: "order_status", parameters: { type: "object" } } }],
    });
    const body = (await res.json()) as { choices: { finish_reason: string }[] };
    expect(body.choices[0]?.finish_reason).toBe("tool_calls");
  });

  it("refuses a caller's tools when the tenant runs its tools on the server, and bad settings", async () => {
    const t = await toolTenant("gpt-4o-mini", [orderTool()], { tool_execution: "server" });
    const res = await completions(t.key, {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "order_status", parameters: { type: "object" } } }],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("on the server");
    for (const bad of [{ tool_execution: "both" }, { max_tool_steps: 0 }, { max_tool_steps: 9 }]) {
      const patch = await admin("PATCH", `/tenants/${t.id}`, bad);
      expect(patch.status).toBe(400);
    }
  });
});

describe("whom a tool call is for", () => {
  it("names the conversation's user to the tool: the user a server named, a browser's anonymous visitor", async () => {
    const origin = "https://shop.example";
    const t = await toolTenant("gpt-4o-mini", [faulty("/ok")], { allowed_origins: [origin] });
    const started = await send("POST", "/v1/conversations", t.key, { user: "bob" });
    const conv = ((await started.json()) as { id: string }).id;
    const answer = ((await (await ask(t.key, conv, "where is my order 1234?")).json()) as Reply).message
      .content;
    // The fake model repeats the tool's answer: the echo of the signed body the tool received.
    expect(answer).toContain('"user":"user:bob"');

    const pk = (await createKey(t.id, "publishable")).key;
    const browser = { origin, "cf-connecting-ip": `203.0.113.9-${uniqueId("ip")}` };
    const visit = (await (await send("POST", "/v1/conversations", pk, {}, browser)).json()) as {
      id: string;
      visitor_token: string;
    };
    const res = await send(
      "POST",
      `/v1/conversations/${visit.id}/messages`,
      pk,
      { content: "where is my order 1234?" },
      { ...browser, "x-visitor-token": visit.visitor_token },
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as Reply).message.content).toMatch(/"user":"visitor:[^"]+"/);
  });
});
