import { describe, expect, it } from "vitest";
import type { InboxConversation, InboxItem } from "../../../src/inbox/schemas";
import { batchOf, deliver, safetyEvent, turnEvent } from "../analytics/helpers";
import { chatTenant } from "../chat/helpers";
import { eventually } from "../eventually";
import { consoleSend, operator } from "../handoff/helpers";
import { admin, createKey, createTenant, envelope, query, send, sql } from "../helpers";
import { entries, inboxEvent } from "./helpers";

type Page = { data: InboxItem[]; next_cursor: string | null };

async function consume(bodies: unknown[]) {
  const res = await deliver(batchOf(bodies));
  expect(res.retryMessages).toEqual([]);
}

const get = (key: string, path: string) => send("GET", `/v1${path}`, key);

async function page(key: string, qs: string): Promise<Page> {
  const res = await get(key, `/inbox${qs}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Page;
}

/** A tenant with a secret key and five indexed conversations, c-1 the oldest activity, c-5 the newest. */
async function seeded() {
  const { tenant_id: t } = await createTenant();
  const { key } = await createKey(t);
  const texts = [
    "My parcel never arrived, I want a refund",
    "Where is the invoice for order 1234?",
    "Can I return these shoes?",
    "The refund went to the wrong card",
    "Hello there",
  ];
  const statuses = ["open", "waiting", "human", "resolved", "ended"] as const;
  await consume(
    [1, 2, 3, 4, 5].map((n) =>
      inboxEvent(t, {
        conversationId: `c-${n}`,
        version: 2,
        status: statuses[n - 1],
        channel: n % 2 === 0 ? "api" : "web",
        variant: n <= 2 ? "b" : null,
        experiment: n <= 2 ? "greeting" : null,
        lastActivityAt: Date.now() - (10 - n) * 60_000,
        waitingSince: n === 2 ? Date.now() - 8 * 60_000 : null,
        holder: n === 3 ? { operatorId: "op-1", name: "Anna" } : null,
        totalCostUsd: n / 1000,
        turnCount: 1,
        entries: entries(1, 2, (seq) => (seq === 1 ? (texts[n - 1] ?? "") : `answer to ${n}`)),
      }),
    ),
  );
  return { t, key };
}

describe("GET /inbox: the list", () => {
  it("lists newest activity first, with status, channel, variant, cost, holder and a preview", async () => {
    const { key } = await seeded();
    const { data, next_cursor } = await page(key, "");
    expect(next_cursor).toBeNull();
    expect(data.map((i) => i.id)).toEqual(["c-5", "c-4", "c-3", "c-2", "c-1"]);
    expect(data.map((i) => i.status)).toEqual(["ended", "resolved", "human", "waiting", "open"]);
    const c2 = data.find((i) => i.id === "c-2");
    expect(c2).toMatchObject({
      channel: "api",
      experiment: "greeting",
      variant: "b",
      total_cost_usd: 0.002,
      turns: 1,
      holder: null,
      preview: "answer to 2",
    });
    expect(typeof c2?.waiting_since).toBe("number");
    expect(data.find((i) => i.id === "c-3")?.holder).toEqual({ operator_id: "op-1", name: "Anna" });
  });

  it("filters by status, channel and variant, and searches the messages' text", async () => {
    const { key } = await seeded();
    const ids = async (qs: string) => (await page(key, qs)).data.map((i) => i.id);
    expect(await ids("?status=waiting")).toEqual(["c-2"]);
    expect(await ids("?channel=api")).toEqual(["c-4", "c-2"]);
    expect(await ids("?variant=b")).toEqual(["c-2", "c-1"]);
    expect(await ids("?variant=b&channel=web")).toEqual(["c-1"]);
    // Stemmed: "refunds" finds "refund"; the preview is the message that matched.
    const found = await page(key, "?q=refunds");
    expect(found.data.map((i) => i.id)).toEqual(["c-4", "c-1"]);
    expect(found.data[0]?.preview).toBe("The refund went to the wrong card");
    expect(await ids(`?q=${encodeURIComponent('"wrong card"')}`)).toEqual(["c-4"]);
    expect(await ids(`?q=${encodeURIComponent("refund -card")}`)).toEqual(["c-1"]);
    expect(await ids("?q=refund&status=open")).toEqual(["c-1"]);
    expect(await ids("?q=nothingmatchesthis")).toEqual([]);
  });

  it("pages with an opaque cursor until next_cursor is null, each item once", async () => {
    const { key } = await seeded();
    const seen: string[] = [];
    let cursor: string | null = "";
    let pages = 0;
    while (cursor !== null) {
      const p = await page(key, `?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(p.data.length).toBeLessThanOrEqual(2);
      seen.push(...p.data.map((i) => i.id));
      cursor = p.next_cursor;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(["c-5", "c-4", "c-3", "c-2", "c-1"]);
  });

  it("takes search text as data: tsquery syntax and SQL metacharacters find nothing and break nothing", async () => {
    const { t, key } = await seeded();
    for (const q of [
      "refund & !(",
      "a:* | b <-> c",
      "'); delete from inbox_entries; --",
      "x' or '1'='1",
      "\\",
      "%_%",
      "$1",
      // Only stop words: an empty query, which matches nothing rather than failing.
      "the of and",
    ]) {
      const res = await get(key, `/inbox?q=${encodeURIComponent(q)}`);
      expect(res.status, q).toBe(200);
      const body = (await res.json()) as Page;
      expect(body.data.map((i) => i.id).includes("c-5"), q).toBe(false);
    }
    // "refund & !(" still searches for the word it holds.
    expect((await page(key, `?q=${encodeURIComponent("refund & !(")}`)).data.map((i) => i.id)).toEqual([
      "c-4",
      "c-1",
    ]);
    const [n] = await query<{ n: number }>(
      sql`select count(*)::int as n from inbox_entries where tenant_id = ${t}`,
    );
    expect(n?.n).toBe(10);
  });

  it("bounds limit and answers 400 in the envelope for a forged cursor or an unknown filter", async () => {
    const { key } = await seeded();
    const b64 = (v: string) => btoa(v).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    for (const qs of [
      "?limit=0",
      "?limit=101",
      "?limit=ten",
      "?status=escalated",
      "?sort=id",
      `?q=${"x".repeat(201)}`,
      "?q=a%00b",
      "?cursor=not%20base64!",
      `?cursor=${b64("{}")}`,
      `?cursor=${b64('[1e20,"c-1"]')}`,
      `?cursor=${b64('[-1,"c-1"]')}`,
      `?cursor=${b64('[1.5,"c-1"]')}`,
      `?cursor=${b64('[1,"c-1\' or 1=1 --"]')}`,
      `?cursor=${b64('[1,"c-1",3]')}`,
      `?cursor=${b64("\u00ff\u00fe")}`,
      "?cursor=AAAA",
      `?cursor=${"A".repeat(201)}`,
    ]) {
      const res = await get(key, `/inbox${qs}`);
      expect(res.status, qs).toBe(400);
      expect((await envelope(res)).code, qs).toBe("VALIDATION_FAILED");
    }
    expect((await page(key, "?limit=100")).data).toHaveLength(5);
    expect((await page(key, "?limit=1")).data.map((i) => i.id)).toEqual(["c-5"]);
  });
});

