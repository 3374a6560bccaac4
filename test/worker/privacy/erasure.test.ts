import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stickyKey } from "../../../src/experiments/assign";
import { batchOf, deliver, feedbackEvent, turnEvent } from "../analytics/helpers";
import { chatTenant } from "../chat/helpers";
import { defOfJson } from "../experiments/helpers";
import { admin, createKey, envelope, query, send, sql } from "../helpers";
import { populatedTenant, redis } from "./fixture";

type Export = {
  subject: string;
  conversations: {
    conversation_id: string;
    state: string | null;
    messages: { role: string; content: string }[];
  }[];
  turns: { conversation_id: string }[];
  conversation_summaries: { conversation_id: string }[];
  feedback: { comment: string | null }[];
  safety_events: unknown[];
  active_days: unknown[];
  experiment_assignments: { experiment: string; variant: string }[];
  truncated: boolean;
};

/** A tenant whose visitor `user:ann` had two ended conversations, with rows in every store, and another user's. */
const populated = () =>
  populatedTenant([
    ["ann", "hello, where is my parcel"],
    ["ann", "tell me about weapons"],
    ["bob", "bob's question"],
  ]);

// One populated tenant for the tests that only read (or are refused): the consumer's batching makes
// populating take seconds.
let shared: ReturnType<typeof populated> | undefined;
const readOnly = () => {
  shared ??= populated();
  return shared;
};

const erase = (key: string, body: unknown) => send("POST", "/v1/privacy/erase", key, body);

