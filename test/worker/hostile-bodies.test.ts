/**
 * Bodies a client makes up, shaped like the real ones. test/worker/hostile.test.ts throws random
 * bodies at the write routes, and nearly all of them stop at the first check (an unknown key, a
 * missing field). Here each request starts from a body the route accepts and changes one to three
 * places in it: a value replaced by a hostile one (wrong types, huge and tiny numbers, text Postgres
 * cannot store, injections, long strings, `__proto__` keys, and nesting thousands of levels deep), a
 * key deleted, an unknown key added, an element repeated. So the hostile value reaches the code
 * behind the schema: the checks every input gets, the tool-schema compiler, the stores, the model
 * call. None may answer 500, every refusal is the route's error envelope, and what the routes write
 * (messages, operator replies, tools, sources, experiments, keys, operators) grows by exactly the
 * requests they accepted: a refusal writes nothing.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { TEST_ADMIN_TOKEN } from "../local-services";
import { consoleSend, operator, SITE, visitor, widgetTenant } from "./handoff/helpers";
import { call, createKey, createTenant, query, send, sql } from "./helpers";
import { deepJson, expectHandled, INJECTIONS } from "./hostile-values";
import { toolBody } from "./tools/helpers";

type Path = (string | number)[];

/** Every path into a JSON value, the root's included. */
function pathsOf(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) for (const [i, x] of v.entries()) out.push(...pathsOf(x, [...at, i]));
  else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

/**
 * Nesting deeper than any `JSON.stringify` value a test could build comfortably: a placeholder
 * string, replaced in the serialized body by the raw JSON text of `depth` nested arrays or objects
 * around a leaf. Array levels cost 2 bytes, object levels 6: 20,000 arrays are 40 KB, inside the
 * 64 KiB body limit.
 */
const LEAVES = { one: "1", nul: '"\\u0000"', surrogate: '"\\ud800"', schema: '{"type":"object"}' };
const DEEP = /"@@deep\/(array|object)\/(\d+)\/(\w+)@@"/g;
const deep = fc
  .tuple(
    fc.constantFrom("array", "object"),
    fc.constantFrom(65, 66, 200, 2_000, 8_000, 20_000),
    fc.constantFrom(...(Object.keys(LEAVES) as (keyof typeof LEAVES)[])),
  )
  .map(([kind, n, leaf]) => `@@deep/${kind}/${kind === "object" ? Math.min(n, 8_000) : n}/${leaf}@@`);

function serialize(body: unknown): string {
  return JSON.stringify(body).replace(
    DEEP,
    (_, kind: "array" | "object", n: string, leaf: keyof typeof LEAVES) =>
      deepJson(kind, Number(n), LEAVES[leaf]),
  );
}

/** An object whose `__proto__` and `constructor` are its own keys, as JSON.parse makes them. */
const PROTO = JSON.parse(
  '{"__proto__":{"admin":true,"tenant_id":"other"},"constructor":{"prototype":{"x":1}}}',
);

const hostileValue = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    2 ** 53 + 2,
    "",
    [],
    {},
    "\u0000",
    "\ud800",
    "a\udc00b",
    "\u202e\u200b",
  ),
  fc.constantFrom(...INJECTIONS),
  fc.integer({ min: 1_000, max: 60_000 }).map((n) => "x".repeat(n)),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(PROTO),
  { arbitrary: deep, weight: 3 },
);
const hostileKey = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "tenant_id",
    "id",
    "role",
    "state",
    "\u0000",
    "\ud800",
  ),
  fc.string({ maxLength: 20 }),
);

type Mutation =
  | { op: "set"; path: Path; value: unknown }
  | { op: "delete"; path: Path }
  | { op: "add"; path: Path; key: string; value: unknown }
  | { op: "repeat"; path: Path; times: number };

const mutation = (body: unknown): fc.Arbitrary<Mutation> => {
  const path = fc.constantFrom(...pathsOf(body));
  return fc.oneof(
    { arbitrary: fc.record({ op: fc.constant("set" as const), path, value: hostileValue }), weight: 5 },
    { arbitrary: fc.record({ op: fc.constant("delete" as const), path }), weight: 1 },
    {
      arbitrary: fc.record({ op: fc.constant("add" as const), path, key: hostileKey, value: hostileValue }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        op: fc.constant("repeat" as const),
        path,
        times: fc.integer({ min: 2, max: 300 }),
      }),
      weight: 1,
    },
  );
};

