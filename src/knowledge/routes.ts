import { z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { errorSummary } from "../errors";
import { errors, jsonBody, jsonResponse } from "../openapi";
import { type TenantScope, urlForReader } from "../tenants/scope";
import { embeddingProgress, queueEmbedding } from "./reembed";
import { invalidateKnowledge } from "./retrieve";
import {
  Settings,
  SettingsPatch,
  SettingsView,
  Source,
  SourceIdParam,
  SourceInput,
  SourceList,
  Unanswered,
} from "./schemas";
import {
  createSource,
  deleteSource,
  getSource,
  listSources,
  readKnowledgeConfig,
  sourceOut,
  unansweredQuestions,
  updateSource,
  writeSettings,
} from "./service";

const tags = ["knowledge"];
/** The same embedding sent again re-queues what lacks a vector at most once in this many seconds. */
export const REQUEUE_COOLDOWN_S = 15 * 60;

/** A tenant's knowledge: under /v1 (secret key) and /admin/tenants/{id} (admin). */
export const knowledgeRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/knowledge/sources",
        tags,
        summary: "The tenant's knowledge sources with their indexing status, newest first",
        responses: { 200: jsonResponse(SourceList, "The sources") },
      }),
      async (c) => {
        const rows = await listSources(c.get("svc").dbh.db, c.get("tenant").id);
        return c.json({ sources: rows.map(sourceOut) }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/knowledge/sources",
        tags,
        summary: "Add a document, Q&A pairs or a URL; it is indexed in the background (status queued)",
        request: { body: jsonBody(SourceInput) },
        responses: { 201: jsonResponse(Source, "The source, queued"), ...errors(400, 409, 413, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const row = await createSource(
          svc.env,
          svc.dbh.db,
          c.get("actor"),
          c.get("tenant").id,
          c.req.valid("json"),
        );
        return c.json(sourceOut(row), 201);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/knowledge/sources/{sourceId}",
        tags,
        summary: "One source: its status (queued, indexing, ready, failed with the reason) and chunk count",
        request: { params: SourceIdParam },
        responses: { 200: jsonResponse(Source, "The source"), ...errors(400, 404) },
      }),
      async (c) => {
        const row = await getSource(c.get("svc").dbh.db, c.get("tenant").id, c.req.valid("param").sourceId);
        return c.json(sourceOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "put",
        path: "/knowledge/sources/{sourceId}",
        tags,
        summary: "Replace a source's content and re-index it; the indexed version answers until then",
        request: { params: SourceIdParam, body: jsonBody(SourceInput) },
        responses: { 200: jsonResponse(Source, "The source, queued"), ...errors(400, 404, 413, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const { sourceId } = c.req.valid("param");
        const row = await updateSource(
          svc.env,
          svc.dbh.db,
          c.get("actor"),
          c.get("tenant").id,
          sourceId,
          c.req.valid("json"),
        );
        return c.json(sourceOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "delete",
        path: "/knowledge/sources/{sourceId}",
        tags,
        summary: "Delete a source; its chunks go in the same transaction, so answers stop using it at once",
        request: { params: SourceIdParam },
        responses: { 200: jsonResponse(Source, "The deleted source"), ...errors(400, 404) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenantId = c.get("tenant").id;
        const row = await deleteSource(svc.dbh.db, c.get("actor"), tenantId, c.req.valid("param").sourceId);
        await invalidateKnowledge(svc, tenantId);
        return c.json(sourceOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/knowledge/settings",
        tags,
        summary:
          'Knowledge settings: on or off, the "I don\'t know" answer, the relevance thresholds, the context budget, the embedding model (its key never returned)',
        responses: { 200: jsonResponse(SettingsView, "The settings and the re-embedding progress") },
      }),
      async (c) => {
        const db = c.get("svc").dbh.db;
        const tenantId = c.get("tenant").id;
        const { settings, embedding } = await readKnowledgeConfig(db, tenantId);
        const embedding_progress = await embeddingProgress(db, tenantId, embedding);
        // An embeddings gateway's URL may hold a token: an agent reads its origin only.
        const shown = { ...settings.embedding, base_url: urlForReader(c, settings.embedding.base_url) };
        return c.json({ ...settings, embedding: shown, embedding_progress }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "patch",
        path: "/knowledge/settings",
        tags,
        summary:
          "Change knowledge settings; a new embedding model re-embeds the indexed sources in the background",
        request: { body: jsonBody(SettingsPatch) },
        responses: { 200: jsonResponse(Settings, "The settings"), ...errors(400, 413, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenantId = c.get("tenant").id;
        const patch = c.req.valid("json");
        const { settings, embeddingChanged } = await writeSettings(
          svc.env,
          svc.dbh.db,
          c.get("actor"),
          tenantId,
          patch,
        );
        await invalidateKnowledge(svc, tenantId);
        if (patch.embedding && patch.embedding.provider !== "none") {
          // The settings are saved either way. A new model or key queues what lacks a vector of it;
          // the same embedding sent again does too (after failures), at most once in
          // REQUEUE_COOLDOWN_S: each queueing sends every such source to the tenant's URL, so a
          // loop of the same PATCH would make the platform post to that URL without end.
          const due =
            embeddingChanged ||
            (await svc.cache.run(
              true,
              async (r) =>
                (await r.set(`ce:reembed:${tenantId}`, "1", { nx: true, ex: REQUEUE_COOLDOWN_S })) === "OK",
            ));
          if (due)
            await queueEmbedding(svc.env, svc.dbh.db, tenantId).catch((err: unknown) =>
              console.error(
                JSON.stringify({ msg: "knowledge: re-embedding not queued", tenantId, ...errorSummary(err) }),
              ),
            );
        }
        return c.json(settings, 200);
      },
    )
    .openapi(
      scope.route({
        method: "get",
        path: "/knowledge/unanswered",
        tags,
        summary: "Questions no source answered, grouped by their normalized text, most asked first",
        request: {
          query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
        },
        responses: { 200: jsonResponse(Unanswered, "The questions"), ...errors(400) },
      }),
      async (c) => {
        const { limit } = c.req.valid("query");
        return c.json(
          { questions: await unansweredQuestions(c.get("svc").dbh.db, c.get("tenant").id, limit) },
          200,
        );
      },
    );
