/**
 * The tool registry (issue #16): CRUD through both mounts, validation in the error envelope, the
 * secret shown once and rotated, audit entries, isolation, and what the request path sees.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadEnv } from "../../../src/env";
import worker from "../../../src/index";
import { newServices } from "../../../src/services";
import { toolsForTenant } from "../../../src/tools/registry";
import { TEST_ADMIN_TOKEN } from "../../local-services";
import { admin, BASE, createKey, createTenant, query, send, sql } from "../helpers";
import { toolBody } from "./helpers";

async function auditOf(tenantId: string) {
  const res = await admin("GET", `/tenants/${tenantId}/audit?limit=500`);
  return (
    (await res.json()) as { entries: { action: string; actor: string; target: string; data: unknown }[] }
  ).entries;
}

async function tenantWithKey(overrides: Record<string, unknown> = {}) {
  const t = await createTenant(overrides);
  const sk = await createKey(t.tenant_id, "secret");
  return { id: t.tenant_id, key: sk.key, keyId: sk.id };
}

function services() {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return newServices(loaded.env);
}

type ToolJson = Record<string, unknown> & {
  name: string;
  secret?: string;
  allowed: boolean;
  enabled: boolean;
};

describe("tool registry routes", () => {
  it("creates, lists, reads, updates, rotates and deletes under /v1, auditing each change", async () => {
    const t = await tenantWithKey({ allowed_tools: ["order_status"] });
    const created = await send("POST", "/v1/tools", t.key, toolBody("order_status"));
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const tool = (await created.json()) as ToolJson;
    expect(tool).toMatchObject({
      tenant_id: t.id,
      name: "order_status",
      timeout_ms: 5000,
      enabled: true,
      allowed: true,
      target: { kind: "https", url: "https://tools.example.com/orders" },
    });
    expect(tool.secret).toMatch(/^tsec_[A-Za-z0-9]{40}$/);

    // The secret is shown once: no read answers it, and it is stored as shown.
    const list = (await (await send("GET", "/v1/tools", t.key)).json()) as { tools: ToolJson[] };
    expect(list.tools.map((x) => x.name)).toEqual(["order_status"]);
    expect(JSON.stringify(list)).not.toContain(tool.secret);
    const read = await send("GET", "/v1/tools/order_status", t.key);
    expect(read.status).toBe(200);
    const readJson = (await read.json()) as ToolJson;
    expect(readJson).not.toHaveProperty("secret");
    expect(JSON.stringify(readJson)).not.toContain(tool.secret);
    const [row] = await query<{ secret: string }>(sql`select secret from tools where tenant_id = ${t.id}`);
    expect(row?.secret).toBe(tool.secret);

    const patched = await send("PATCH", "/v1/tools/order_status", t.key, {
      timeout_ms: 2500,
      enabled: false,
    });
    expect(patched.status).toBe(200);
    expect((await patched.json()) as ToolJson).toMatchObject({ timeout_ms: 2500, enabled: false });

    const rotated = await send("POST", "/v1/tools/order_status/secret", t.key);
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get("cache-control")).toBe("no-store");
    const { secret } = (await rotated.json()) as { secret: string };
    expect(secret).toMatch(/^tsec_/);
    expect(secret).not.toBe(tool.secret);
    const [after] = await query<{ secret: string }>(sql`select secret from tools where tenant_id = ${t.id}`);
    expect(after?.secret).toBe(secret);

    const deleted = await send("DELETE", "/v1/tools/order_status", t.key);
    expect(deleted.status).toBe(200);
    expect((await send("GET", "/v1/tools/order_status", t.key)).status).toBe(404);

    const entries = await auditOf(t.id);
    const tools = entries.filter((e) => e.action.startsWith("tool."));
    expect(tools.map((e) => e.action).sort()).toEqual([
      "tool.create",
      "tool.delete",
      "tool.rotate_secret",
      "tool.update",
    ]);
    expect(tools.every((e) => e.actor === `key:${t.keyId}` && e.target === "order_status")).toBe(true);
    // No secret in the audit log, ever.
    expect(JSON.stringify(entries)).not.toContain(tool.secret);
    expect(JSON.stringify(entries)).not.toContain(secret);
  });

  it("works the same under /admin/tenants/{id}, audited as the admin", async () => {
    const t = await tenantWithKey();
    const res = await admin("POST", `/tenants/${t.id}/tools`, toolBody("lookup", { timeout_ms: 100 }));
    expect(res.status).toBe(201);
    expect(((await res.json()) as ToolJson).allowed).toBe(false);
    const seen = (await (await send("GET", "/v1/tools", t.key)).json()) as { tools: ToolJson[] };
    expect(seen.tools.map((x) => x.name)).toEqual(["lookup"]);
    expect((await admin("PATCH", `/tenants/${t.id}/tools/lookup`, { description: "New" })).status).toBe(200);
    expect((await admin("POST", `/tenants/${t.id}/tools/lookup/secret`)).status).toBe(200);
    expect((await admin("DELETE", `/tenants/${t.id}/tools/lookup`)).status).toBe(200);
    const actors = (await auditOf(t.id)).filter((e) => e.action.startsWith("tool.")).map((e) => e.actor);
    expect(actors).toEqual(["admin", "admin", "admin", "admin"]);
  });

  it("refuses a second tool of the same name with 409", async () => {
    const t = await tenantWithKey();
    expect((await send("POST", "/v1/tools", t.key, toolBody("dup"))).status).toBe(201);
    const again = await send("POST", "/v1/tools", t.key, toolBody("dup"));
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("CONFLICT");
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ["a name with a space", toolBody("order status"), "name"],
    ["a name longer than 64", toolBody("x".repeat(65)), "name"],
    [
      "a schema that is not an object schema",
      toolBody("a", { parameters: { type: "string" } }),
      "parameters",
    ],
    [
      "an unknown type",
      toolBody("a", { parameters: { type: "object", properties: { x: { type: "strin" } } } }),
      "parameters",
    ],
    [
      "a broken pattern",
      toolBody("a", { parameters: { type: "object", properties: { x: { type: "string", pattern: "(" } } } }),
      "parameters",
    ],
    [
      "a reference to nowhere",
      toolBody("a", { parameters: { type: "object", properties: { x: { $ref: "#/$defs/nope" } } } }),
      "parameters",
    ],
    [
      "a remote reference",
      toolBody("a", {
        parameters: { type: "object", properties: { x: { $ref: "https://evil.example/s.json" } } },
      }),
      "parameters",
    ],
    [
      "a schema over 8 KiB",
      toolBody("a", { parameters: { type: "object", description: "x".repeat(9000) } }),
      "parameters",
    ],
    [
      "a URL that is not http(s)",
      toolBody("a", { target: { kind: "https", url: "ftp://tools.example.com/" } }),
      "target.url",
    ],
    [
      "a URL with credentials",
      toolBody("a", { target: { kind: "https", url: "https://u:p@tools.example.com/" } }),
      "target.url",
    ],
    ["a timeout below 100 ms", toolBody("a", { timeout_ms: 50 }), "timeout_ms"],
    ["a timeout above 30 s", toolBody("a", { timeout_ms: 30_001 }), "timeout_ms"],
    ["an unknown field", toolBody("a", { secret: "mine" }), ""],
    [
      "another tenant's dispatch script",
      toolBody("a", { target: { kind: "dispatch", script: "someone-else__orders" } }),
      "target.script",
    ],
  ];
  for (const [what, body, path] of invalid) {
    it(`refuses ${what} in the error envelope, changing nothing`, async () => {
      const t = await tenantWithKey();
      const res = await send("POST", "/v1/tools", t.key, body);
      expect(res.status).toBe(400);
      const err = (await res.json()) as { error: { code: string; message: string; requestId: string } };
      expect(err.error.code).toBe("VALIDATION_FAILED");
      expect(err.error.requestId).toBeTruthy();
      if (path) expect(err.error.message).toContain(path);
      const [n] = await query<{ n: number }>(
        sql`select count(*)::int as n from tools where tenant_id = ${t.id}`,
      );
      expect(n?.n).toBe(0);
      expect((await auditOf(t.id)).filter((e) => e.action.startsWith("tool."))).toEqual([]);
    });
  }

  it("lets a tenant name only its own dispatch scripts: <tenant_id>__<name>", async () => {
    const a = await tenantWithKey();
    const own = await send(
      "POST",
      "/v1/tools",
      a.key,
      toolBody("d1", { target: { kind: "dispatch", script: `${a.id}__orders` } }),
    );
    expect(own.status).toBe(201);
    // A dash would let tenant "x" claim the scripts of tenant "x-y"; the bare prefix names no script.
    for (const script of [
      `${a.id}-orders`,
      `${a.id}__`,
      `${a.id}x__orders`,
      `${a.id.toUpperCase()}__orders`,
    ]) {
      const res = await send(
        "POST",
        "/v1/tools",
        a.key,
        toolBody("d2", { target: { kind: "dispatch", script } }),
      );
      expect(res.status, script).toBe(400);
    }
    // Tenant "<a>-corp" cannot reach into "<a>"'s scripts, nor the reverse.
    const corp = await tenantWithKey({ tenant_id: `${a.id}-corp` });
    const res = await send(
      "POST",
      "/v1/tools",
      corp.key,
      toolBody("d3", { target: { kind: "dispatch", script: `${a.id}__orders` } }),
    );
    expect(res.status).toBe(400);
    const back = await send(
      "POST",
      "/v1/tools",
      a.key,
      toolBody("d4", { target: { kind: "dispatch", script: `${a.id}-corp__x` } }),
    );
    expect(back.status).toBe(400);
  });

  it("refuses a PATCH that points a tool at another tenant's script, changing nothing", async () => {
    const t = await tenantWithKey();
    expect((await send("POST", "/v1/tools", t.key, toolBody("p"))).status).toBe(201);
    const res = await send("PATCH", "/v1/tools/p", t.key, {
      target: { kind: "dispatch", script: "other__x" },
    });
    expect(res.status).toBe(400);
    const read = (await (await send("GET", "/v1/tools/p", t.key)).json()) as ToolJson;
    expect(read.target).toEqual({ kind: "https", url: "https://tools.example.com/orders" });
  });

  it("refuses plain http and private hosts in production", async () => {
    const t = await tenantWithKey();
    const production = (body: unknown) =>
      worker.fetch(
        new Request(`${BASE}/admin/tenants/${t.id}/tools`, {
          method: "POST",
          headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
        { ...env, ENVIRONMENT: "production" },
        createExecutionContext(),
      );
    for (const url of [
      "http://tools.example.com/",
      "https://127.0.0.1/",
      "https://10.1.2.3/",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/",
      "https://localhost/",
      "https://orders.internal/",
    ]) {
      const res = await production(toolBody("prod", { target: { kind: "https", url } }));
      expect(res.status, url).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain("target.url");
    }
    const ok = await production(
      toolBody("prod", { target: { kind: "https", url: "https://tools.example.com/x" } }),
    );
    expect(ok.status).toBe(201);
  });

  it("keeps tenants apart: another tenant's key can neither see nor change a tool", async () => {
    const a = await tenantWithKey();
    const b = await tenantWithKey();
    expect((await send("POST", "/v1/tools", a.key, toolBody("private_tool"))).status).toBe(201);
    const bList = (await (await send("GET", "/v1/tools", b.key)).json()) as { tools: unknown[] };
    expect(bList.tools).toEqual([]);
    for (const [method, path, body] of [
      ["GET", "/v1/tools/private_tool", undefined],
      ["PATCH", "/v1/tools/private_tool", { enabled: false }],
      ["POST", "/v1/tools/private_tool/secret", undefined],
      ["DELETE", "/v1/tools/private_tool", undefined],
    ] as const) {
      const res = await send(method, path, b.key, body);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    // The admin path with B's id does not reach A's tool either.
    expect((await admin("GET", `/tenants/${b.id}/tools/private_tool`)).status).toBe(404);
    const read = (await (await send("GET", "/v1/tools/private_tool", a.key)).json()) as ToolJson;
    expect(read.enabled).toBe(true);
  });

  it("refuses publishable keys", async () => {
    const t = await createTenant();
    const pk = await createKey(t.tenant_id, "publishable");
    const res = await send("GET", "/v1/tools", pk.key);
    expect(res.status).toBe(403);
  });
});

describe("toolsForTenant", () => {
  it("gives the enabled tools named in allowed_tools, and follows every write", async () => {
    const t = await tenantWithKey({ allowed_tools: ["a_tool", "b_tool", "unregistered"] });
    const svc = services();
    const tenant = (allowed: string[]) => ({ id: t.id, allowedTools: allowed });
    const allowed = ["a_tool", "b_tool", "unregistered"];
    expect(await toolsForTenant(svc, tenant(allowed))).toEqual([]);
    const created = (await (await send("POST", "/v1/tools", t.key, toolBody("a_tool"))).json()) as ToolJson;
    await send("POST", "/v1/tools", t.key, toolBody("b_tool", { timeout_ms: 300 }));
    await send("POST", "/v1/tools", t.key, toolBody("c_tool"));
    const tools = await toolsForTenant(svc, tenant(allowed));
    expect(tools.map((x) => x.name)).toEqual(["a_tool", "b_tool"]);
    expect(tools[0]).toMatchObject({
      tenantId: t.id,
      name: "a_tool",
      timeoutMs: 5000,
      enabled: true,
      secret: created.secret,
      target: { kind: "https", url: "https://tools.example.com/orders" },
    });
    // Disabling drops it at once (the cache is invalidated by the write).
    await send("PATCH", "/v1/tools/a_tool", t.key, { enabled: false });
    expect((await toolsForTenant(svc, tenant(allowed))).map((x) => x.name)).toEqual(["b_tool"]);
    // Rotation reaches the request path at once.
    const { secret } = (await (await send("POST", "/v1/tools/b_tool/secret", t.key)).json()) as {
      secret: string;
    };
    expect((await toolsForTenant(svc, tenant(allowed)))[0]?.secret).toBe(secret);
    // allowed_tools decides: not named, not given.
    expect(await toolsForTenant(svc, tenant(["c_tool"]))).toHaveLength(1);
    expect(await toolsForTenant(svc, tenant([]))).toEqual([]);
    await send("DELETE", "/v1/tools/b_tool", t.key);
    expect(await toolsForTenant(svc, tenant(allowed))).toEqual([]);
    // Another tenant's allowed_tools naming these tools gets nothing of this tenant's.
    const other = await tenantWithKey({ allowed_tools: ["c_tool"] });
    expect(await toolsForTenant(svc, { id: other.id, allowedTools: ["c_tool"] })).toEqual([]);
  });
});