/** A fresh copy of a JSON value (fast-check hands the same constant out more than once). */
const copy = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
/** Sets an own property, `__proto__` included, as JSON.parse would. */
const own = (o: object, key: string | number, value: unknown) =>
  Object.defineProperty(o, key, { value: copy(value), enumerable: true, writable: true, configurable: true });

/** The body with the mutations applied; a mutation whose place a previous one removed is skipped. */
function mutate(base: unknown, mutations: Mutation[]): unknown {
  let body: unknown = copy(base);
  for (const m of mutations) {
    if (m.path.length === 0) {
      if (m.op === "set") body = copy(m.value);
      else if (m.op === "delete") body = undefined;
      else if (m.op === "add" && body !== null && typeof body === "object") own(body, m.key, m.value);
      continue;
    }
    let parent: unknown = body;
    for (const step of m.path.slice(0, -1)) {
      parent =
        parent !== null && typeof parent === "object" ? (parent as Record<string, unknown>)[step] : undefined;
    }
    if (parent === null || typeof parent !== "object") continue;
    const last = m.path.at(-1) as string | number;
    const at = parent as Record<string | number, unknown>;
    if (!(last in at)) continue;
    if (m.op === "set") own(at, last, m.value);
    else if (m.op === "delete") {
      if (Array.isArray(at)) at.splice(Number(last), 1);
      else delete at[last];
    } else if (m.op === "add") {
      const target = at[last];
      if (target !== null && typeof target === "object" && !Array.isArray(target))
        own(target, m.key, m.value);
      else own(at, m.key, m.value);
    } else if (Array.isArray(at)) at.push(...Array.from({ length: m.times }, () => copy(at[Number(last)])));
  }
  return body;
}

interface Target {
  name: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  openai?: boolean;
  /** What the route writes, counted: each accepted request adds one, a refused one nothing. */
  written?: () => Promise<number>;
  /** That count before the first request. */
  before?: number;
}

let targets: Target[] = [];
/** Requests each target accepted (2xx), by name. */
const accepted = new Map<string, number>();

const count = async (table: string, tenantId: string) =>
  Number(
    (
      await query<{ n: string }>(
        sql`select count(*)::text as n from ${sql.raw(table)} where tenant_id = ${tenantId}`,
      )
    )[0]?.n,
  );
/** Entries of one role in a conversation's transcript, read with `headers`. */
const entries = async (path: string, headers: Record<string, string>, role: string) => {
  const res = await call(path, { headers });
  expect(res.status).toBe(200);
  return ((await res.json()) as { messages: { role: string }[] }).messages.filter((m) => m.role === role)
    .length;
};

