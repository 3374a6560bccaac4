import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDb } from "../../src/db/client";
import { loadEnv, type RawEnv } from "../../src/env";
import worker from "../../src/index";
import { consumeNotifyBatch } from "../../src/notify/consumer";
import type { EscalationNotice } from "../../src/notify/messages";
import { chatTenant, escalatedConversation, FAKE } from "./chat/helpers";
import { eventually } from "./eventually";
import { BASE, hmacHex, query, send, sql } from "./helpers";

type Row = {
  status: string;
  channel: string;
  recipient: string;
  attempts: number;
  error: string | null;
  body: string;
};

function outbox(tenantId: string): Promise<Row[]> {
  return query<Row>(
    sql`select status, channel, recipient, attempts, error, body from notifications where tenant_id = ${tenantId} order by created_at`,
  );
}

function notice(tenantId: string, overrides: Partial<EscalationNotice> = {}): EscalationNotice {
  return {
    type: "escalation",
    id: crypto.randomUUID(),
    tenantId,
    conversationId: "conv_test",
    userId: "user:alice",
    to: "team@shop.example",
    reason: "visitor asked for a human",
    at: Date.UTC(2026, 10, 29, 12),
    transcript: [{ role: "user", content: "I want a human", at: Date.UTC(2026, 10, 29, 12) }],
    ...overrides,
  };
}

/** Runs the worker's real queue handler on a batch, with env overrides. */
async function consume(bodies: unknown[], overrides: Partial<RawEnv> = {}, attempts = 1) {
  const batch = createMessageBatch(
    "chatedge-notify",
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...overrides }, ctx);
  return getQueueResult(batch, ctx);
}

/** A new conversation of a server key, and its visitor's next message. */
async function conversationWith(key: string) {
  const { id } = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
  return { id, say: (content: string) => send("POST", `/v1/conversations/${id}/messages`, key, { content }) };
}

/** The tenant's one outbox row, once the consumer has written it. */
async function onlyNotice(tenantId: string): Promise<Row | undefined> {
  const rows = await eventually(async () => {
    const rows = await outbox(tenantId);
    expect(rows).toHaveLength(1);
    return rows;
  });
  return rows[0];
}

async function webhookCalls(): Promise<{ raw: string; headers: { signature?: string } }[]> {
  const res = await fetch(`${FAKE}/__requests?key=webhook`);
  return ((await res.json()) as { requests: { raw: string; headers: { signature?: string } }[] }).requests;
}

