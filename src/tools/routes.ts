/**
 * A tenant's tool registry, declared once and mounted under /v1 (secret key) and
 * /admin/tenants/{id} (admin): list, create, read, change, delete, rotate the secret. Every write
 * drops the request path's cached tool list (src/tools/registry.ts).
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppEnv, newRouter } from "../app.ts";
import { errors, jsonBody, jsonResponse } from "../openapi.ts";
import { type TenantScope, urlForReader } from "../tenants/scope.ts";
import { invalidateTools } from "./registry.ts";
import { Tool, ToolCreate, ToolList, ToolNameParam, ToolPatch, ToolWithSecret } from "./schemas.ts";
import {
  createTool,
  deleteTool,
  getTool,
  listTools,
  rotateToolSecret,
  toolOut,
  updateTool,
} from "./service.ts";
import type { ToolTarget } from "./types.ts";

export const RotatedToolSecret = z
  .object({ name: z.string(), secret: ToolWithSecret.shape.secret })
  .openapi("RotatedToolSecret");

/** A tool as the caller may read it: an agent sees an https target's origin only (`urlForReader`). */
function readable<T extends { target: ToolTarget }>(c: Context<AppEnv>, tool: T): T {
  const t = tool.target;
  return t.kind === "https" ? { ...tool, target: { ...t, url: urlForReader(c, t.url) } } : tool;
}

/** An answer holding a secret: no cache may keep it. */
const NO_STORE = { "Cache-Control": "no-store" };

/** /tools in a tenant scope. */
export const toolRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/tools",
        tags: ["tools"],
        summary: "The tenant's tools, by name (secrets are never shown)",
        responses: { 200: jsonResponse(ToolList, "The tools") },
      }),
      async (c) => {
        const tenant = c.get("tenant");
        const rows = await listTools(c.get("svc").dbh.db, tenant.id);
        return c.json({ tools: rows.map((r) => readable(c, toolOut(r, tenant.allowedTools))) }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/tools",
        tags: ["tools"],
        summary: "Register a tool; the answer shows its signing secret, once",
        request: { body: jsonBody(ToolCreate) },
        responses: {
          201: jsonResponse(ToolWithSecret, "The tool and its secret"),
          ...errors(400, 409, 413, 415),
        },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const { row, secret } = await createTool(
          svc.dbh.db,
          svc.env,
          c.get("actor"),
          tenant.id,
          c.req.valid("json"),
        );
        await invalidateTools(svc, tenant.id);
        return c.json({ ...toolOut(row, tenant.allowedTools), secret }, 201, NO_STORE);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/tools/{name}",
        tags: ["tools"],
        summary: "Read a tool",
        request: { params: ToolNameParam },
        responses: { 200: jsonResponse(Tool, "The tool"), ...errors(400, 404) },
      }),
      async (c) => {
        const tenant = c.get("tenant");
        const row = await getTool(c.get("svc").dbh.db, tenant.id, c.req.valid("param").name);
        return c.json(readable(c, toolOut(row, tenant.allowedTools)), 200);
      },
    )
    .openapi(
      scope.route({
        method: "patch",
        path: "/tools/{name}",
        tags: ["tools"],
        summary: "Change a tool's description, schema, target, timeout or enabled flag",
        request: { params: ToolNameParam, body: jsonBody(ToolPatch) },
        responses: { 200: jsonResponse(Tool, "The tool"), ...errors(400, 404, 413, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const { name } = c.req.valid("param");
        const row = await updateTool(
          svc.dbh.db,
          svc.env,
          c.get("actor"),
          tenant.id,
          name,
          c.req.valid("json"),
        );
        await invalidateTools(svc, tenant.id);
        return c.json(toolOut(row, tenant.allowedTools), 200);
      },
    )
    .openapi(
      scope.route({
        method: "delete",
        path: "/tools/{name}",
        tags: ["tools"],
        summary: "Delete a tool",
        request: { params: ToolNameParam },
        responses: { 200: jsonResponse(Tool, "The deleted tool"), ...errors(400, 404) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const row = await deleteTool(svc.dbh.db, c.get("actor"), tenant.id, c.req.valid("param").name);
        await invalidateTools(svc, tenant.id);
        return c.json(toolOut(row, tenant.allowedTools), 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/tools/{name}/secret",
        tags: ["tools"],
        summary:
          "Rotate a tool's signing secret; the old one stops working at once, the new one is shown once",
        request: { params: ToolNameParam },
        responses: { 200: jsonResponse(RotatedToolSecret, "The new secret"), ...errors(400, 404) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const { row, secret } = await rotateToolSecret(
          svc.dbh.db,
          c.get("actor"),
          tenant.id,
          c.req.valid("param").name,
        );
        await invalidateTools(svc, tenant.id);
        return c.json({ name: row.name, secret }, 200, NO_STORE);
      },
    );
