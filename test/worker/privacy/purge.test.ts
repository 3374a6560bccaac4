import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { questionCacheKey } from "../../../src/knowledge/embed";
import type { EscalationNotice } from "../../../src/notify/messages";
import { isTenantKey, purgeTenant, tenantHash } from "../../../src/privacy/purge";
import {
  batchOf,
  conversationEvent,
  deliver,
  feedbackEvent,
  safetyEvent,
  turnEvent,
} from "../analytics/helpers";
import { chatTenant } from "../chat/helpers";
import { eventually } from "../eventually";
import { admin, envelope, query, send, sql } from "../helpers";
import { populatedTenant, redis } from "./fixture";

/** A tenant with data in every store: both chat APIs, feedback, a safety hit, an experiment, a tool, an operator, knowledge, alert settings. */
const populated = () =>
  populatedTenant(
    [
      ["ann", "hello, where is my parcel"],
      ["bob", "tell me about weapons"],
    ],
    { everyStore: true },
  );

/** Rows naming `id` anywhere in their text, per table: every table of the schema, read generically. */
async function rowsNaming(id: string): Promise<Record<string, number>> {
  const tables = await query<{
    t: string;
  }>(sql`select distinct table_name as t from information_schema.columns
    where table_schema = current_schema() and data_type in ('text', 'character varying', 'jsonb', 'json')`);
  // Every table's count in one statement: a query per table (one connection each) took seconds.
  const counts = await query<{ t: string; n: number }>(
    sql.join(
      tables.map(
        ({ t }) =>
          sql`select ${t}::text as t, count(*)::int as n from ${sql.raw(`"${t}"`)} x where x::text like ${`%${id}%`}`,
      ),
      sql` union all `,
    ),
  );
  const out: Record<string, number> = {};
  for (const { t, n } of counts) if (n > 0) out[t] = n;
  return out;
}

/** Rows in a Durable Object's SQLite tables and keys in its KV storage. */
function storedRows(stub: DurableObjectStub): Promise<number> {
  return runInDurableObject(stub, async (_instance, state: DurableObjectState) => {
    const tables = state.storage.sql
      .exec<{ name: string }>("select name from sqlite_master where type = 'table' and name not like '_cf_%'")
      .toArray();
    let n = (await state.storage.list()).size;
    for (const { name } of tables) {
      n += Number(state.storage.sql.exec(`select count(*) as n from "${name}"`).one().n);
    }
    return n;
  });
}

async function redisKeys(id: string): Promise<string[]> {
  return redis().cache.run<string[]>(["redis unavailable"], async (r) => {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, { match: `*${id}*`, count: 1_000 });
      cursor = String(next);
      found.push(...keys);
    } while (cursor !== "0");
    return found;
  });
}

const purge = (id: string, body: unknown = { confirm: id }) => admin("POST", `/tenants/${id}/purge`, body);

/** An escalation notice of the tenant, as the conversation object queues it. */
function escalation(tenantId: string): EscalationNotice {
  const at = Date.now();
  return {
    type: "escalation",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "conv-late",
    userId: "user:ann",
    to: "desk@shop.example",
    reason: "visitor asked for a human",
    at,
    transcript: [{ role: "user", content: "a human please", at }],
  };
}

