import { z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { errors, jsonBody, jsonResponse } from "../openapi";
import type { TenantScope } from "../tenants/scope";
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

export const ExperimentList = z.object({ experiments: z.array(Experiment) }).openapi("ExperimentList");
/** A tenant's experiments: under /v1 (secret key) and /admin/tenants/{id} (admin). */
export const experimentRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/experiments",
        tags: ["experiments"],
        summary: "The tenant's experiments, by name",
        responses: { 200: jsonResponse(ExperimentList, "The experiments") },
      }),
      async (c) => {
        const rows = await listExperiments(c.get("svc").dbh.db, c.get("tenant").id);
        return c.json({ experiments: rows.map((r) => experimentOut(r)) }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/experiments",
        tags: ["experiments"],
        summary: "Create an experiment: variants with config overrides, a traffic split, a schedule",
        request: { body: jsonBody(ExperimentCreate) },
        responses: { 201: jsonResponse(Experiment, "The experiment"), ...errors(400, 409, 413, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenantId = c.get("tenant").id;
        const row = await createExperiment(svc.dbh.db, c.get("actor"), tenantId, c.req.valid("json"));
        await invalidateExperiments(svc, tenantId);
        return c.json(experimentOut(row), 201);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/experiments/{name}",
        tags: ["experiments"],
        summary: "Read an experiment",
        request: { params: ExperimentNameParam },
        responses: { 200: jsonResponse(Experiment, "The experiment"), ...errors(400, 404) },
      }),
      async (c) => {
        const row = await getExperiment(c.get("svc").dbh.db, c.get("tenant").id, c.req.valid("param").name);
        return c.json(experimentOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "patch",
        path: "/experiments/{name}",
        tags: ["experiments"],
        summary: "Change an experiment; users keep the variant they were given (sticky)",
        request: { params: ExperimentNameParam, body: jsonBody(ExperimentPatch) },
        responses: {
          200: jsonResponse(Experiment, "The experiment"),
          ...errors(400, 404, 409, 413, 415),
        },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenantId = c.get("tenant").id;
        const { name } = c.req.valid("param");
        const row = await updateExperiment(svc.dbh.db, c.get("actor"), tenantId, name, c.req.valid("json"));
        await invalidateExperiments(svc, tenantId);
        return c.json(experimentOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "delete",
        path: "/experiments/{name}",
        tags: ["experiments"],
        summary: "Delete an experiment; its analytics rows stay",
        request: { params: ExperimentNameParam },
        responses: { 200: jsonResponse(Experiment, "The deleted experiment"), ...errors(400, 404) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenantId = c.get("tenant").id;
        const row = await deleteExperiment(svc.dbh.db, c.get("actor"), tenantId, c.req.valid("param").name);
        await invalidateExperiments(svc, tenantId);
        return c.json(experimentOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/experiments/{name}/results",
        tags: ["experiments"],
        summary: "Per-variant outcomes with intervals, tests against control, SRM check and verdict",
        request: { params: ExperimentNameParam },
        responses: { 200: jsonResponse(Results, "The results"), ...errors(400, 404) },
      }),
      async (c) => {
        const db = c.get("svc").dbh.db;
        const tenantId = c.get("tenant").id;
        const row = await getExperiment(db, tenantId, c.req.valid("param").name);
        return c.json(
          buildResults(row, await readAggregates(db, tenantId, row.name, row.createdAt, row.controlVariant)),
          200,
        );
      },
    );
