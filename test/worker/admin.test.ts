import { describe, expect, it } from "vitest";
import { AUTH_FAILURES_PER_MINUTE } from "../../src/auth/throttle";
import { TEST_ADMIN_TOKEN } from "../local-services";
import { admin, call, createKey, createTenant, envelope, query, send, sql, uniqueId } from "./helpers";

const count = async (table: "tenants" | "audit_log" | "api_keys") =>
  Number((await query<{ n: string }>(sql`select count(*)::text as n from ${sql.identifier(table)}`))[0]?.n);

const fullConfig = {
  name: "Acme Support",
  system_prompt: "You are Acme's helpful support agent.",
  model: "claude-haiku",
  max_tokens_per_response: 800,
  monthly_token_budget: 2_000_000,
  rate_limit_per_minute: 120,
  user_rate_limit_per_minute: 20,
  daily_cost_budget_usd: 25,
  conversation_cost_cap_usd: 0.25,
  fallback_model: "gpt-4o-mini",
  allowed_models: ["gpt-4o", "@cf/meta/llama-3.1-8b-instruct"],
  timezone: "Europe/Berlin",
  pricing_overrides: { "claude-haiku": { input: 0.2, output: 1 } },
  allowed_tools: ["lookup_order", "create_ticket"],
  blocked_topics: ["medical advice", "competitor pricing"],
  escalation_email: "help@acme.example",
  custom_greeting: "Hi! Acme here.",
  allowed_origins: ["https://acme.example", "http://localhost:3000"],
};

