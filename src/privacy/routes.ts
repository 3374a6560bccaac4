/** A tenant's privacy requests: a visitor's export and erasure, under /v1 and /admin/tenants/{id}. */
import { z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { stickyKey } from "../experiments/assign";
import { listExperiments } from "../experiments/service";
import { errors, jsonBody, jsonResponse } from "../openapi";
import type { Services } from "../services";
import type { TenantConfig } from "../tenants/config";
import type { TenantScope } from "../tenants/scope";
import { audit } from "../tenants/service";
import { conversationIdsOf, deleteSubjectRows, rowsOf, SUBJECT_TABLES, writeTombstone } from "./erasure";

// The most conversations one request reads or erases; a subject with more is answered `truncated`
// (erasure: call again, it goes on with the rest).
const MAX_CONVERSATIONS = 500;
const ID = z.string().min(1).max(200);

const Subject = z
  .object({ visitor_id: ID.optional(), user_id: ID.optional() })
  .strict()
  .refine((s) => (s.visitor_id === undefined) !== (s.user_id === undefined), {
    message:
      "name exactly one of visitor_id (a browser's visitor) and user_id (a verified or server-named user)",
  });

export const SubjectRequest = Subject.openapi("PrivacySubject");

export const Erase = z
  .object({
    visitor_id: ID.optional(),
    user_id: ID.optional(),
    confirm: ID.openapi({ description: "The same id again: an erasure cannot be undone" }),
  })
  .strict()
  .refine((s) => (s.visitor_id === undefined) !== (s.user_id === undefined), {
    message: "name exactly one of visitor_id and user_id",
  })
  .refine((s) => s.confirm === (s.visitor_id ?? s.user_id), {
    message: "confirm must repeat the id being erased",
    path: ["confirm"],
  })
  .openapi("PrivacyErase");

const Row = z.record(z.string(), z.unknown());

export const SubjectExport = z
  .object({
    subject: z.string(),
    conversations: z.array(
      z.object({
        conversation_id: z.string(),
        state: z.string().nullable(),
        messages: z.array(z.object({ role: z.string(), content: z.string(), at: z.number() })),
      }),
    ),
    turns: z.array(Row),
    conversation_summaries: z.array(Row),
    feedback: z.array(Row),
    safety_events: z.array(Row),
    active_days: z.array(Row),
    /** The inbox's index of the subject's conversations and their stored messages (src/inbox). */
    inbox_conversations: z.array(Row),
    inbox_entries: z.array(Row),
    experiment_assignments: z.array(z.object({ experiment: z.string(), variant: z.string() })),
    truncated: z.boolean(),
  })
  .openapi("PrivacyExport");

export const ErasureResult = z
  .object({
    subject_hash: z
      .string()
      .openapi({ description: "What the audit log and the tombstone name the subject by" }),
    transcripts_deleted: z.number().int(),
    rows_deleted: z.record(z.string(), z.number().int()),
    assignments_deleted: z.number().int(),
    truncated: z.boolean(),
  })
  .openapi("PrivacyErasure");

/** The stored user id of a request's subject. */
function userIdOf(s: { visitor_id?: string; user_id?: string }): string {
  return s.visitor_id !== undefined ? `visitor:${s.visitor_id}` : `user:${s.user_id}`;
}

/** The subject's sticky experiment keys in Redis, with the experiment each belongs to. */
async function assignmentKeys(svc: Services, tenantId: string, userId: string) {
  const rows = await listExperiments(svc.dbh.db, tenantId);
  return rows.map((e) => ({ experiment: e.name, key: stickyKey(tenantId, e, userId) }));
}

const stubOf = (svc: Services, tenant: TenantConfig, conversationId: string) =>
  svc.env.CONVERSATION.getByName(`${tenant.id}:${conversationId}`);

/** Export and erasure of one visitor's data. */
export const privacyRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "post",
        path: "/privacy/export",
        tags: ["privacy"],
        summary: "Everything held about one visitor or user, as JSON",
        request: { body: jsonBody(SubjectRequest) },
        responses: { 200: jsonResponse(SubjectExport, "The subject's data"), ...errors(400, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const userId = userIdOf(c.req.valid("json"));
        const db = svc.dbh.db;
        const ids = await conversationIdsOf(db, tenant.id, userId);
        const transcripts = await Promise.all(
          ids.slice(0, MAX_CONVERSATIONS).map(async (id) => {
            const t = await stubOf(svc, tenant, id).transcript(tenant.id);
            // An object already gone (retention) or someone else's answers no messages.
            const mine = t.ok && t.value.view.userId === userId;
            return {
              conversation_id: id,
              state: mine ? t.value.view.state : null,
              messages: mine
                ? t.value.messages.map((m) => ({ role: m.role, content: m.content, at: m.at }))
                : [],
            };
          }),
        );
        const [turns, summaries, feedback, safety, days, inbox, entries] = await Promise.all(
          SUBJECT_TABLES.map((t) => rowsOf(db, t, tenant.id, userId)),
        );
        const keys = await assignmentKeys(svc, tenant.id, userId);
        const variants =
          keys.length === 0
            ? []
            : await svc.cache.run<(string | null)[]>([], (r) => r.mget(...keys.map((k) => k.key)));
        return c.json(
          {
            subject: userId,
            conversations: transcripts,
            turns: turns ?? [],
            conversation_summaries: summaries ?? [],
            feedback: feedback ?? [],
            safety_events: safety ?? [],
            active_days: days ?? [],
            inbox_conversations: inbox ?? [],
            // The search vector is the entries' own text again, in the database's form.
            inbox_entries: (entries ?? []).map(({ tsv: _tsv, ...e }) => e),
            experiment_assignments: keys.flatMap((k, i) => {
              const variant = variants[i];
              return typeof variant === "string" ? [{ experiment: k.experiment, variant }] : [];
            }),
            truncated: ids.length > MAX_CONVERSATIONS,
          },
          200,
        );
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/privacy/erase",
        tags: ["privacy"],
        summary: "Erase one visitor or user: transcripts, per-event analytics, assignments; counts stay",
        request: { body: jsonBody(Erase) },
        responses: { 200: jsonResponse(ErasureResult, "What was erased"), ...errors(400, 415) },
      }),
      async (c) => {
        const svc = c.get("svc");
        const tenant = c.get("tenant");
        const userId = userIdOf(c.req.valid("json"));
        const db = svc.dbh.db;
        // The tombstone first: from here on, the consumer drops this subject's late messages.
        const hash = await writeTombstone(db, tenant.id, userId);
        const ids = await conversationIdsOf(db, tenant.id, userId);
        const batch = ids.slice(0, MAX_CONVERSATIONS);
        const forgotten = await Promise.all(
          batch.map((id) => stubOf(svc, tenant, id).forget(tenant.id, userId)),
        );
        const keys = await assignmentKeys(svc, tenant.id, userId);
        const assignments =
          keys.length === 0 ? 0 : await svc.cache.run(0, (r) => r.del(...keys.map((k) => k.key)));
        // More conversations than one request erases: this one's rows go with them, a retry does the rest.
        const truncated = ids.length > MAX_CONVERSATIONS;
        const rows = await db.transaction(async (tx) => {
          const counts = await deleteSubjectRows(tx, tenant.id, userId, truncated ? batch : undefined);
          await audit(tx, c.get("actor"), tenant.id, "visitor.erase", hash, {
            transcripts: forgotten.filter(Boolean).length,
            rows: counts,
          });
          return counts;
        });
        return c.json(
          {
            subject_hash: hash,
            transcripts_deleted: forgotten.filter(Boolean).length,
            rows_deleted: rows,
            assignments_deleted: assignments,
            truncated,
          },
          200,
        );
      },
    );
