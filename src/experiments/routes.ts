import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { type AppEnv, newRouter } from "../app";
import { adminAuth, tenantAuth } from "../auth/middleware";
import { AppError } from "../errors";
import { adminSecurity, errors, jsonBody, jsonResponse, tenantSecurity } from "../openapi";
import type { Services } from "../services";
import { TenantIdParam } from "../tenants/schemas";
import type { Actor } from "../tenants/service";
import { invalidateExperiments } from "./apply";
import { buildResults, readAggregates } from "./results";
import { Experiment, ExperimentCreate, ExperimentNameParam, ExperimentPatch, Results } from "./schemas";
import {
  createExperiment,
  deleteExperiment,
  experimentOut,
  getExperiment,
  listExperiments,
  updateExperiment,
} from "./service";

const ExperimentList = z.object({ experiments: z.array(Experiment) }).openapi("ExperimentList");
const AdminParam = TenantIdParam.extend(ExperimentNameParam.shape);

const admin = { tags: ["admin: experiments"], security: adminSecurity, middleware: [adminAuth] };
/** Experiments are the tenant's business: a publishable key sits in public pages, so it is refused. */
const secretKeyOnly = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("apiKey").kind !== "secret") throw new AppError("FORBIDDEN", "experiments need a secret key");
  await next();
});

const tenant = { tags: ["experiments"], security: tenantSecurity, middleware: [tenantAuth, secretKeyOnly] };

const adminCreate = createRoute({
  ...admin,
  method: "post",
  path: "/tenants/{id}/experiments",
  summary: "Create an experiment: variants with config overrides, a traffic split, a schedule",
  request: { params: TenantIdParam, body: jsonBody(ExperimentCreate) },
  responses: { 201: jsonResponse(Experiment, "The experiment"), ...errors(400, 401, 404, 409, 413, 415) },
});

const adminList = createRoute({
  ...admin,
  method: "get",
  path: "/tenants/{id}/experiments",
  summary: "List a tenant's experiments by name",
  request: { params: TenantIdParam },
  responses: { 200: jsonResponse(ExperimentList, "The experiments"), ...errors(400, 401, 404) },
});

const adminGet = createRoute({
  ...admin,
  method: "get",
  path: "/tenants/{id}/experiments/{name}",
  summary: "Read an experiment",
  request: { params: AdminParam },
  responses: { 200: jsonResponse(Experiment, "The experiment"), ...errors(400, 401, 404) },
});

const adminPatch = createRoute({
  ...admin,
  method: "patch",
  path: "/tenants/{id}/experiments/{name}",
  summary: "Change an experiment; users keep the variant they were given (sticky)",
  request: { params: AdminParam, body: jsonBody(ExperimentPatch) },
  responses: { 200: jsonResponse(Experiment, "The experiment"), ...errors(400, 401, 404, 409, 413, 415) },
});

const adminDelete = createRoute({
  ...admin,
  method: "delete",
  path: "/tenants/{id}/experiments/{name}",
  summary: "Delete an experiment; its analytics rows stay",
  request: { params: AdminParam },
  responses: { 200: jsonResponse(Experiment, "The deleted experiment"), ...errors(400, 401, 404) },
});

const adminResults = createRoute({
  ...admin,
  method: "get",
  path: "/tenants/{id}/experiments/{name}/results",
  summary: "Per-variant outcomes with intervals, tests against control, SRM check and verdict",
  request: { params: AdminParam },
  responses: { 200: jsonResponse(Results, "The results"), ...errors(400, 401, 404) },
});

const tenantList = createRoute({
  ...tenant,
  method: "get",
  path: "/experiments",
  summary: "The key's own tenant's experiments (secret keys only)",
  responses: { 200: jsonResponse(ExperimentList, "The experiments"), ...errors(401, 403) },
});

const tenantCreate = createRoute({
  ...tenant,
  method: "post",
  path: "/experiments",
  summary: "Create an experiment for the key's own tenant (secret keys only)",
  request: { body: jsonBody(ExperimentCreate) },
  responses: { 201: jsonResponse(Experiment, "The experiment"), ...errors(400, 401, 403, 409, 413, 415) },
});

const tenantGet = createRoute({
  ...tenant,
  method: "get",
  path: "/experiments/{name}",
  summary: "Read one of the key's own tenant's experiments (secret keys only)",
  request: { params: ExperimentNameParam },
  responses: { 200: jsonResponse(Experiment, "The experiment"), ...errors(400, 401, 403, 404) },
});

