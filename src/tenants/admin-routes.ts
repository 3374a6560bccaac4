import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { adminAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { adminSecurity, errors, jsonBody, jsonResponse } from "../openapi";
import { purgeTenant } from "../privacy/purge";
import { invalidateApiKey, invalidateTenant } from "./config";
import {
  ApiKey,
  AuditEntry,
  CreatedKey,
  KeyCreate,
  KeyIdParam,
  ListQuery,
  Tenant,
  TenantCreate,
  TenantIdParam,
  TenantList,
  TenantPatch,
} from "./schemas";
import {
  createApiKey,
  createTenant,
  getTenant,
  keyOut,
  listApiKeys,
  listAudit,
  listTenants,
  revokeApiKey,
  tenantOut,
  updateTenant,
} from "./service";

const tags = ["admin: tenants"];
const common = { tags, security: adminSecurity, middleware: [adminAuth] };

const createTenantRoute = createRoute({
  ...common,
  method: "post",
  path: "/tenants",
  summary: "Create a tenant with its whole configuration",
  request: { body: jsonBody(TenantCreate) },
  responses: { 201: jsonResponse(Tenant, "The tenant"), ...errors(400, 401, 409, 413, 415) },
});

const listTenantsRoute = createRoute({
  ...common,
  method: "get",
  path: "/tenants",
  summary: "List tenants, in id order, a page at a time",
  request: { query: ListQuery },
  responses: { 200: jsonResponse(TenantList, "A page of tenants"), ...errors(400, 401) },
});

const getTenantRoute = createRoute({
  ...common,
  method: "get",
  path: "/tenants/{id}",
  summary: "Read a tenant",
  request: { params: TenantIdParam },
  responses: { 200: jsonResponse(Tenant, "The tenant"), ...errors(400, 401, 404) },
});

const patchTenantRoute = createRoute({
  ...common,
  method: "patch",
  path: "/tenants/{id}",
  summary: "Update a tenant's configuration; takes effect at once",
  request: { params: TenantIdParam, body: jsonBody(TenantPatch) },
  responses: { 200: jsonResponse(Tenant, "The updated tenant"), ...errors(400, 401, 404, 413, 415) },
});

const deactivateTenantRoute = createRoute({
  ...common,
  method: "delete",
  path: "/tenants/{id}",
  summary: "Deactivate a tenant: its keys stop working; its data is kept",
  request: { params: TenantIdParam },
  responses: { 200: jsonResponse(Tenant, "The deactivated tenant"), ...errors(400, 401, 404) },
});

const PurgeConfirm = z
  .object({ confirm: z.string().openapi({ description: "The tenant's id again: a purge cannot be undone" }) })
  .strict()
  .openapi("TenantPurgeConfirm");

const PurgeProgressOut = z
  .object({
    done: z.boolean().openapi({ description: "false: more is left; call again (202)" }),
    transcripts_deleted: z.number().int(),
    gate_deleted: z.boolean(),
    rows_deleted: z.record(z.string(), z.number().int()),
    redis_keys_deleted: z.number().int(),
  })
  .openapi("TenantPurge");

const purgeTenantRoute = createRoute({
  ...common,
  method: "post",
  path: "/tenants/{id}/purge",
  summary: "Delete everything of a deactivated tenant: rows, Durable Objects, Redis keys",
  request: { params: TenantIdParam, body: jsonBody(PurgeConfirm) },
  responses: {
    200: jsonResponse(PurgeProgressOut, "The tenant is gone"),
    202: jsonResponse(PurgeProgressOut, "Part done; call again to go on"),
    ...errors(400, 401, 404, 409, 415),
  },
});

const createKeyRoute = createRoute({
  ...common,
  method: "post",
  path: "/tenants/{id}/keys",
  summary: "Create an API key; the key is in this answer and never again",
  request: { params: TenantIdParam, body: jsonBody(KeyCreate) },
  responses: { 201: jsonResponse(CreatedKey, "The key, shown once"), ...errors(400, 401, 404, 415) },
});

const listKeysRoute = createRoute({
  ...common,
  method: "get",
  path: "/tenants/{id}/keys",
  summary: "List a tenant's keys (prefix and last four characters only)",
  request: { params: TenantIdParam },
  responses: { 200: jsonResponse(z.object({ keys: z.array(ApiKey) }), "The keys"), ...errors(400, 401, 404) },
});

const revokeKeyRoute = createRoute({
  ...common,
  method: "delete",
  path: "/tenants/{id}/keys/{keyId}",
  summary: "Revoke a key; it stops working at once",
  request: { params: KeyIdParam },
  responses: { 200: jsonResponse(ApiKey, "The revoked key"), ...errors(400, 401, 404) },
});

const auditRoute = createRoute({
  ...common,
  method: "get",
  path: "/tenants/{id}/audit",
  summary: "The tenant's audit log, newest first",
  request: {
    params: TenantIdParam,
    query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
  },
  responses: {
    200: jsonResponse(z.object({ entries: z.array(AuditEntry) }), "Audit entries"),
    ...errors(400, 401, 404),
  },
});

/** The admin API for tenants, their keys and their audit log. */
export const adminTenants = newRouter()
  .openapi(createTenantRoute, async (c) => {
    const svc = c.get("svc");
    const row = await createTenant(svc.dbh.db, actorOf(c), c.req.valid("json"));
    await invalidateTenant(svc, row.id);
    return c.json(tenantOut(row), 201);
  })
  .openapi(listTenantsRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listTenants(c.get("svc").dbh.db, {
      limit: q.limit,
      cursor: q.cursor,
      includeInactive: q.include_inactive === "true",
    });
    return c.json({ tenants: page.rows.map(tenantOut), next_cursor: page.nextCursor }, 200);
  })
  .openapi(getTenantRoute, async (c) => {
    return c.json(tenantOut(await getTenant(c.get("svc").dbh.db, c.req.valid("param").id)), 200);
  })
  .openapi(patchTenantRoute, async (c) => {
    const svc = c.get("svc");
    const { id } = c.req.valid("param");
    const row = await updateTenant(svc.dbh.db, actorOf(c), id, c.req.valid("json"));
    await invalidateTenant(svc, id);
    return c.json(tenantOut(row), 200);
  })
  .openapi(deactivateTenantRoute, async (c) => {
    const svc = c.get("svc");
    const { id } = c.req.valid("param");
    const row = await updateTenant(svc.dbh.db, actorOf(c), id, { active: false });
    await invalidateTenant(svc, id);
    return c.json(tenantOut(row), 200);
  })
  .openapi(purgeTenantRoute, async (c) => {
    const svc = c.get("svc");
    const { id } = c.req.valid("param");
    if (c.req.valid("json").confirm !== id) {
      throw new AppError("VALIDATION_FAILED", "confirm must repeat the tenant id", {
        details: [{ path: "confirm", message: "must equal the tenant id" }],
      });
    }
    const row = await getTenant(svc.dbh.db, id);
    if (row.active) throw new AppError("CONFLICT", "deactivate the tenant (DELETE) before purging it");
    const progress = await purgeTenant(svc, actorOf(c), id);
    return progress.done ? c.json(progress, 200) : c.json(progress, 202);
  })
  .openapi(createKeyRoute, async (c) => {
    const { row, key } = await createApiKey(
      c.get("svc").dbh.db,
      actorOf(c),
      c.req.valid("param").id,
      c.req.valid("json"),
    );
    // The key is in this answer and nowhere else: no cache may keep a copy.
    return c.json({ ...keyOut(row), key }, 201, { "Cache-Control": "no-store" });
  })
  .openapi(listKeysRoute, async (c) => {
    const rows = await listApiKeys(c.get("svc").dbh.db, c.req.valid("param").id);
    return c.json({ keys: rows.map(keyOut) }, 200);
  })
  .openapi(revokeKeyRoute, async (c) => {
    const svc = c.get("svc");
    const { id, keyId } = c.req.valid("param");
    const row = await revokeApiKey(svc.dbh.db, actorOf(c), id, keyId);
    await invalidateApiKey(svc, row.prefix);
    return c.json(keyOut(row), 200);
  })
  .openapi(auditRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json({ entries: await listAudit(c.get("svc").dbh.db, id, c.req.valid("query").limit) }, 200);
  });

function actorOf(c: { get(key: "requestId"): string }) {
  return { actor: "admin", requestId: c.get("requestId") };
}