describe("GET /inbox/{id}: one conversation", () => {
  it("answers the indexed transcript and each turn's model, tokens, cost, latency, blocked topic and tools", async () => {
    const { t, key } = await seeded();
    const at = Date.now() - 30_000;
    await consume([
      turnEvent(t, {
        conversationId: "c-1",
        turnIndex: 0,
        at,
        model: "fast",
        calledModel: "gpt-4o-mini",
        inputTokens: 120,
        outputTokens: 40,
        costUsd: 0.0003,
        latencyMs: 850,
        toolsUsed: ["lookup_order"],
        tools: [{ name: "lookup_order", ok: false, failure: "timeout", latencyMs: 5000 }],
      }),
      turnEvent(t, {
        conversationId: "c-1",
        turnIndex: 1,
        at: at + 1_000,
        outcome: "blocked",
        calledModel: null,
      }),
      safetyEvent(t, { conversationId: "c-1", at: at + 1_000, topic: "medical advice" }),
      turnEvent(t, { conversationId: "c-2", turnIndex: 0, at }),
    ]);
    const res = await get(key, "/inbox/c-1");
    expect(res.status).toBe(200);
    const body = (await res.json()) as InboxConversation;
    expect(body).toMatchObject({ id: "c-1", status: "open", variant: "b" });
    expect(body.entries.map((e) => [e.seq, e.role, e.content])).toEqual([
      [1, "user", "My parcel never arrived, I want a refund"],
      [2, "assistant", "answer to 1"],
    ]);
    expect(body.turns).toEqual([
      {
        turn_index: 0,
        at,
        model: "fast",
        called_model: "gpt-4o-mini",
        input_tokens: 120,
        output_tokens: 40,
        cost_usd: 0.0003,
        latency_ms: 850,
        outcome: "ok",
        error: null,
        blocked_topic: null,
        tools_used: ["lookup_order"],
        tools: [{ name: "lookup_order", ok: false, failure: "timeout", latency_ms: 5000 }],
      },
      expect.objectContaining({
        turn_index: 1,
        outcome: "blocked",
        blocked_topic: "medical advice",
        called_model: null,
      }),
    ]);
  });

  it("reads a live conversation from its object, ahead of the index, and the index catches up through the queue", async () => {
    const { id: t, key } = await chatTenant();
    const started = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
    const said = await send("POST", `/v1/conversations/${started.id}/messages`, key, {
      content: "hello, bot",
    });
    expect(said.status).toBe(200);
    const res = await get(key, `/inbox/${started.id}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as InboxConversation;
    expect(body).toMatchObject({ id: started.id, status: "open", turns: expect.any(Array) });
    expect(body.entries.map((e) => [e.seq, e.role])).toEqual([
      [1, "user"],
      [2, "assistant"],
    ]);
    expect(body.entries[0]?.content).toBe("hello, bot");
    // The object's inbox events reach the index through the analytics queue (the real consumer).
    const listed = await eventually(async () => {
      const p = await page(key, "?q=hello");
      expect(p.data.map((i) => i.id)).toEqual([started.id]);
      return p.data[0] as InboxItem;
    });
    expect(listed).toMatchObject({ status: "open", turns: 1 });
    const [stored] = await query<{ n: number }>(
      sql`select count(*)::int as n from inbox_entries where tenant_id = ${t} and conversation_id = ${started.id}`,
    );
    expect(stored?.n).toBe(2);
  });
});

describe("inbox isolation", () => {
  it("another tenant's key, admin path or operator sees none of it: 404 for the id, an empty list", async () => {
    const a = await seeded();
    const { tenant_id: other } = await createTenant();
    const { key: otherKey } = await createKey(other);
    const agent = await operator(other, "agent");
    expect((await get(otherKey, "/inbox/c-1")).status).toBe(404);
    expect((await page(otherKey, "")).data).toEqual([]);
    expect((await page(otherKey, "?q=refund")).data).toEqual([]);
    expect((await admin("GET", `/tenants/${other}/inbox/c-1`)).status).toBe(404);
    const opGet = await consoleSend("GET", "/operator/inbox/c-1", agent.session);
    expect(opGet.status).toBe(404);
    expect((await envelope(opGet)).code).toBe("NOT_FOUND");
    const opList = await consoleSend("GET", "/operator/inbox", agent.session);
    expect(((await opList.json()) as Page).data).toEqual([]);
    // A cursor made on tenant A's list reads nothing of A's on B's.
    const first = await page(a.key, "?limit=1");
    expect((await page(otherKey, `?cursor=${first.next_cursor}`)).data).toEqual([]);
  });

  it("lets the tenant's agents, owners and the admin read; refuses publishable keys and no credentials", async () => {
    const { t, key } = await seeded();
    const agent = await operator(t, "agent");
    const list = await consoleSend("GET", "/operator/inbox?status=human", agent.session);
    expect(list.status).toBe(200);
    expect(((await list.json()) as Page).data.map((i) => i.id)).toEqual(["c-3"]);
    expect((await consoleSend("GET", "/operator/inbox/c-3", agent.session)).status).toBe(200);
    expect((await admin("GET", `/tenants/${t}/inbox/c-3`)).status).toBe(200);
    const pk = (await createKey(t, "publishable")).key;
    expect((await get(pk, "/inbox")).status).toBe(403);
    expect((await send("GET", "/v1/inbox", undefined)).status).toBe(401);
    expect((await consoleSend("GET", "/operator/inbox", undefined)).status).toBe(401);
    expect((await get(key, "/inbox/bad%20id")).status).toBe(400);
  });
});