const tenantPatch = createRoute({
  ...tenant,
  method: "patch",
  path: "/experiments/{name}",
  summary: "Change one of the key's own tenant's experiments (secret keys only)",
  request: { params: ExperimentNameParam, body: jsonBody(ExperimentPatch) },
  responses: {
    200: jsonResponse(Experiment, "The experiment"),
    ...errors(400, 401, 403, 404, 409, 413, 415),
  },
});

const tenantResults = createRoute({
  ...tenant,
  method: "get",
  path: "/experiments/{name}/results",
  summary: "Results of one of the key's own tenant's experiments (secret keys only)",
  request: { params: ExperimentNameParam },
  responses: { 200: jsonResponse(Results, "The results"), ...errors(400, 401, 403, 404) },
});

const adminActor = (c: Context<AppEnv>): Actor => ({ actor: "admin", requestId: c.get("requestId") });

/** The key's own tenant, and the key as the actor of changes. */
function keyTenant(c: Context<AppEnv>): { tenantId: string; who: Actor } {
  const key = c.get("apiKey");
  return { tenantId: c.get("tenant").id, who: { actor: `key:${key.id}`, requestId: c.get("requestId") } };
}

async function results(svc: Services, tenantId: string, name: string) {
  const row = await getExperiment(svc.dbh.db, tenantId, name);
  return buildResults(row, await readAggregates(svc.dbh.db, tenantId, name, row.createdAt));
}

/** The admin API for any tenant's experiments. */
export const adminExperiments = newRouter()
  .openapi(adminCreate, async (c) => {
    const svc = c.get("svc");
    const { id } = c.req.valid("param");
    const row = await createExperiment(svc.dbh.db, adminActor(c), id, c.req.valid("json"));
    await invalidateExperiments(svc, id);
    return c.json(experimentOut(row), 201);
  })
  .openapi(adminList, async (c) => {
    const rows = await listExperiments(c.get("svc").dbh.db, c.req.valid("param").id);
    return c.json({ experiments: rows.map((r) => experimentOut(r)) }, 200);
  })
  .openapi(adminGet, async (c) => {
    const { id, name } = c.req.valid("param");
    return c.json(experimentOut(await getExperiment(c.get("svc").dbh.db, id, name)), 200);
  })
  .openapi(adminPatch, async (c) => {
    const svc = c.get("svc");
    const { id, name } = c.req.valid("param");
    const row = await updateExperiment(svc.dbh.db, adminActor(c), id, name, c.req.valid("json"));
    await invalidateExperiments(svc, id);
    return c.json(experimentOut(row), 200);
  })
  .openapi(adminDelete, async (c) => {
    const svc = c.get("svc");
    const { id, name } = c.req.valid("param");
    const row = await deleteExperiment(svc.dbh.db, adminActor(c), id, name);
    await invalidateExperiments(svc, id);
    return c.json(experimentOut(row), 200);
  })
  .openapi(adminResults, async (c) => {
    const { id, name } = c.req.valid("param");
    return c.json(await results(c.get("svc"), id, name), 200);
  });

/** The tenant-key API: a key sees and changes only its own tenant's experiments. */
export const tenantExperiments = newRouter()
  .openapi(tenantList, async (c) => {
    const { tenantId } = keyTenant(c);
    const rows = await listExperiments(c.get("svc").dbh.db, tenantId);
    return c.json({ experiments: rows.map((r) => experimentOut(r)) }, 200);
  })
  .openapi(tenantCreate, async (c) => {
    const svc = c.get("svc");
    const { tenantId, who } = keyTenant(c);
    const row = await createExperiment(svc.dbh.db, who, tenantId, c.req.valid("json"));
    await invalidateExperiments(svc, tenantId);
    return c.json(experimentOut(row), 201);
  })
  .openapi(tenantGet, async (c) => {
    const { tenantId } = keyTenant(c);
    return c.json(
      experimentOut(await getExperiment(c.get("svc").dbh.db, tenantId, c.req.valid("param").name)),
      200,
    );
  })
  .openapi(tenantPatch, async (c) => {
    const svc = c.get("svc");
    const { tenantId, who } = keyTenant(c);
    const { name } = c.req.valid("param");
    const row = await updateExperiment(svc.dbh.db, who, tenantId, name, c.req.valid("json"));
    await invalidateExperiments(svc, tenantId);
    return c.json(experimentOut(row), 200);
  })
  .openapi(tenantResults, async (c) => {
    const { tenantId } = keyTenant(c);
    return c.json(await results(c.get("svc"), tenantId, c.req.valid("param").name), 200);
  });