beforeAll(async () => {
  const t = await widgetTenant({
    allowed_tools: ["lookup_order"],
    rate_limit_per_minute: 1_000_000,
    user_rate_limit_per_minute: 100_000,
  });
  const v = visitor(t.pk);
  const talking = await v.start();
  const ended = await v.start();
  const widget = {
    origin: SITE,
    "cf-connecting-ip": "203.0.113.21",
    "x-visitor-token": v.token as string,
    authorization: `Bearer ${t.pk}`,
    "content-type": "application/json",
  };
  const talk = `/v1/conversations/${talking.id}`;
  const server = { authorization: `Bearer ${t.key}`, "content-type": "application/json" };

  // The console: an owner who took a conversation over writes into it.
  const owner = await operator(t.id, "owner");
  const held = (await (await send("POST", "/v1/conversations", t.key, {})).json()) as { id: string };
  expect((await consoleSend("POST", `/operator/inbox/${held.id}/takeover`, owner.session)).status).toBe(200);

  // The admin API writes another tenant's configuration.
  const other = await createTenant({ model: "mock" });
  await createKey(other.tenant_id);
  const agent = await operator(other.tenant_id, "agent");
  const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" };

  // What the update routes change: an experiment and a knowledge source.
  const pace = {
    name: "pace",
    variants: [
      { name: "control", overrides: {} },
      { name: "brisk", overrides: { temperature: 0.3 } },
    ],
    split: { control: 0.5, brisk: 0.5 },
  };
  expect((await send("POST", "/v1/experiments", t.key, pace)).status).toBe(201);
  const returns = { type: "text", title: "Returns", content: "Returns are free within 30 days." };
  const source = await send("POST", "/v1/knowledge/sources", t.key, returns);
  expect(source.status).toBe(201);
  const { id: sourceId } = (await source.json()) as { id: string };

  const tool = { ...toolBody("lookup_order"), timeout_ms: 5_000, enabled: true };
  expect((await send("POST", "/v1/tools", t.key, tool)).status).toBe(201);

  targets = [
    {
      name: "widget start",
      method: "POST",
      path: "/v1/conversations",
      headers: widget,
      body: { channel: "web" },
    },
    {
      name: "widget message",
      method: "POST",
      path: `${talk}/messages`,
      headers: widget,
      body: { content: "where is my order?", stream: false },
      written: () => entries(talk, widget, "user"),
    },
    {
      name: "widget feedback",
      method: "POST",
      path: `${talk}/feedback`,
      headers: widget,
      body: { csat: 4, comment: "quick and kind" },
    },
    {
      name: "widget end",
      method: "POST",
      path: `/v1/conversations/${ended.id}/end`,
      headers: widget,
      body: { resolved: true },
    },
    {
      name: "OpenAI chat",
      method: "POST",
      path: "/v1/chat/completions",
      headers: { ...server, "x-conversation-id": "hostile-bodies" },
      openai: true,
      body: {
        model: "mock",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "developer", content: [{ type: "text", text: "Answer in English." }] },
          { role: "user", content: [{ type: "text", text: "Where is order 42?" }], name: "ann" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "lookup_order", arguments: '{"order_id":"42"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "shipped" },
          { role: "user", content: "thanks" },
        ],
        tools: [{ type: "function", function: tool }],
        tool_choice: "auto",
        stop: ["\n\n", "END"],
        max_tokens: 64,
        temperature: 0.2,
        stream: false,
        stream_options: { include_usage: true },
        user: "ann",
      },
    },
    {
      name: "tool create",
      method: "POST",
      path: "/v1/tools",
      headers: server,
      body: { ...tool, name: "track_parcel" },
      written: () => count("tools", t.id),
    },
    {
      name: "tool update",
      method: "PATCH",
      path: "/v1/tools/lookup_order",
      headers: server,
      body: { description: "Finds an order.", parameters: tool.parameters, timeout_ms: 4_000 },
    },
    {
      name: "knowledge source",
      method: "POST",
      path: "/v1/knowledge/sources",
      headers: server,
      body: { type: "text", title: "Returns", content: "Returns are free within 30 days." },
      written: () => count("knowledge_sources", t.id),
    },
    {
      name: "alert settings",
      method: "PUT",
      path: "/v1/alert-settings",
      headers: server,
      body: { rules: { csat: { threshold: 3.5, enabled: true } }, handoff_wait_alert_seconds: 120 },
    },
    {
      name: "privacy export",
      method: "POST",
      path: "/v1/privacy/export",
      headers: server,
      body: { visitor_id: "v-hostile" },
    },
    {
      name: "experiment create",
      method: "POST",
      path: "/v1/experiments",
      headers: server,
      body: {
        name: "tone",
        variants: [
          { name: "control", overrides: {} },
          { name: "warm", overrides: { temperature: 0.9 } },
        ],
        split: { control: 0.5, warm: 0.5 },
      },
      written: () => count("experiments", t.id),
    },
    {
      name: "admin tenant update",
      method: "PATCH",
      path: `/admin/tenants/${other.tenant_id}`,
      headers: adminHeaders,
      body: {
        blocked_topics: ["politics"],
        redact_patterns: ["\\bCUST-\\d{5}\\b", "(?:member|client) no\\.? \\w{4,8}"],
        pricing_overrides: { mock: { input: 1, output: 2 } },
        allowed_origins: ["https://other.example"],
      },
    },
    {
      name: "experiment update",
      method: "PATCH",
      path: "/v1/experiments/pace",
      headers: server,
      body: { description: "Shorter answers", split: { control: 0.4, brisk: 0.6 }, active: true },
    },
    {
      name: "knowledge source replace",
      method: "PUT",
      path: `/v1/knowledge/sources/${sourceId}`,
      headers: server,
      body: { ...returns, content: "Returns are free within 60 days." },
    },
    {
      name: "knowledge settings",
      method: "PATCH",
      path: "/v1/knowledge/settings",
      headers: server,
      body: {
        enabled: true,
        min_score: 0.2,
        max_context_tokens: 1_200,
        unknown_answer_message: "I do not know that yet.",
        embedding: { provider: "none" },
      },
    },
    {
      name: "admin tenant create",
      method: "POST",
      path: "/admin/tenants",
      headers: adminHeaders,
      body: {
        tenant_id: `${other.tenant_id}-2`,
        name: "Second shop",
        system_prompt: "You help.",
        model: "mock",
        allowed_origins: ["https://second.example"],
        blocked_topics: ["politics"],
      },
    },
    {
      name: "admin key create",
      method: "POST",
      path: `/admin/tenants/${other.tenant_id}/keys`,
      headers: adminHeaders,
      body: { kind: "publishable", name: "site" },
      written: () => count("api_keys", other.tenant_id),
    },
    {
      name: "admin operator invite",
      method: "POST",
      path: `/admin/tenants/${other.tenant_id}/operators`,
      headers: adminHeaders,
      body: { email: "new.agent@example.com", name: "New Agent", role: "agent" },
      written: () => count("operators", other.tenant_id),
    },
    {
      name: "admin operator update",
      method: "PATCH",
      path: `/admin/tenants/${other.tenant_id}/operators/${agent.id}`,
      headers: adminHeaders,
      body: { name: "Renamed Agent", role: "agent" },
    },
    {
      name: "console sign-in link",
      method: "POST",
      path: "/operator/magic-link",
      headers: { "content-type": "application/json", "cf-connecting-ip": "203.0.113.22" },
      body: { tenant_id: other.tenant_id, email: "new.agent@example.com" },
    },
    {
      name: "console message",
      method: "POST",
      path: `/operator/inbox/${held.id}/messages`,
      headers: {
        cookie: owner.session.cookie,
        "x-csrf-token": owner.session.csrf,
        "content-type": "application/json",
      },
      body: { content: "I am looking into it." },
      written: () => entries(`/v1/conversations/${held.id}`, server, "operator"),
    },
  ];
  for (const target of targets) target.before = await target.written?.();
});