describe("a visitor's export", () => {
  it("returns transcripts, rows and assignments of that user only", async () => {
    const t = await readOnly();
    const res = await send("POST", "/v1/privacy/export", t.key, { user_id: "ann" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Export;
    expect(body.subject).toBe("user:ann");
    expect(body.conversations.map((c) => c.conversation_id).sort()).toEqual(
      t.conversations.slice(0, 2).sort(),
    );
    const said = body.conversations.flatMap((c) =>
      c.messages.filter((m) => m.role === "user").map((m) => m.content),
    );
    expect(said.sort()).toEqual(["hello, where is my parcel", "tell me about weapons"]);
    expect(body.turns).toHaveLength(2);
    expect(body.conversation_summaries).toHaveLength(2);
    expect(body.feedback.map((f) => f.comment)).toEqual(["ann liked it", "ann liked it"]);
    expect(body.safety_events).toHaveLength(1);
    expect(body.active_days.length).toBeGreaterThanOrEqual(1);
    expect(body.experiment_assignments).toEqual([{ experiment: "tone", variant: "B" }]);
    expect(JSON.stringify(body)).not.toContain("bob");
  });

  it("is the same under /admin/tenants/{id} and refuses other tenants, publishable keys and bad subjects", async () => {
    const t = await readOnly();
    const viaAdmin = await admin("POST", `/tenants/${t.id}/privacy/export`, { user_id: "ann" });
    expect(viaAdmin.status).toBe(200);
    expect(((await viaAdmin.json()) as Export).turns).toHaveLength(2);

    const other = await chatTenant();
    const foreign = (await (
      await send("POST", "/v1/privacy/export", other.key, { user_id: "ann" })
    ).json()) as Export;
    expect(foreign.conversations).toEqual([]);
    expect(foreign.turns).toEqual([]);

    const pk = await createKey(t.id, "publishable");
    expect((await send("POST", "/v1/privacy/export", pk.key, { user_id: "ann" })).status).toBe(403);
    for (const bad of [
      {},
      { user_id: "ann", visitor_id: "v" },
      { user_id: "" },
      { user_id: "ann", extra: 1 },
    ]) {
      const res = await send("POST", "/v1/privacy/export", t.key, bad);
      expect(res.status).toBe(400);
      expect((await envelope(res)).code).toBe("VALIDATION_FAILED");
    }
  });
});

describe("a visitor's erasure", () => {
  it("needs the id confirmed and changes nothing without it", async () => {
    const t = await readOnly();
    const res = await erase(t.key, { user_id: "ann", confirm: "bob" });
    expect(res.status).toBe(400);
    expect(JSON.stringify((await envelope(res)).details)).toContain("confirm");
    const [n] = await query<{ n: number }>(
      sql`select count(*)::int as n from turns where tenant_id = ${t.id}`,
    );
    expect(n?.n).toBe(3);
  });

  it("removes the user from objects, Postgres and Redis, keeps counts, audits without the id, drops late messages", async () => {
    const t = await populated();
    // A turn row pairing ann with bob's conversation, as the OpenAI route records one whose server
    // named that conversation (X-Conversation-Id): the erasure finds it, and must leave bob's alone.
    await deliver(batchOf([turnEvent(t.id, { userId: "user:ann", conversationId: t.conversations[2] })]));
    const [before] = await query<{ turns: number; conversations: number }>(
      sql`select sum(turns)::int as turns, sum(conversations)::int as conversations from tenant_daily where tenant_id = ${t.id}`,
    );
    const produced = Date.now();
    const res = await erase(t.key, { user_id: "ann", confirm: "ann" });
    expect(res.status).toBe(200);
    const out = (await res.json()) as {
      subject_hash: string;
      transcripts_deleted: number;
      rows_deleted: Record<string, number>;
      assignments_deleted: number;
    };
    expect(out.transcripts_deleted).toBe(2);
    expect(out.rows_deleted).toMatchObject({ turns: 3, conversations: 2, feedback: 2, safety_events: 1 });
    expect(out.assignments_deleted).toBe(1);

    // Durable Objects: the two conversations' storage is empty; bob's is whole.
    for (const [i, conv] of t.conversations.entries()) {
      const stub = env.CONVERSATION.getByName(`${t.id}:${conv}`);
      const tables = await runInDurableObject(stub, (_o, state) =>
        state.storage.sql
          .exec("select name from sqlite_master where type = 'table' and name in ('meta', 'messages')")
          .toArray(),
      );
      expect(tables).toHaveLength(i < 2 ? 0 : 2);
    }
    // Postgres: nothing names ann; bob's rows stay; the rollups are unchanged.
    for (const table of [
      "turns",
      "conversations",
      "feedback",
      "safety_events",
      "tenant_daily_users",
      "dead_letters",
    ]) {
      const rows = await query(sql`select * from ${sql.raw(table)} where tenant_id = ${t.id}`);
      expect(JSON.stringify(rows)).not.toContain("user:ann");
    }
    const [bob] = await query<{ n: number }>(
      sql`select count(*)::int as n from turns where tenant_id = ${t.id}`,
    );
    expect(bob?.n).toBe(1);
    const [after] = await query<{ turns: number; conversations: number }>(
      sql`select sum(turns)::int as turns, sum(conversations)::int as conversations from tenant_daily where tenant_id = ${t.id}`,
    );
    expect(after).toEqual(before);
    // Redis: the assignment is gone.
    const variant = await redis().cache.run<string | null>("unreachable", (r) =>
      r.get(stickyKey(t.id, defOfJson(t.exp), "user:ann")),
    );
    expect(variant).toBeNull();
    // The audit entry names the hash, never the user.
    const audits = await query<{ target: string; data: unknown }>(
      sql`select target, data from audit_log where tenant_id = ${t.id} and action = 'visitor.erase'`,
    );
    expect(audits).toHaveLength(1);
    expect(audits[0]?.target).toBe(out.subject_hash);
    expect(JSON.stringify(audits)).not.toContain("ann");

    // A message produced before the erasure and delivered after it: dropped, acked, not written.
    const late = [
      turnEvent(t.id, { userId: "user:ann", conversationId: t.conversations[0], at: produced }),
      feedbackEvent(t.id, { userId: "user:ann", comment: "late", at: produced }),
      turnEvent(t.id, { userId: "user:bob", conversationId: "conv-bob-late", at: produced }),
    ];
    const result = await deliver(batchOf(late));
    expect(result.explicitAcks).toHaveLength(3);
    expect(result.retryMessages).toHaveLength(0);
    const users = await query<{
      user_id: string;
    }>(sql`select user_id from turns where tenant_id = ${t.id} union all
      select user_id from feedback where tenant_id = ${t.id}`);
    expect(users.map((u) => u.user_id).sort()).toEqual(["user:bob", "user:bob", "user:bob"]);

    // An export now finds nothing.
    const exp = (await (
      await send("POST", "/v1/privacy/export", t.key, { user_id: "ann" })
    ).json()) as Export;
    expect(exp).toMatchObject({ conversations: [], turns: [], feedback: [], experiment_assignments: [] });

    // The visitor's later visits are new data: the tombstone drops only what is dated before the
    // erasure (here ten minutes ago), not what the visitor does afterwards.
    await query(
      sql`update erasures set erased_at = now() - interval '10 minutes' where subject_hash = ${out.subject_hash}`,
    );
    const again = [
      turnEvent(t.id, {
        userId: "user:ann",
        conversationId: "conv-ann-before",
        at: Date.now() - 11 * 60_000,
      }),
      turnEvent(t.id, { userId: "user:ann", conversationId: "conv-ann-after", at: Date.now() }),
    ];
    expect((await deliver(batchOf(again))).explicitAcks).toHaveLength(2);
    const ann = await query<{ conversation_id: string }>(
      sql`select conversation_id from turns where tenant_id = ${t.id} and user_id = 'user:ann'`,
    );
    expect(ann.map((a) => a.conversation_id)).toEqual(["conv-ann-after"]);
  });
});
