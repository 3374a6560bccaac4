/**
 * The OpenAI route as OpenAI's SDKs read it when something goes wrong, or when a request asks for
 * more than the route gives: a model that fails before it answers is an HTTP error (the SDKs retry
 * by status), a request the provider itself refuses is the caller's 400, a retry that cannot help
 * says `x-should-retry: false`, and fields the route cannot honour are refused rather than ignored.
 */
import { describe, expect, it } from "vitest";
import { eventually } from "../eventually";
import { query, send, sql, uniqueId } from "../helpers";
import { chatTenant, completions, sseFrames } from "./helpers";

type OpenAiErr = { error: { message: string; type: string; param: string | null; code: string | null } };

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content }],
  ...extra,
});

describe("a model that fails", () => {
  it("before its first token: a streamed request is a 502 before any stream, which the SDKs retry", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const res = await completions(key, ask("hello [[fault:500]]", { stream: true }));
    expect(res.status).toBe(502);
    expect(res.headers.get("content-type")).toContain("application/json");
    const body = (await res.json()) as OpenAiErr;
    expect(body.error).toMatchObject({ type: "server_error" });
    // The provider's 500 was worth retrying (the worker did): so may the caller.
    expect(res.headers.get("x-should-retry")).toBeNull();
    // Nothing stays reserved: the failed turn was settled (its settlement leaves the isolate in a
    // batch, so it is looked for until it lands).
    const open = async () =>
      ((await (await send("GET", "/v1/usage", key)).json()) as { window: { open_reservations: number } })
        .window.open_reservations;
    await expect.poll(open, { timeout: 5_000 }).toBe(0);
  });

  it("because the provider refused the request itself: 502 that says not to retry, without the provider's words", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    for (const stream of [false, true]) {
      const res = await completions(key, ask("hello [[fault:400]]", { stream }));
      expect(res.status, `stream ${stream}`).toBe(502);
      expect(res.headers.get("x-should-retry")).toBe("false");
      const body = (await res.json()) as OpenAiErr;
      expect(body.error.type).toBe("server_error");
      expect(body.error.message).toContain("refused the request (HTTP 400)");
      // A provider's 400 may be about the platform's account with it: not the caller's to read.
      expect(body.error.message).not.toContain("Injected fault");
    }
  });

  it("because the tenant's provider setup is wrong (upstream 404): 502 that says not to retry", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const res = await completions(key, ask("hello [[fault:404]]"));
    expect(res.status).toBe(502);
    expect(res.headers.get("x-should-retry")).toBe("false");
  });

  it("part-way through a stream: the error frame ends it, with no finish chunk and no [DONE]", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini" });
    const res = await completions(
      key,
      ask("tell me a long story [[fault:cut]]", { stream: true, stream_options: { include_usage: true } }),
    );
    expect(res.status).toBe(200);
    const frames = (await sseFrames(res)).map((f) => f.data);
    const at = frames.findIndex((d) => d.includes('"error"'));
    expect(at).toBeGreaterThan(0);
    expect(frames.slice(at + 1)).toEqual([]);
    expect(frames.slice(0, at).some((d) => d.includes('"finish_reason":"stop"'))).toBe(false);
  });
});

describe("what the SDKs are told about retrying", () => {
  it("a spent budget's 429 says x-should-retry: false; a rate limit's does not", async () => {
    const spent = await chatTenant({ monthly_token_budget: 10 });
    const refused = await completions(spent.key, ask("hi", { model: "mock" }));
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as OpenAiErr).error.code).toBe("insufficient_quota");
    expect(refused.headers.get("x-should-retry")).toBe("false");
    const busy = await chatTenant({ user_rate_limit_per_minute: 1 });
    expect((await completions(busy.key, ask("hi", { model: "mock" }))).status).toBe(200);
    const limited = await completions(busy.key, ask("hi", { model: "mock" }));
    expect(limited.status).toBe(429);
    expect(limited.headers.get("x-should-retry")).toBeNull();
  });
});

