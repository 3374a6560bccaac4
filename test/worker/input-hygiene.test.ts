/**
 * What a request may carry and what the answers and logs give away (issue #14): text Postgres
 * cannot store (NUL, lone surrogates) is refused with 400 naming the field and changes nothing;
 * an unexpected error is logged by class, SQLSTATE and request id, never with the request's
 * words; keys and transcripts are not cacheable; /docs loads nothing unpinned and has a CSP.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { DrizzleQueryError } from "drizzle-orm";
import { requestId } from "hono/request-id";
import { afterEach, describe, expect, it, vi } from "vitest";
import { newRouter } from "../../src/app";
import { jsonBody } from "../../src/openapi";
import { chatTenant } from "./chat/helpers";
import { admin, call, createTenant, query, send, sql } from "./helpers";
import { deepJson } from "./hostile-values";

const NUL = "before\u0000after";
const LONE = "before\ud800after";
const LONE_LOW = "\udfffafter";

/** Expects a 400 VALIDATION_FAILED whose details name `path`. */
async function refused(res: Response, path: string) {
  const text = await res.text();
  expect(res.status, text).toBe(400);
  const e = JSON.parse(text) as { error: { code: string; message: string; details: { path: string }[] } };
  expect(e.error.code).toBe("VALIDATION_FAILED");
  expect(e.error.details.map((d) => d.path)).toContain(path);
  expect(e.error.message).toContain(path);
}

describe("text Postgres cannot store", () => {
  it("tenant create: refused per field, and no tenant is created", async () => {
    for (const [field, value] of [
      ["system_prompt", NUL],
      ["system_prompt", LONE],
      ["name", LONE_LOW],
      ["custom_greeting", NUL],
      ["policy_message", LONE],
    ] as const) {
      const id = `nul-${crypto.randomUUID().slice(0, 8)}`;
      const body = { tenant_id: id, name: "Shop", system_prompt: "You help.", [field]: value };
      await refused(await admin("POST", "/tenants", body), field);
      expect(await query(sql`select id from tenants where id = ${id}`)).toEqual([]);
    }
    const nested = await admin("POST", "/tenants", {
      tenant_id: `nul-${crypto.randomUUID().slice(0, 8)}`,
      name: "Shop",
      system_prompt: "You help.",
      blocked_topics: ["fine", NUL],
    });
    await refused(nested, "blocked_topics.1");
  });

  it("tenant patch: refused, and the tenant is unchanged", async () => {
    const t = await createTenant({ system_prompt: "original prompt" });
    await refused(await admin("PATCH", `/tenants/${t.tenant_id}`, { system_prompt: NUL }), "system_prompt");
    await refused(await admin("PATCH", `/tenants/${t.tenant_id}`, { name: LONE }), "name");
    const [row] = await query<{ name: string; system_prompt: string }>(
      sql`select name, system_prompt from tenants where id = ${t.tenant_id}`,
    );
    expect(row).toEqual({ name: t.name, system_prompt: "original prompt" });
  });

  it("experiments: refused on create and patch, and nothing is stored", async () => {
    const t = (await createTenant()).tenant_id;
    const def = (prompt: string) => ({
      name: "exp-nul",
      description: "d",
      variants: [
        { name: "control", overrides: {} },
        { name: "B", overrides: { system_prompt: prompt } },
      ],
      split: { control: 0.5, B: 0.5 },
    });
    await refused(
      await admin("POST", `/tenants/${t}/experiments`, def(NUL)),
      "variants.1.overrides.system_prompt",
    );
    await refused(
      await admin("POST", `/tenants/${t}/experiments`, { ...def("ok"), description: LONE }),
      "description",
    );
    expect(await query(sql`select id from experiments where tenant_id = ${t}`)).toEqual([]);
    expect((await admin("POST", `/tenants/${t}/experiments`, def("fine"))).status).toBe(201);
    await refused(
      await admin("PATCH", `/tenants/${t}/experiments/exp-nul`, { description: NUL }),
      "description",
    );
    const [row] = await query<{ description: string }>(
      sql`select description from experiments where tenant_id = ${t}`,
    );
    expect(row?.description).toBe("d");
  });

  it("alert settings: refused, and nothing is stored", async () => {
    const t = (await createTenant()).tenant_id;
    await refused(
      await admin("PUT", `/tenants/${t}/alert-settings`, { webhook_url: `https://hooks.example.com/${NUL}` }),
      "webhook_url",
    );
    expect(await query(sql`select * from alert_settings where tenant_id = ${t}`)).toEqual([]);
  });

  it("conversation messages and feedback: refused, and the conversation is unchanged", async () => {
    const { key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    await refused(
      await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content: NUL }),
      "content",
    );
    await refused(
      await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content: LONE }),
      "content",
    );
    await send("POST", `/v1/conversations/${conv.id}/end`, key, { resolved: true });
    await refused(
      await send("POST", `/v1/conversations/${conv.id}/feedback`, key, { csat: 5, comment: NUL }),
      "comment",
    );
    const t = (await (await send("GET", `/v1/conversations/${conv.id}`, key)).json()) as {
      turns: number;
      csat: number | null;
      messages: unknown[];
    };
    expect(t).toMatchObject({ turns: 0, csat: null, messages: [] });
  });

  it("the OpenAI-compatible route refuses it in OpenAI's error shape", async () => {
    const { key } = await chatTenant();
    const res = await send("POST", "/v1/chat/completions", key, {
      model: "mock",
      messages: [{ role: "user", content: NUL }],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "messages.0.content",
    );
  });
});

