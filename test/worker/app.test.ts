import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/errors";
import worker from "../../src/index";
import { BASE, call, envelope } from "./helpers";

describe("the app shell", () => {
  it("answers unknown routes with 404 in the envelope and echoes a request id", async () => {
    const res = await call("/nope", { headers: { "x-request-id": "req-abc-123" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toBe("req-abc-123");
    const err = await envelope(res);
    expect(err).toMatchObject({ code: "NOT_FOUND", requestId: "req-abc-123" });
  });

  it("documents every route in /openapi.json", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    // Tenant-scoped routes are mounted under three prefixes (src/tenants/scope.ts).
    const scoped = [
      "GET /usage",
      "GET /analytics/dashboard",
      "POST /experiments",
      "GET /experiments",
      "GET /experiments/{name}",
      "PATCH /experiments/{name}",
      "DELETE /experiments/{name}",
      "GET /experiments/{name}/results",
      "GET /monitoring",
      "GET /alerts",
      "GET /alert-settings",
      "PUT /alert-settings",
      "POST /alert-settings/webhook-secret",
      "POST /identity-secret",
      "GET /tools",
      "POST /tools",
      "GET /tools/{name}",
      "PATCH /tools/{name}",
      "DELETE /tools/{name}",
      "POST /tools/{name}/secret",
      "GET /operators",
      "POST /operators",
      "PATCH /operators/{operator_id}",
      "DELETE /operators/{operator_id}",
      "DELETE /operators/{operator_id}/sessions",
      "POST /privacy/export",
      "POST /privacy/erase",
      "GET /knowledge/sources",
      "POST /knowledge/sources",
      "GET /knowledge/sources/{sourceId}",
      "PUT /knowledge/sources/{sourceId}",
      "DELETE /knowledge/sources/{sourceId}",
      "GET /knowledge/settings",
      "PATCH /knowledge/settings",
      "GET /knowledge/unanswered",
      // the inbox (src/inbox/routes.ts)
      "GET /inbox",
      "GET /inbox/{conversation_id}",
      // live takeover (src/handoff/routes.ts)
      "POST /inbox/{conversation_id}/takeover",
      "POST /inbox/{conversation_id}/messages",
      "POST /inbox/{conversation_id}/handback",
      "POST /inbox/{conversation_id}/resolve",
    ];
    expect(routes.sort()).toEqual(
      [
        "GET /healthz",
        "GET /readyz",
        "POST /admin/tenants",
        "GET /admin/tenants",
        "GET /admin/tenants/{id}",
        "PATCH /admin/tenants/{id}",
        "DELETE /admin/tenants/{id}",
        "POST /admin/tenants/{id}/purge",
        "POST /admin/tenants/{id}/keys",
        "GET /admin/tenants/{id}/keys",
        "DELETE /admin/tenants/{id}/keys/{keyId}",
        "GET /admin/tenants/{id}/audit",
        "GET /v1/config",
        "GET /admin/dead-letters",
        "POST /admin/dead-letters/replay",
        "POST /v1/chat/completions",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "POST /v1/conversations",
        "POST /v1/conversations/{id}/messages",
        "GET /v1/conversations/{id}",
        "POST /v1/conversations/{id}/end",
        "POST /v1/conversations/{id}/feedback",
        "POST /v1/conversations/{id}/live",
        "GET /admin/metrics",
        "GET /admin/monitoring",
        "POST /admin/monitoring/evaluate",
        "POST /operator/session",
        "GET /operator/session",
        "DELETE /operator/session",
        "POST /operator/magic-link",
        "POST /operator/magic-link/redeem",
        "POST /operator/invitations/accept",
        ...["/v1", "/admin/tenants/{id}", "/operator"].flatMap((prefix) =>
          scoped.map((r) => r.replace(" ", ` ${prefix}`)),
        ),
      ].sort(),
    );
  });

  it("documents the closed list of error codes of src/errors.ts in the Error schema", async () => {
    const doc = (await (await call("/openapi.json")).json()) as {
      components: { schemas: Record<string, { properties: { error: { properties: { code: unknown } } } }> };
    };
    expect(doc.components.schemas.Error?.properties.error.properties.code).toEqual({
      type: "string",
      enum: [...ERROR_CODES],
      example: "VALIDATION_FAILED",
    });
  });

  it("renders a docs page for the spec", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("/openapi.json");
  });

  it("fails closed with a clear message when the environment is incomplete", async () => {
    const broken = { ...env, ADMIN_TOKEN: undefined, DATABASE_URL: "mysql://nope" };
    const res = await worker.fetch(new Request(`${BASE}/healthz`), broken, createExecutionContext());
    expect(res.status).toBe(500);
    const err = await envelope(res);
    expect(err.code).toBe("MISCONFIGURED");
    expect(err.message).toContain("ADMIN_TOKEN");
    expect(err.message).toContain("DATABASE_URL must be a postgres:// URL");
    expect(err.message).not.toContain("mysql://nope");
  });

  it("fails closed naming the bindings the environment lacks", async () => {
    const res = await worker.fetch(
      new Request(`${BASE}/healthz`),
      // @ts-expect-error: a deployment whose bindings do not match wrangler.jsonc
      { ...env, TENANT_GATE: undefined, SEND_EMAIL: undefined },
      createExecutionContext(),
    );
    expect(res.status).toBe(500);
    const err = await envelope(res);
    expect(err.code).toBe("MISCONFIGURED");
    expect(err.message).toContain("TENANT_GATE: binding missing");
    expect(err.message).toContain("SEND_EMAIL: binding missing");
  });
});