describe("notifications", () => {
  it("a conversation with an answer longer than a queue message holds escalates; its notice and inbox entries are cut to fit", async () => {
    const { id, key } = await chatTenant({
      model: "gpt-4o-mini",
      max_tokens_per_response: 40_000,
      escalation_email: "desk@shop.example",
    });
    const { id: conv, say } = await conversationWith(key);
    // 30,000 words: about 150,000 characters, more than one queue message holds (128 KB).
    const long = await say("tell me everything [[words:30000]]");
    expect(long.status).toBe(200);
    const answer = ((await long.json()) as { message: { content: string } }).message.content;
    expect(answer.length).toBeGreaterThan(128_000);
    // Before, the notice carried the whole transcript: the queue refused it and the visitor got a 503.
    expect((await say("let me speak to a human agent")).status).toBe(200);
    const row = await onlyNotice(id);
    expect(row?.status).toBe("sent");
    expect(row?.body).toContain("Visitor: tell me everything");
    expect(row?.body).toContain(`Assistant: ${answer.slice(0, 3_000)}`);
    expect(row?.body).toContain("Visitor: let me speak to a human agent");
    expect(row?.body.length).toBeLessThan(30_000);
    // The inbox's index has every entry, the long one cut; the transcript keeps it whole.
    const entries = await eventually(async () => {
      const rows = await query<{ role: string; content: string }>(
        sql`select role, content from inbox_entries where tenant_id = ${id} and conversation_id = ${conv} order by seq`,
      );
      expect(rows.map((r) => r.role)).toEqual(["user", "assistant", "user", "assistant"]);
      return rows;
    });
    expect(entries[1]?.content).toBe(`${answer.slice(0, 23_999)}…`);
    const transcript = (await (await send("GET", `/v1/conversations/${conv}`, key)).json()) as {
      messages: { content: string }[];
    };
    expect(transcript.messages[1]?.content).toBe(answer);
  });

  it("a notice of control characters fits a queue message too: its size is counted as JSON writes it", async () => {
    const { id, key } = await chatTenant({ escalation_email: "desk@shop.example" });
    const { say } = await conversationWith(key);
    // Each character is six in JSON (\u0001): 6,000 of them weigh 36 KB in a queue message.
    for (let i = 0; i < 4; i++) expect((await say(`${i} ${"\u0001".repeat(6_000)}`)).status).toBe(200);
    expect((await say("let me speak to a human agent")).status).toBe(200);
    const row = await onlyNotice(id);
    expect(row?.status).toBe("sent");
    expect(row?.body).toContain("Visitor: let me speak to a human agent");
  });

  it("sends a tenant at most ESCALATION_NOTICES_PER_HOUR escalation notices an hour; the rest wait in the inbox", async () => {
    const { id } = await chatTenant();
    const limited = { ESCALATION_NOTICES_PER_HOUR: "2" };
    const first = await consume([notice(id), notice(id), notice(id)], limited);
    expect(first.explicitAcks).toHaveLength(3);
    const again = await consume([notice(id)], limited);
    expect(again.explicitAcks).toHaveLength(1);
    const rows = await outbox(id);
    expect(rows.map((r) => r.status).sort()).toEqual(["sent", "sent", "skipped", "skipped"]);
    for (const r of rows.filter((x) => x.status === "skipped")) {
      expect(r.error).toBe(
        "the tenant was sent 2 escalation notices in the last hour: this conversation waits in the inbox",
      );
      // Not sent, so nothing of the conversation is kept for it.
      expect(r.body).toBe("");
    }
    expect(rows.filter((x) => x.status === "sent").every((r) => r.body.length > 0)).toBe(true);
    // Another tenant's notices are its own.
    const other = await chatTenant();
    await consume([notice(other.id)], limited);
    expect((await outbox(other.id)).map((r) => r.status)).toEqual(["sent"]);
  });

  it("emails the transcript of an escalated conversation to the tenant's escalation address", async () => {
    const { id, key } = await chatTenant({ escalation_email: "desk@shop.example" });
    const conv = await escalatedConversation(key);
    const rows = await eventually(async () => {
      const rows = await outbox(id);
      expect(rows).not.toHaveLength(0);
      return rows;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: "sent",
      channel: "email",
      recipient: "desk@shop.example",
      error: null,
    });
    expect(rows[0]?.body).toContain("Visitor: where is my order");
    expect(rows[0]?.body).toContain("Visitor: let me speak to a human agent");
    // Without PUBLIC_BASE_URL the link is absolute on the origin the visitor's request reached.
    expect(rows[0]?.body).toContain(`${BASE}/console/#/t/${id}/inbox/${conv}`);
  });

  it("posts a signed webhook when email is not configured", async () => {
    const { id } = await chatTenant();
    const n = notice(id);
    const secret = "webhook-secret-0123456789";
    const result = await consume([n], {
      EMAIL_FROM: undefined,
      NOTIFY_WEBHOOK_URL: `${FAKE}/__webhook`,
      NOTIFY_WEBHOOK_SECRET: secret,
    });
    expect(result.explicitAcks).toEqual(["m0"]);
    const call = (await webhookCalls()).find((c) => c.raw.includes(n.id));
    expect(call).toBeDefined();
    expect(call?.headers.signature).toBe(`sha256=${await hmacHex(secret, call?.raw ?? "")}`);
    expect(JSON.parse(call?.raw ?? "{}")).toMatchObject({
      kind: "escalation",
      tenant_id: id,
      to: "team@shop.example",
    });
    expect((await outbox(id))[0]).toMatchObject({ status: "sent", channel: "webhook", attempts: 1 });
  });

  it("retries a failing webhook with backoff, then records the failure", async () => {
    const { id } = await chatTenant();
    const n = notice(id);
    const failing = { EMAIL_FROM: undefined, NOTIFY_WEBHOOK_URL: `${FAKE}/__webhook?status=503` };
    const first = await consume([n], failing, 1);
    expect(first.retryMessages.map((m) => m.msgId)).toEqual(["m0"]);
    expect(first.explicitAcks).toEqual([]);
    expect((await outbox(id))[0]).toMatchObject({
      status: "failed",
      attempts: 1,
      error: "webhook answered 503",
    });
    const last = await consume([n], failing, 5);
    expect(last.explicitAcks).toEqual(["m0"]);
    expect(last.retryMessages).toEqual([]);
    expect((await outbox(id))[0]).toMatchObject({ status: "failed", attempts: 5 });
  });

  it("backs off exponentially between delivery attempts", async () => {
    const { id } = await chatTenant();
    const loaded = loadEnv({
      ...env,
      EMAIL_FROM: undefined,
      NOTIFY_WEBHOOK_URL: `${FAKE}/__webhook?status=500`,
    });
    if (!loaded.ok) throw new Error(loaded.problems.join());
    const h = openDb(loaded.env);
    const delays: number[] = [];
    for (const attempts of [1, 2, 3]) {
      const m = {
        id: `m${attempts}`,
        timestamp: new Date(),
        attempts,
        body: notice(id),
        ack() {},
        retry(o?: { delaySeconds?: number }) {
          delays.push(o?.delaySeconds ?? -1);
        },
      };
      await consumeNotifyBatch([m as unknown as Message<unknown>], loaded.env, h.db);
    }
    await h.close();
    expect(delays).toEqual([2, 4, 8]);
  });

  it("does not send a notice twice when the queue redelivers it", async () => {
    const { id } = await chatTenant();
    const n = notice(id);
    const hook = { EMAIL_FROM: undefined, NOTIFY_WEBHOOK_URL: `${FAKE}/__webhook` };
    await consume([n], hook);
    await consume([n], hook, 2);
    expect((await webhookCalls()).filter((c) => c.raw.includes(n.id))).toHaveLength(1);
    expect(await outbox(id)).toHaveLength(1);
  });

  it("links the escalation email to the conversation in the console: PUBLIC_BASE_URL, else the notice's origin", async () => {
    const { id } = await chatTenant();
    const cases: [Partial<RawEnv>, Partial<EscalationNotice>, string][] = [
      [{ PUBLIC_BASE_URL: "https://chat.shop.example/ignored/path" }, {}, "https://chat.shop.example"],
      [{}, { origin: "https://api.chatedge.example" }, "https://api.chatedge.example"],
      [
        { PUBLIC_BASE_URL: "https://chat.shop.example" },
        { origin: "https://api.chatedge.example" },
        "https://chat.shop.example",
      ],
      [{}, {}, ""],
    ];
    for (const [vars, extra, base] of cases) {
      const n = notice(id, { conversationId: `conv-${crypto.randomUUID().slice(0, 8)}`, ...extra });
      expect((await consume([n], vars)).explicitAcks).toEqual(["m0"]);
      const rows = await query<{ body: string }>(sql`select body from notifications where id = ${n.id}`);
      expect(rows[0]?.body, JSON.stringify(vars)).toContain(
        `Open it in the console to take it over: ${base}/console/#/t/${id}/inbox/${n.conversationId}\n`,
      );
    }
  });

  it("puts the link in the webhook's body, ids escaped; a notice with a non-http origin is dropped", async () => {
    const { id } = await chatTenant();
    const n = notice(id, { conversationId: "a/b#c?d", origin: "https://api.chatedge.example" });
    const hook = { EMAIL_FROM: undefined, NOTIFY_WEBHOOK_URL: `${FAKE}/__webhook` };
    await consume([n], hook);
    const call = (await webhookCalls()).find((c) => c.raw.includes(n.id));
    expect(JSON.parse(call?.raw ?? "{}").links).toEqual([
      `https://api.chatedge.example/console/#/t/${id}/inbox/a%2Fb%23c%3Fd`,
    ]);
    const hostile = notice(id, { origin: "javascript:alert(1)" });
    const result = await consume([hostile], hook);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect((await webhookCalls()).some((c) => c.raw.includes(hostile.id))).toBe(false);
    expect(await query(sql`select id from notifications where id = ${hostile.id}`)).toEqual([]);
  });

  it("drops a malformed notice without writing anything", async () => {
    const { id } = await chatTenant();
    const result = await consume([{ type: "escalation", tenantId: id }, "garbage"]);
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    expect(await outbox(id)).toHaveLength(0);
  });
});