describe("admin: tenants", () => {
  it("creates, reads, lists, updates and deactivates a tenant with its whole configuration", async () => {
    const id = uniqueId("acme");
    const created = await admin("POST", "/tenants", { tenant_id: id, ...fullConfig });
    expect(created.status).toBe(201);
    const body = await created.json();
    expect(body).toMatchObject({ tenant_id: id, ...fullConfig, active: true, config_version: 1 });

    const read = await admin("GET", `/tenants/${id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual(body);

    const patched = await admin("PATCH", `/tenants/${id}`, {
      custom_greeting: "Moin!",
      rate_limit_per_minute: 90,
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({
      custom_greeting: "Moin!",
      rate_limit_per_minute: 90,
      config_version: 2,
      model: "claude-haiku",
    });

    const gone = await admin("DELETE", `/tenants/${id}`);
    expect(gone.status).toBe(200);
    expect(await gone.json()).toMatchObject({ active: false, config_version: 3 });

    const audit = await admin("GET", `/tenants/${id}/audit`);
    const entries = (
      (await audit.json()) as { entries: { action: string; actor: string; request_id: string }[] }
    ).entries;
    expect(entries.map((e) => e.action)).toEqual(["tenant.deactivate", "tenant.update", "tenant.create"]);
    expect(entries.every((e) => e.actor === "admin" && e.request_id.length > 0)).toBe(true);
  });

  it("applies the reference defaults to a minimal tenant", async () => {
    const t = await createTenant();
    expect(t).toMatchObject({
      model: "gpt-4o-mini",
      max_tokens_per_response: 500,
      monthly_token_budget: 1_000_000,
      rate_limit_per_minute: 60,
      user_rate_limit_per_minute: 30,
      conversation_cost_cap_usd: 0.5,
      visitor_monthly_token_share: 0.05,
      address_messages_per_minute: 30,
      address_conversations_per_hour: 20,
      conversations_per_minute: null,
      allowed_tools: [],
      allowed_models: [],
      blocked_topics: [],
      escalation_email: "",
      custom_greeting: "Hello! How can I help you today?",
      timezone: "UTC",
    });
  });

  it("sets the visitor token share and per-address limits on create and patch", async () => {
    const t = await createTenant({
      visitor_monthly_token_share: 0.1,
      address_messages_per_minute: 12,
      address_conversations_per_hour: 3,
    });
    expect(t).toMatchObject({
      visitor_monthly_token_share: 0.1,
      address_messages_per_minute: 12,
      address_conversations_per_hour: 3,
    });
    const res = await admin("PATCH", `/tenants/${t.tenant_id}`, {
      visitor_monthly_token_share: 1,
      address_conversations_per_hour: 100_000,
      conversations_per_minute: 500,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      visitor_monthly_token_share: 1,
      address_messages_per_minute: 12,
      address_conversations_per_hour: 100_000,
      conversations_per_minute: 500,
      config_version: 2,
    });
    const back = await admin("PATCH", `/tenants/${t.tenant_id}`, { conversations_per_minute: null });
    expect(await back.json()).toMatchObject({ conversations_per_minute: null, config_version: 3 });
  });

  it("pages through tenants in id order and hides inactive ones unless asked", async () => {
    const stem = uniqueId("page");
    for (const n of ["a", "b", "c"]) await createTenant({ tenant_id: `${stem}-${n}` });
    await admin("DELETE", `/tenants/${stem}-b`);
    const seen: string[] = [];
    let cursor: string | null = `${stem}-`;
    while (cursor !== null) {
      const res = await admin("GET", `/tenants?limit=1&cursor=${cursor}`);
      const page = (await res.json()) as { tenants: { tenant_id: string }[]; next_cursor: string | null };
      seen.push(...page.tenants.map((t) => t.tenant_id).filter((t) => t.startsWith(stem)));
      cursor = page.tenants.some((t) => t.tenant_id.startsWith(stem)) ? page.next_cursor : null;
    }
    expect(seen).toEqual([`${stem}-a`, `${stem}-c`]);
    const all = await admin("GET", `/tenants?limit=200&cursor=${stem}-&include_inactive=true`);
    const ids = ((await all.json()) as { tenants: { tenant_id: string }[] }).tenants.map((t) => t.tenant_id);
    expect(ids.filter((i) => i.startsWith(stem))).toEqual([`${stem}-a`, `${stem}-b`, `${stem}-c`]);
  });

  it("refuses a duplicate tenant id with 409 and writes nothing", async () => {
    const t = await createTenant();
    const before = await count("audit_log");
    const res = await admin("POST", "/tenants", {
      tenant_id: t.tenant_id,
      name: "again",
      system_prompt: "x",
    });
    expect(res.status).toBe(409);
    expect((await envelope(res)).code).toBe("CONFLICT");
    expect(await count("audit_log")).toBe(before);
  });

  it("answers 404 for unknown tenants on every route", async () => {
    const ghost = uniqueId("ghost");
    for (const [method, path, body] of [
      ["GET", `/tenants/${ghost}`],
      ["PATCH", `/tenants/${ghost}`, { name: "x" }],
      ["DELETE", `/tenants/${ghost}`],
      ["POST", `/tenants/${ghost}/keys`, { kind: "secret" }],
      ["GET", `/tenants/${ghost}/keys`],
      ["GET", `/tenants/${ghost}/audit`],
      ["DELETE", `/tenants/${ghost}/keys/key_AAAAAAAAAAAAAAAA`],
    ] as const) {
      const res = await admin(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect((await envelope(res)).code).toBe("NOT_FOUND");
    }
  });
});

describe("admin: bad input answers 4xx in the envelope and writes nothing", () => {
  const cases: [string, RequestInit & { headers?: Record<string, string> }, number, string][] = [
    ["malformed JSON", { body: "{ not json" }, 400, "BAD_REQUEST"],
    ["a JSON array", { body: "[]" }, 400, "VALIDATION_FAILED"],
    [
      "wrong types",
      { body: JSON.stringify({ tenant_id: "ok-id", name: 5, system_prompt: true }) },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "an unknown field",
      { body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", colour: "red" }) },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "a bad tenant id",
      { body: JSON.stringify({ tenant_id: "Bad Id!", name: "n", system_prompt: "p" }) },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "a bad origin",
      {
        body: JSON.stringify({
          tenant_id: "ok-id",
          name: "n",
          system_prompt: "p",
          allowed_origins: ["https://x.example/path"],
        }),
      },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "a bad time zone",
      {
        body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", timezone: "Mars/Olympus" }),
      },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "a bad email",
      {
        body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", escalation_email: "nope" }),
      },
      400,
      "VALIDATION_FAILED",
    ],
    [
      "a negative budget",
      {
        body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", monthly_token_budget: -1 }),
      },
      400,
      "VALIDATION_FAILED",
    ],
    ...(
      [
        ["a bad model name in allowed_models", ["gpt-4o", "not a model"]],
        ["21 allowed_models", Array.from({ length: 21 }, (_, i) => `model-${i}`)],
        ["allowed_models as a string", "gpt-4o"],
      ] as const
    ).map(([what, allowed]): (typeof cases)[number] => [
      what,
      {
        body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", allowed_models: allowed }),
      },
      400,
      "VALIDATION_FAILED",
    ]),
    ...(
      [
        ["a zero visitor share", { visitor_monthly_token_share: 0 }],
        ["a visitor share above 1", { visitor_monthly_token_share: 1.5 }],
        ["a negative visitor share", { visitor_monthly_token_share: -0.1 }],
        ["a visitor share as a string", { visitor_monthly_token_share: "0.1" }],
        ["zero address messages per minute", { address_messages_per_minute: 0 }],
        ["fractional address conversations per hour", { address_conversations_per_hour: 2.5 }],
        ["too many address conversations per hour", { address_conversations_per_hour: 100_001 }],
        ["no new conversations a minute", { conversations_per_minute: 0 }],
        ["fractional new conversations a minute", { conversations_per_minute: 1.5 }],
      ] as const
    ).map(([what, field]): (typeof cases)[number] => [
      what,
      { body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p", ...field }) },
      400,
      "VALIDATION_FAILED",
    ]),
    ["no body", { body: undefined }, 400, "VALIDATION_FAILED"],
    [
      "a text body",
      { body: "tenant_id=x", headers: { "content-type": "text/plain" } },
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    ],
    [
      "a form body",
      { body: "tenant_id=x", headers: { "content-type": "application/x-www-form-urlencoded" } },
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    ],
    [
      "an oversize body",
      { body: JSON.stringify({ tenant_id: "ok-id", name: "n", system_prompt: "p".repeat(70_000) }) },
      413,
      "PAYLOAD_TOO_LARGE",
    ],
  ];
  for (const [what, init, status, code] of cases) {
    it(`POST /admin/tenants with ${what} -> ${status}`, async () => {
      const before = [await count("tenants"), await count("audit_log")];
      const res = await send(
        "POST",
        "/admin/tenants",
        "test-admin-token-0123456789",
        init.body,
        init.headers,
      );
      expect(res.status).toBe(status);
      const err = await envelope(res);
      expect(err.code).toBe(code);
      expect(err.requestId).toBe(res.headers.get("x-request-id"));
      expect([await count("tenants"), await count("audit_log")]).toEqual(before);
    });
  }

  it("refuses an empty or unknown-field patch", async () => {
    const t = await createTenant();
    for (const body of [
      {},
      { tenant_id: "other" },
      { max_tokens_per_response: 0 },
      { active: "yes" },
      { allowed_models: ["gpt-4o", "bad name"] },
      { allowed_models: Array.from({ length: 21 }, (_, i) => `model-${i}`) },
      { allowed_models: null },
      { visitor_monthly_token_share: 0 },
      { visitor_monthly_token_share: 1.01 },
      { visitor_monthly_token_share: null },
      { address_messages_per_minute: -1 },
      { address_conversations_per_hour: 0 },
      { address_messages_per_minute: 10, address_conversations_per_hour: 0 },
    ]) {
      const res = await admin("PATCH", `/tenants/${t.tenant_id}`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const after = (await (await admin("GET", `/tenants/${t.tenant_id}`)).json()) as {
      config_version: number;
    };
    expect(after.config_version).toBe(1);
  });

  it("refuses bad query parameters", async () => {
    for (const q of ["limit=0", "limit=abc", "limit=1000", "cursor=Not_An_Id", "include_inactive=maybe"]) {
      const res = await admin("GET", `/tenants?${q}`);
      expect(res.status, q).toBe(400);
      expect((await envelope(res)).code).toBe("VALIDATION_FAILED");
    }
  });
});

describe("admin: authentication", () => {
  it("refuses a missing, malformed or wrong admin token", async () => {
    const before = await count("tenants");
    const body = JSON.stringify({ tenant_id: uniqueId(), name: "n", system_prompt: "p" });
    for (const auth of [
      undefined,
      "test-admin-token-0123456789",
      "Basic dGVzdA==",
      "Bearer wrong-token-0000000000",
      "Bearer ",
    ]) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (auth) headers.authorization = auth;
      const res = await call("/admin/tenants", { method: "POST", headers, body });
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      expect((await envelope(res)).code).toBe("UNAUTHORIZED");
    }
    expect(await count("tenants")).toBe(before);
  });

  it("counts wrong admin tokens against the address: the 21st is refused, and the right token from there waits too", async () => {
    const ip = `198.51.100.4-${uniqueId("ip")}`;
    const asAdmin = (token: string, address = ip) =>
      call("/admin/tenants?limit=1", {
        headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": address },
      });
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
      expect((await asAdmin(`guess-${i}-0123456789abcdef`)).status, `guess ${i + 1}`).toBe(401);
    }
    const over = await asAdmin("one-more-guess-0123456789");
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await envelope(over)).message).toContain("from this address");
    // Refused before the comparison: a right guess from that address would tell nothing.
    expect((await asAdmin(TEST_ADMIN_TOKEN)).status).toBe(429);
    expect((await asAdmin(TEST_ADMIN_TOKEN, `198.51.100.5-${uniqueId("ip")}`)).status).toBe(200);
  });

  it("does not accept a tenant key as the admin token", async () => {
    const t = await createTenant();
    const { key } = await createKey(t.tenant_id);
    const res = await send("GET", "/admin/tenants", key);
    expect(res.status).toBe(401);
  });
});

describe("admin: keys", () => {
  it("shows a key once, stores only its hash, lists without secrets", async () => {
    const t = await createTenant();
    const sk = await createKey(t.tenant_id, "secret");
    const pk = await createKey(t.tenant_id, "publishable");
    expect(sk.key).toMatch(/^sk_[A-Za-z0-9]{50}$/);
    expect(pk.key).toMatch(/^pk_[A-Za-z0-9]{50}$/);
    expect(sk.key.startsWith(sk.prefix)).toBe(true);

    const stored = await query<{ hash: string; prefix: string }>(
      sql`select hash, prefix from api_keys where tenant_id = ${t.tenant_id} order by created_at`,
    );
    expect(stored).toHaveLength(2);
    for (const row of stored) expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    const raw = JSON.stringify(stored);
    expect(raw).not.toContain(sk.key);
    expect(raw).not.toContain(pk.key);

    const list = await admin("GET", `/tenants/${t.tenant_id}/keys`);
    const text = await list.text();
    expect(text).not.toContain(sk.key);
    expect(text).not.toContain("hash");
    const keys = (JSON.parse(text) as { keys: { id: string; kind: string; revoked_at: string | null }[] })
      .keys;
    expect(keys.map((k) => [k.id, k.kind, k.revoked_at])).toEqual([
      [sk.id, "secret", null],
      [pk.id, "publishable", null],
    ]);
  });

  it("revokes a key, idempotently, and audits it once", async () => {
    const t = await createTenant();
    const k = await createKey(t.tenant_id);
    const first = await admin("DELETE", `/tenants/${t.tenant_id}/keys/${k.id}`);
    expect(first.status).toBe(200);
    const revokedAt = ((await first.json()) as { revoked_at: string }).revoked_at;
    expect(revokedAt).not.toBeNull();
    const again = await admin("DELETE", `/tenants/${t.tenant_id}/keys/${k.id}`);
    expect(((await again.json()) as { revoked_at: string }).revoked_at).toBe(revokedAt);
    const actions = await query<{ action: string }>(
      sql`select action from audit_log where tenant_id = ${t.tenant_id} order by id`,
    );
    expect(actions.map((a) => a.action)).toEqual(["tenant.create", "key.create", "key.revoke"]);
  });

  it("cannot revoke another tenant's key through its own tenant path", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const bKey = await createKey(b.tenant_id);
    const res = await admin("DELETE", `/tenants/${a.tenant_id}/keys/${bKey.id}`);
    expect(res.status).toBe(404);
    const still = await send("GET", "/v1/config", bKey.key);
    expect(still.status).toBe(200);
  });

  it("refuses a bad key kind or a malformed key id", async () => {
    const t = await createTenant();
    expect((await admin("POST", `/tenants/${t.tenant_id}/keys`, { kind: "root" })).status).toBe(400);
    expect((await admin("POST", `/tenants/${t.tenant_id}/keys`, {})).status).toBe(400);
    expect((await admin("DELETE", `/tenants/${t.tenant_id}/keys/nope`)).status).toBe(400);
    const keys = await query(sql`select id from api_keys where tenant_id = ${t.tenant_id}`);
    expect(keys).toHaveLength(0);
  });
});