async function request(t: Target, body: unknown): Promise<Response> {
  const res = await call(t.path, {
    method: t.method,
    headers: t.headers,
    body: body === undefined ? "" : serialize(body),
  });
  if (res.ok) accepted.set(t.name, (accepted.get(t.name) ?? 0) + 1);
  return res;
}

describe("bodies shaped like the real ones, changed in one to three places", () => {
  it("start from bodies every route accepts", async () => {
    for (const t of targets) {
      const res = await request(t, t.body);
      expect(res.status, `${t.name}: ${await res.clone().text()}`).toBeLessThan(300);
      await res.body?.cancel();
    }
  });

  it("never answer 500, every refusal is the envelope, and only what was accepted is written", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...targets)
          .chain((t) => fc.tuple(fc.constant(t), fc.array(mutation(t.body), { minLength: 1, maxLength: 3 }))),
        async ([t, mutations]) => {
          const body = mutate(t.body, mutations);
          const res = await request(t, body);
          await expectHandled(res, `${t.name}: ${JSON.stringify(mutations).slice(0, 400)}`, t.openai);
        },
      ),
      { numRuns: 2_500 },
    );
    for (const t of targets) {
      if (!t.written) continue;
      expect(await t.written(), t.name).toBe((t.before ?? 0) + (accepted.get(t.name) ?? 0));
    }
    // About 14 s in CI beside the other projects: room for a slower machine.
  }, 120_000);
});
