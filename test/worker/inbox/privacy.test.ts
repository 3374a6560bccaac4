import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDb } from "../../../src/db/client";
import { loadEnv } from "../../../src/env";
import { DAY_MS, sweepRetention } from "../../../src/privacy/retention";
import { batchOf, deliver } from "../analytics/helpers";
import { admin, createKey, createTenant, send } from "../helpers";
import { entries, entryRows, inboxEvent, inboxRows } from "./helpers";

async function consume(bodies: unknown[]) {
  const res = await deliver(batchOf(bodies));
  expect(res.retryMessages).toEqual([]);
}

/** A tenant with two visitors' conversations in the inbox: ann's c-ann (2 entries), bob's c-bob (1). */
async function indexed() {
  const { tenant_id: t } = await createTenant();
  const { key } = await createKey(t);
  await consume([
    inboxEvent(t, { conversationId: "c-ann", userId: "visitor:ann", version: 2, entries: entries(1, 2) }),
    inboxEvent(t, { conversationId: "c-bob", userId: "visitor:bob", version: 1, entries: entries(1, 1) }),
  ]);
  return { t, key };
}

describe("the inbox under the privacy rules", () => {
  it("a visitor's export includes their inbox rows and messages, nobody else's", async () => {
    const { key } = await indexed();
    const res = await send("POST", "/v1/privacy/export", key, { visitor_id: "ann" });
    expect(res.status).toBe(200);
    const out = (await res.json()) as {
      inbox_conversations: { conversation_id: string; status: string }[];
      inbox_entries: Record<string, unknown>[];
    };
    expect(out.inbox_conversations.map((r) => [r.conversation_id, r.status])).toEqual([["c-ann", "open"]]);
    expect(out.inbox_entries.map((e) => [e.conversation_id, e.seq, e.content])).toEqual([
      ["c-ann", 1, "message 1"],
      ["c-ann", 2, "message 2"],
    ]);
    expect(Object.keys(out.inbox_entries[0] ?? {})).not.toContain("tsv");
  });

  it("erasure deletes the visitor's inbox rows and drops their late inbox events", async () => {
    const { t, key } = await indexed();
    const res = await send("POST", "/v1/privacy/erase", key, { visitor_id: "ann", confirm: "ann" });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { rows_deleted: Record<string, number> };
    expect(out.rows_deleted).toMatchObject({ inbox_conversations: 1, inbox_entries: 2 });
    expect((await inboxRows(t)).map((r) => r.conversation_id)).toEqual(["c-bob"]);
    expect((await entryRows(t)).map((r) => r.conversation_id)).toEqual(["c-bob"]);
    // A message of ann's object still in the queue after the erasure writes nothing.
    await consume([
      inboxEvent(t, { conversationId: "c-ann", userId: "visitor:ann", version: 3, entries: entries(3, 3) }),
    ]);
    expect((await inboxRows(t)).map((r) => r.conversation_id)).toEqual(["c-bob"]);
  });

  it("retention deletes inbox rows and messages past the tenant's cutoff, and keeps the rest", async () => {
    const { tenant_id: t } = await createTenant({ retention_days: 30 });
    const old = Date.now() - 40 * DAY_MS;
    await consume([
      inboxEvent(t, {
        conversationId: "c-old",
        version: 1,
        at: old,
        startedAt: old,
        lastActivityAt: old,
        entries: [{ seq: 1, role: "user", author: null, content: "long ago", at: old }],
      }),
      inboxEvent(t, { conversationId: "c-new", version: 1, entries: entries(1, 1) }),
    ]);
    const loaded = loadEnv(env);
    if (!loaded.ok) throw new Error(loaded.problems.join("; "));
    const h = openDb(loaded.env);
    try {
      const report = await sweepRetention(h.db, loaded.env, Date.now());
      expect(report.deleted.inbox_conversations).toBeGreaterThanOrEqual(1);
      expect(report.deleted.inbox_entries).toBeGreaterThanOrEqual(1);
    } finally {
      await h.close();
    }
    expect((await inboxRows(t)).map((r) => r.conversation_id)).toEqual(["c-new"]);
    expect((await entryRows(t)).map((r) => r.conversation_id)).toEqual(["c-new"]);
  });

  it("a tenant's purge deletes its inbox, conversations known only to the inbox included", async () => {
    const { t } = await indexed();
    expect((await admin("DELETE", `/tenants/${t}`)).status).toBe(200);
    let body: { done: boolean; rows_deleted: Record<string, number> } | undefined;
    for (let i = 0; i < 10 && !body?.done; i++) {
      const res = await admin("POST", `/tenants/${t}/purge`, { confirm: t });
      expect([200, 202]).toContain(res.status);
      body = (await res.json()) as typeof body;
    }
    expect(body?.done).toBe(true);
    expect(body?.rows_deleted).toMatchObject({ inbox_conversations: 2, inbox_entries: 3 });
    expect(await inboxRows(t)).toEqual([]);
    expect(await entryRows(t)).toEqual([]);
    // A message still in the queue for the purged tenant brings nothing back.
    await consume([inboxEvent(t, { conversationId: "c-late", version: 1, entries: entries(1, 1) })]);
    expect(await inboxRows(t)).toEqual([]);
    expect(await entryRows(t)).toEqual([]);
  });
});
