import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { TEST_ADMIN_TOKEN } from "../local-services";
import { call, createKey, createTenant, query, send, sql } from "./helpers";
import { INJECTIONS } from "./hostile-values";

/** JSON-ish values with hostile strings mixed in, and an unknown key so strict schemas refuse them. */
const hostileValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(...INJECTIONS),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.array(fc.constantFrom(...INJECTIONS), { maxLength: 5 }),
  fc.dictionary(
    fc.constantFrom("__proto__", "constructor", "model", "messages", "content", "tenant_id"),
    fc.jsonValue(),
  ),
);
const hostileObject = fc
  .dictionary(fc.string({ maxLength: 20 }), hostileValue, { maxKeys: 6 })
  .map((o) => ({ ...o, __fuzz: true }));
const hostileBody = fc.oneof(
  hostileObject.map((o) => JSON.stringify(o)),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.constantFrom("", "null", "[]", "{", "{}}", '{"a":', "\u0000", "true", "1e999", '"str"'),
  fc.integer({ min: 60_000, max: 120_000 }).map((n) => JSON.stringify({ messages: "x".repeat(n) })),
);
const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "APPLICATION/JSON",
);

const counts = async () =>
  (
    await query<{ t: string; k: string; a: string; n: string }>(
      sql`select (select count(*) from tenants)::text as t, (select count(*) from api_keys)::text as k,
               (select count(*) from audit_log)::text as a, (select count(*) from notifications)::text as n`,
    )
  )[0];

let key = "";
let convId = "";
let tenantId = "";

beforeAll(async () => {
  // gpt-4o-mini too: the key-leak check needs the fake OpenAI behind the OpenAI route.
  const t = await createTenant({ model: "mock", allowed_models: ["gpt-4o-mini"] });
  tenantId = t.tenant_id;
  key = (await createKey(tenantId)).key;
  convId = ((await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string }).id;
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("hostile input never answers 500 and never writes", () => {
  const routes = () => [
    { method: "POST", path: "/admin/tenants", token: TEST_ADMIN_TOKEN },
    { method: "PATCH", path: `/admin/tenants/${tenantId}`, token: TEST_ADMIN_TOKEN },
    { method: "POST", path: `/admin/tenants/${tenantId}/keys`, token: TEST_ADMIN_TOKEN },
    { method: "POST", path: "/v1/chat/completions", token: key },
    { method: "POST", path: "/v1/conversations", token: key },
    { method: "POST", path: `/v1/conversations/${convId}/messages`, token: key },
    { method: "POST", path: `/v1/conversations/${convId}/end`, token: key },
    { method: "POST", path: `/v1/conversations/${convId}/feedback`, token: key },
    { method: "PUT", path: `/admin/tenants/${tenantId}/alert-settings`, token: TEST_ADMIN_TOKEN },
    { method: "PUT", path: "/v1/alert-settings", token: key },
  ];

  it("on every write route, with random bodies and content types", async () => {
    const before = await counts();
    const turnsBefore = await query(sql`select 1 from turns where tenant_id = ${tenantId}`);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes()), hostileBody, contentType, async (r, body, type) => {
        const headers: Record<string, string> = { authorization: `Bearer ${r.token}` };
        if (type) headers["content-type"] = type;
        const res = await call(r.path, { method: r.method, headers, body });
        const text = await res.text();
        expect(
          res.status,
          `${r.method} ${r.path} ${type} ${body.slice(0, 80)} -> ${text.slice(0, 200)}`,
        ).toBeLessThan(500);
        // Bodies with an unknown key, malformed JSON or the wrong type are refused outright.
        if (r.path !== "/v1/conversations") expect(res.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 150 },
    );
    expect(await counts()).toEqual(before);
    expect(await query(sql`select 1 from turns where tenant_id = ${tenantId}`)).toEqual(turnsBefore);
    const t = (await (await send("GET", `/v1/conversations/${convId}`, key)).json()) as {
      turns: number;
      state: string;
    };
    expect(t).toMatchObject({ turns: 0, state: "open" });
  });

  it("on every route, with hostile paths, query strings and headers", async () => {
    const before = await counts();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "/admin/tenants/",
          "/v1/conversations/",
          "/admin/tenants/x/keys/",
          "/v1/usage?days=",
          "/admin/tenants?cursor=",
          "/admin/tenants?limit=",
        ),
        fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 80 })),
        fc.constantFrom("GET", "POST", "PATCH", "DELETE", "PUT"),
        fc.oneof(
          fc.constant(`Bearer ${TEST_ADMIN_TOKEN}`),
          fc.constant(`Bearer ${key}`),
          fc.string({ maxLength: 100 }),
          fc.constantFrom(...INJECTIONS),
        ),
        async (prefix, tail, method, auth) => {
          let path = prefix + encodeURIComponent(tail);
          if (path.length > 2_000) path = path.slice(0, 2_000);
          const headers: Record<string, string> = {};
          // Only what a client can put on the wire: printable ASCII header values.
          if (/^[\x20-\x7e]*$/.test(auth)) headers.authorization = auth;
          const res = await call(path, { method, headers });
          await res.arrayBuffer();
          expect(res.status, `${method} ${path}`).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
    expect(await counts()).toEqual(before);
  });
});

describe("secrets stay secret", () => {
  it("never appear in logs or error bodies", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logged.push(args.map(String).join(" "));
      });
    }
    const secrets = [TEST_ADMIN_TOKEN, key, "sk-worker-test", "sk-ant-worker-test", "test-redis-token"];
    const bodies: string[] = [];
    const near = `${TEST_ADMIN_TOKEN.slice(0, -1)}X`;
    const forged = `${key.slice(0, 20)}${"Z".repeat(key.length - 20)}`;
    const requests: [string, RequestInit][] = [
      ["/admin/tenants", { headers: { authorization: `Bearer ${near}` } }],
      ["/v1/config", { headers: { authorization: `Bearer ${forged}` } }],
      [
        "/v1/chat/completions",
        {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: "{oops",
        },
      ],
      // The upstream answers 401 quoting the key it was given; nothing of it may come back or be logged.
      [
        "/v1/chat/completions",
        {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "hi [[fault:401]]" }],
          }),
        },
      ],
      ["/readyz", {}],
    ];
    for (const [path, init] of requests) bodies.push(await (await call(path, init)).text());
    const haystack = [...logged, ...bodies].join("\n");
    for (const s of secrets) expect(haystack.includes(s), `leaked ${s.slice(0, 6)}...`).toBe(false);
    expect(bodies[3]).toContain('"type":"server_error"');
  });
});