/** `depth` nested arrays around `leaf`, as raw JSON text. */
const nested = (depth: number, leaf: string) => deepJson("array", depth, leaf);

describe("nesting deeper than the inputs bound (MAX_INPUT_DEPTH)", () => {
  const params = (annotation: string) =>
    `{"name":"deep","description":"d","target":{"kind":"https","url":"https://tools.example/x"},` +
    `"parameters":{"type":"object","x-note":${annotation}}}`;

  /** A 400 VALIDATION_FAILED naming the place under parameters.x-note where the bound was passed. */
  async function tooDeep(res: Response) {
    const text = await res.text();
    expect(res.status, text).toBe(400);
    const { error } = JSON.parse(text) as {
      error: { code: string; details: { path: string; message: string }[] };
    };
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.details).toEqual([
      { path: expect.stringMatching(/^parameters\.x-note(\.0)+$/), message: "nested deeper than 64 levels" },
    ]);
  }

  it("a tool's schema: text Postgres cannot store, below the bound, is refused and nothing is stored", async () => {
    const { id, key } = await chatTenant();
    // Below the old walk's reach (64 levels), a NUL went unchecked into Postgres's jsonb: a 500.
    const res = await send("POST", "/v1/tools", key, params(nested(70, '"\\u0000"')));
    await tooDeep(res);
    expect(await query(sql`select name from tools where tenant_id = ${id}`)).toEqual([]);
    // The bound itself: 64 levels (the body, parameters and 62 arrays) are taken, 65 are not.
    await tooDeep(await send("POST", "/v1/tools", key, params(nested(63, '"fine"'))));
    const ok = await send("POST", "/v1/tools", key, params(nested(62, '"fine"')));
    expect(ok.status, await ok.clone().text()).toBe(201);
  });

  it("the OpenAI-compatible route refuses 20,000 levels in OpenAI's error shape", async () => {
    const { key } = await chatTenant();
    const res = await send(
      "POST",
      "/v1/chat/completions",
      key,
      `{"model":"mock","messages":[{"role":"user","content":"hi"}],` +
        `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","x":${nested(20_000, "1")}}}}]}`,
    );
    const text = await res.text();
    expect(res.status, text).toBe(400);
    const e = JSON.parse(text) as { error: { message: string; type: string } };
    expect(e.error.type).toBe("invalid_request_error");
    expect(e.error.message).toContain("nested deeper than 64 levels");
    expect(e.error.message.length).toBeLessThan(4_000);
  });

  it("a refusal names at most 20 problems, however many the input has", async () => {
    const { key } = await chatTenant();
    const many = Array.from({ length: 300 }, () => nested(70, "1")).join(",");
    const res = await send("POST", "/v1/tools", key, params(`[${many}]`));
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { details: unknown[] } };
    expect(error.details).toHaveLength(20);
  });

  it("so does a schema's refusal: hundreds of wrong elements are answered in a few KiB", async () => {
    const { key } = await chatTenant();
    // As many as the schemas take (1,000 messages, 500 blocked topics), each of the wrong type.
    const wrong = (n: number) => `[${Array.from({ length: n }, () => "1").join(",")}]`;
    const res = await send(
      "POST",
      "/v1/chat/completions",
      key,
      `{"model":"mock","messages":${wrong(1_000)}}`,
    );
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(text.length).toBeLessThan(4_096);
    const { error } = JSON.parse(text) as { error: { message: string; type: string } };
    expect(error.type).toBe("invalid_request_error");
    expect(error.message).toMatch(/; and \d+ more$/);
    const tenant = await admin("POST", "/tenants", {
      tenant_id: `many-${crypto.randomUUID().slice(0, 8)}`,
      name: "Shop",
      system_prompt: "You help.",
      blocked_topics: JSON.parse(wrong(500)),
    });
    const body = await tenant.text();
    expect(tenant.status).toBe(400);
    expect(body.length).toBeLessThan(4_096);
    expect((JSON.parse(body) as { error: { details: unknown[] } }).error.details).toHaveLength(20);
  });
});