describe("tenant purge", () => {
  it("removes every row, object storage and Redis key of the tenant, and nothing of another", async () => {
    const [t, other] = await Promise.all([populated(), populated()]);
    const gate = env.TENANT_GATE.getByName(t.id);
    // Before: the id is in many tables, the objects hold data, Redis has keys.
    const before = await rowsNaming(t.id);
    for (const table of [
      "tenants",
      "api_keys",
      "turns",
      "conversations",
      "feedback",
      "safety_events",
      "experiments",
      "tools",
      "operators",
      "knowledge_sources",
      "alert_settings",
      "audit_log",
      "tenant_daily",
      // The inbox index (src/inbox), written from the conversation objects' inbox events.
      "inbox_conversations",
      "inbox_entries",
    ]) {
      expect(before[table], table).toBeGreaterThan(0);
    }
    expect(await storedRows(gate)).toBeGreaterThan(0);
    for (const c of t.conversations) {
      expect(await storedRows(env.CONVERSATION.getByName(`${t.id}:${c}`))).toBeGreaterThan(0);
    }
    // A question's cached vector, as the chat path keeps it for a tenant with an embedding model.
    const vector = await questionCacheKey(
      t.id,
      { provider: "workers-ai", model: "@cf/baai/bge-m3" },
      "parcel?",
    );
    await redis().cache.setJson(vector, [0.1, 0.2], 3_600);
    expect(await redisKeys(t.id)).toContain(vector);
    const otherBefore = await rowsNaming(other.id);

    expect((await admin("DELETE", `/tenants/${t.id}`)).status).toBe(200);
    const res = await purge(t.id);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      done: boolean;
      transcripts_deleted: number;
      rows_deleted: Record<string, number>;
    };
    expect(body.done).toBe(true);
    expect(body.transcripts_deleted).toBe(t.conversations.length);
    expect(body.rows_deleted.tenants).toBe(1);

    expect(await rowsNaming(t.id)).toEqual({});
    // A fresh stub: the purge reset the gate, which breaks stubs made before.
    expect(await storedRows(env.TENANT_GATE.getByName(t.id))).toBe(0);
    for (const c of t.conversations) {
      expect(await storedRows(env.CONVERSATION.getByName(`${t.id}:${c}`))).toBe(0);
    }
    expect(await redisKeys(t.id)).toEqual([]);
    // The one record left: who purged, when, counts; the tenant only as a hash.
    const entries = await query<{
      tenant_id: string | null;
      actor: string;
      data: { rows: Record<string, number> };
    }>(
      sql`select tenant_id, actor, data from audit_log where action = 'tenant.purge'
        and target = ${`sha256:${await tenantHash(t.id)}`}`,
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]?.tenant_id).toBeNull();
    expect(entries[0]?.actor).toBe("admin");
    expect(entries[0]?.data.rows.turns).toBe(3);

    // Messages produced before the purge and delivered after it: acked, dropped, nothing written.
    const analytics = await deliver(
      batchOf([
        turnEvent(t.id, { userId: "user:ann", conversationId: t.conversations[0] }),
        conversationEvent(t.id, { userId: "user:ann", conversationId: t.conversations[0] }),
        feedbackEvent(t.id, { userId: "user:bob", comment: "late" }),
        safetyEvent(t.id, { userId: "user:bob" }),
      ]),
    );
    expect(analytics.explicitAcks).toHaveLength(4);
    expect(analytics.retryMessages).toHaveLength(0);
    const notify = await deliver(batchOf([escalation(t.id)], { queue: "chatedge-notify" }));
    expect(notify.explicitAcks).toHaveLength(1);
    const knowledge = await deliver(
      batchOf([{ tenantId: t.id, sourceId: crypto.randomUUID(), version: 1 }], {
        queue: "chatedge-knowledge",
      }),
    );
    expect(knowledge.explicitAcks).toHaveLength(1);
    expect(await rowsNaming(t.id)).toEqual({});

    expect(await rowsNaming(other.id)).toEqual(otherBefore);
    expect((await send("GET", "/v1/tools", other.key)).status).toBe(200);
    // Gone: a second purge finds no tenant.
    expect((await purge(t.id)).status).toBe(404);
  });

  it("is refused while active, without the confirmation, and with a tenant key", async () => {
    const t = await chatTenant();
    const active = await purge(t.id);
    expect(active.status).toBe(409);
    expect((await envelope(active)).code).toBe("CONFLICT");
    expect((await admin("DELETE", `/tenants/${t.id}`)).status).toBe(200);
    for (const body of [{ confirm: `${t.id}x` }, {}, { confirm: t.id, extra: 1 }]) {
      const wrong = await purge(t.id, body);
      expect(wrong.status).toBe(400);
      expect((await envelope(wrong)).code).toBe("VALIDATION_FAILED");
    }
    const withKey = await send("POST", `/admin/tenants/${t.id}/purge`, t.key, { confirm: t.id });
    expect(withKey.status).toBe(401);
    // Nothing changed: the tenant is still there.
    expect((await admin("GET", `/tenants/${t.id}`)).status).toBe(200);
  });
});

describe("a purge in bounded steps", () => {
  it("answers not done while work is left, and each next call goes on where the last stopped", async () => {
    const t = await chatTenant();
    for (const user of ["ann", "bob"]) {
      const conv = (
        (await (await send("POST", "/v1/conversations", t.key, { user })).json()) as { id: string }
      ).id;
      await send("POST", `/v1/conversations/${conv}/messages`, t.key, { content: "hello" });
    }
    await eventually(async () => {
      const [r] = await query<{ n: number }>(
        sql`select count(*)::int as n from turns where tenant_id = ${t.id}`,
      );
      expect(r?.n).toBe(2);
    });
    expect((await admin("DELETE", `/tenants/${t.id}`)).status).toBe(200);
    const svc = redis();
    const who = { actor: "admin", requestId: "purge-steps" };
    const tiny = { conversations: 1, batch: 1, statements: 3 };
    const steps = [];
    // Bounded by calls, not time: a call that finds Redis slow stops early (202) and the next goes on.
    for (let i = 0; i < 200; i++) {
      const p = await purgeTenant(svc, who, t.id, tiny);
      steps.push(p);
      if (p.done) break;
      // Delivered between two calls, behind the purge's deletes: dropped (the scan below finds none).
      if (i === 0) {
        const late = await deliver(batchOf([turnEvent(t.id, { userId: "user:ann" })]));
        expect(late.explicitAcks).toHaveLength(1);
      }
    }
    expect(steps.length).toBeGreaterThan(3);
    expect(steps.at(-1)?.done).toBe(true);
    expect(steps.slice(0, -1).every((p) => !p.done)).toBe(true);
    // One conversation object per call, at most three one-row statements per call.
    expect(steps.map((p) => p.transcripts_deleted).slice(0, 2)).toEqual([1, 1]);
    expect(await rowsNaming(t.id)).toEqual({});
    // Gone: the route finds no tenant.
    expect((await purge(t.id)).status).toBe(404);
  });
});

describe("isTenantKey", () => {
  it("takes the tenant's keys and leaves an id that merely contains it", () => {
    expect(isTenantKey("ce:ab:acme:tone:s1:user:x", "acme")).toBe(true);
    expect(isTenantKey("ce:v2:tenant:acme", "acme")).toBe(true);
    expect(isTenantKey("ce:v3:tenant:acme", "acme")).toBe(true);
    expect(isTenantKey("ce:v4:tenant:acme", "acme")).toBe(true);
    expect(isTenantKey("ce:tools:acme", "acme")).toBe(true);
    expect(isTenantKey("ce:ab:acme-2:tone:s1:user:acme", "acme")).toBe(false);
    expect(isTenantKey("ce:v2:tenant:acme-2", "acme")).toBe(false);
    expect(isTenantKey("ce:v3:tenant:acme-2", "acme")).toBe(false);
    // Question vectors (src/knowledge/embed.ts) name the tenant first.
    expect(isTenantKey("kq:acme:model:question", "acme")).toBe(true);
    expect(isTenantKey("kq:acme-2:model:question", "acme")).toBe(false);
  });
});