describe("the request's fields", () => {
  it("safety_identifier names the end user as user does", async () => {
    const { key } = await chatTenant({ user_rate_limit_per_minute: 1 });
    const as = (who: string) => completions(key, ask("hi", { model: "mock", safety_identifier: who }));
    expect((await as("alice")).status).toBe(200);
    const again = await as("alice");
    expect(again.status).toBe(429);
    expect(((await again.json()) as OpenAiErr).error.param).toBe("user");
    expect((await as("bob")).status).toBe(200);
  });

  it("refuses response_format other than text, and logprobs, naming the field", async () => {
    const { key } = await chatTenant();
    const cases: [Record<string, unknown>, string][] = [
      [{ response_format: { type: "json_object" } }, "response_format.type"],
      [
        { response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } },
        "response_format.type",
      ],
      [{ logprobs: true }, "logprobs"],
    ];
    for (const [extra, param] of cases) {
      const res = await completions(key, ask("hi", { model: "mock", ...extra }));
      expect(res.status, param).toBe(400);
      expect(((await res.json()) as OpenAiErr).error).toMatchObject({ type: "invalid_request_error", param });
    }
    for (const extra of [
      { response_format: { type: "text" } },
      { logprobs: false },
      { response_format: null },
    ])
      expect((await completions(key, ask("hi", { model: "mock", ...extra }))).status).toBe(200);
  });

  it("names messages as the param when no message is the user's", async () => {
    const { key } = await chatTenant();
    const res = await completions(key, { model: "mock", messages: [{ role: "system", content: "x" }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as OpenAiErr).error.param).toBe("messages");
  });

  it("a caller's X-Request-Id is echoed, but names neither the completion nor its conversation", async () => {
    const { id: tenantId, key } = await chatTenant();
    const rid = uniqueId("mesh-request");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await completions(key, ask("hi", { model: "mock" }), { "x-request-id": rid });
      expect(res.status, `call ${i + 1}`).toBe(200);
      expect(res.headers.get("x-request-id")).toBe(rid);
      ids.push(((await res.json()) as { id: string }).id);
    }
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).not.toContain(rid);
    // Each call its own request-scoped conversation, so a conversation's cost cap does not add up
    // the calls of everything a proxy sent under one request id.
    const conversations = await eventually(async () => {
      const rows = await query<{ conversation_id: string }>(
        sql`select distinct conversation_id from turns where tenant_id = ${tenantId}`,
      );
      expect(rows).toHaveLength(3);
      return rows;
    });
    for (const r of conversations) expect(r.conversation_id).not.toContain(rid);
  });
});

describe("tool calls", () => {
  const tools = [
    { type: "function", function: { name: "lookup_order", parameters: { type: "object", properties: {} } } },
  ];

  it("carry an id and type even when the upstream sent none, and the id can be answered", async () => {
    const { key } = await chatTenant({ model: "gpt-4o-mini", allowed_tools: ["lookup_order"] });
    const question = "please lookup_order 42 [[noids]]";
    const res = await completions(key, ask(question, { tools }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { message: { tool_calls: { id: string; type: string; function: { name: string } }[] } }[];
    };
    const call = body.choices[0]?.message.tool_calls[0];
    expect(call).toMatchObject({ type: "function", function: { name: "lookup_order" } });
    expect(call?.id).toMatch(/^call_[0-9a-f]{24}$/);
    // The caller answers the call by its id, as the SDKs' tool loops do.
    const answered = await completions(key, {
      model: "gpt-4o-mini",
      tools,
      messages: [
        { role: "user", content: question },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ ...call, function: { name: "lookup_order", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: call?.id, content: '{"status":"shipped"}' },
      ],
    });
    expect(answered.status).toBe(200);

    const streamed = await completions(key, ask(question, { tools, stream: true }));
    const deltas = (await sseFrames(streamed))
      .filter((f) => f.data !== "[DONE]")
      .map((f) => JSON.parse(f.data) as { choices: { delta: { tool_calls?: Record<string, unknown>[] } }[] })
      .flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(deltas[0]).toMatchObject({
      index: 0,
      type: "function",
      id: expect.stringMatching(/^call_[0-9a-f]{24}$/),
    });
    expect(deltas.slice(1).every((d) => d.id === undefined)).toBe(true);
  });
});