describe("error logs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a failed query is logged by class, SQLSTATE and request id, never with its parameters", async () => {
    const secretPrompt = "tenant-secret-system-prompt-4471";
    const route = createRoute({
      method: "post",
      path: "/boom",
      request: { body: jsonBody(z.object({ prompt: z.string() })) },
      responses: { 500: { description: "boom" } },
    });
    const app = newRouter();
    app.use(requestId({ headerName: "X-Request-Id" }));
    app.openapi(route, (c) => {
      const cause = Object.assign(new Error(`invalid input: ${c.req.valid("json").prompt}`), {
        code: "22P05",
      });
      throw new DrizzleQueryError("insert into tenants (system_prompt) values ($1)", [secretPrompt], cause);
    });
    const logs: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
      logs.push(args.map(String).join(" "));
    });
    const res = await app.request("/boom", {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-log-test" },
      body: JSON.stringify({ prompt: secretPrompt }),
    });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain(secretPrompt);
    expect(logs).toHaveLength(1);
    expect(logs[0]).not.toContain(secretPrompt);
    expect(logs[0]).not.toContain("insert into");
    expect(JSON.parse(logs[0] ?? "{}")).toMatchObject({
      msg: "unhandled error",
      requestId: "req-log-test",
      error: "DrizzleQueryError",
      code: "22P05",
    });
  });

  it("a refused request logs nothing of its content", async () => {
    const logs: string[] = [];
    for (const level of ["error", "warn", "log"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logs.push(args.map(String).join(" "));
      });
    }
    const res = await admin("POST", "/tenants", {
      tenant_id: `nul-${crypto.randomUUID().slice(0, 8)}`,
      name: "Shop",
      system_prompt: "leaky-prompt-9931\u0000",
    });
    expect(res.status).toBe(400);
    expect(logs.join("\n")).not.toContain("leaky-prompt-9931");
  });
});

describe("answers that must not be cached", () => {
  it("a created key is no-store", async () => {
    const t = (await createTenant()).tenant_id;
    const res = await admin("POST", `/tenants/${t}/keys`, { kind: "secret", name: "k" });
    expect(res.status).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("a transcript is no-store", async () => {
    const { key } = await chatTenant();
    const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const res = await send("GET", `/v1/conversations/${conv.id}`, key);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
  });
});

describe("/docs", () => {
  it("loads no third-party script or stylesheet without a pinned version and integrity, under a CSP", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*'unsafe-inline'/);
    expect(csp).not.toMatch(/script-src[^;]*https:\/\/cdn\.jsdelivr\.net(\s|;|$)/); // not the whole CDN
    const tags = [...html.matchAll(/<(script|link)\b[^>]*>/g)].map((m) => m[0]);
    const external = tags.filter((t) => /\s(src|href)="https?:/.test(t));
    expect(external.length).toBeGreaterThanOrEqual(2);
    for (const tag of external) {
      expect(tag, tag).toMatch(/integrity="sha384-[A-Za-z0-9+/=]{64}"/);
      expect(tag, tag).toMatch(/crossorigin="anonymous"/);
      expect(tag, tag).toMatch(/@\d+\.\d+\.\d+\//); // a pinned version
    }
    // The one inline script runs by the nonce the policy names.
    const nonce = /<script nonce="([^"]+)">/.exec(html)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain(`'nonce-${nonce}'`);
    expect(html).toContain("/openapi.json");
    // A new nonce each time.
    const again = await call("/docs");
    expect(again.headers.get("content-security-policy")).not.toBe(csp);
  });
});
