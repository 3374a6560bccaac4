import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { batchOf, deliver, feedbackEvent, safetyEvent, turnEvent } from "../analytics/helpers";
import { chatTenant } from "../chat/helpers";
import { eventually } from "../eventually";
import { admin, envelope, query, send, sql } from "../helpers";
import { card, email, iban, phone } from "./pii";

/** Every message row the conversation's Durable Object stores, as SQLite holds it. */
async function storedMessages(tenantId: string, conversationId: string): Promise<string[]> {
  const stub = env.CONVERSATION.getByName(`${tenantId}:${conversationId}`);
  return runInDurableObject(stub, (_obj, state) =>
    state.storage.sql
      .exec<{ content: string; tool_calls: string | null }>(
        "select content, tool_calls from messages order by idx",
      )
      .toArray()
      .map((r) => `${r.content}${r.tool_calls ?? ""}`),
  );
}

async function start(key: string): Promise<string> {
  const res = await send("POST", "/v1/conversations", key, { user: "visitor-1" });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const pii = fc.tuple(email, phone, card, iban);

describe("redaction before storage", () => {
  it("stores no generated PII in the transcript or the feedback comment", async () => {
    const { id, key } = await chatTenant({ redact_patterns: ["\\bCUST-[0-9]{5}\\b"] });
    const conv = await start(key);
    const said: string[] = [];
    await fc.assert(
      fc.asyncProperty(pii, async ([e, p, c, i]) => {
        const text = `me ${e} tel ${p} card ${c} iban ${i} ref CUST-12345`;
        said.push(e, p, c, i);
        const res = await send("POST", `/v1/conversations/${conv}/messages`, key, { content: text });
        expect(res.status).toBe(200);
      }),
      { numRuns: 10 },
    );
    const fb = await send("POST", `/v1/conversations/${conv}/feedback`, key, {
      csat: 4,
      comment: `reach me at ${said[0]} or ${said[1]}, ref CUST-12345`,
    });
    expect(fb.status).toBe(200);

    const rows = await storedMessages(id, conv);
    expect(rows).toHaveLength(20);
    for (const [i, row] of rows.entries()) {
      expect(row).not.toContain("@");
      expect(row).not.toContain("CUST-");
      for (const value of said) expect(row).not.toContain(value);
      // The visitor's rows keep no digit run at all. The mock's replies echo the first 12 words of
      // what it was sent, so they may hold a cut-off card number (no longer Luhn-valid): a fragment
      // no checksum can recognise (docs/privacy.md, limits).
      if (i % 2 === 0) expect(row).not.toMatch(/\d/);
    }
    expect(rows[0]).toContain("[email]");
    expect(rows[0]).toContain("[redacted]");
    // The mock model echoes the visitor's words: its reply is stored redacted too.
    expect(rows[1]).toContain("[email]");

    const [comment] = await eventually(async () => {
      const r = await query<{ comment: string }>(sql`select comment from feedback where tenant_id = ${id}`);
      expect(r).toHaveLength(1);
      return r;
    });
    expect(comment?.comment).toBe("reach me at [email] or [phone], ref [redacted]");

    // The transcript the API answers is what is stored.
    const t = (await (await send("GET", `/v1/conversations/${conv}`, key)).json()) as {
      messages: { content: string }[];
    };
    expect(t.messages.map((m) => m.content).join("\n")).not.toMatch(/@|\d{3}/);
  });

  it("sends the model the visitor's text as written unless the tenant asks for redaction first", async () => {
    const text = "write to pat@example.org please";
    const plain = await chatTenant();
    const conv = await start(plain.key);
    const r1 = (await (
      await send("POST", `/v1/conversations/${conv}/messages`, plain.key, { content: text })
    ).json()) as { message: { content: string } };
    // The mock echoes what it was sent: here the address, though the transcript keeps [email].
    expect(r1.message.content).toContain("pat@example.org");
    expect((await storedMessages(plain.id, conv))[0]).toBe("write to [email] please");

    const strict = await chatTenant({ redact_before_model: true });
    const conv2 = await start(strict.key);
    const r2 = (await (
      await send("POST", `/v1/conversations/${conv2}/messages`, strict.key, { content: text })
    ).json()) as { message: { content: string } };
    expect(r2.message.content).toContain("[email]");
    expect(r2.message.content).not.toContain("pat@example.org");
  });

  it("redacts analytics text the consumer writes, whatever the producer sent", async () => {
    const { id } = await chatTenant();
    const events = [
      feedbackEvent(id, { comment: "I am bo@shop.example, card 4242 4242 4242 4242" }),
      turnEvent(id, { outcome: "error", error: "upstream echoed +44 20 7946 0958" }),
      safetyEvent(id, { topic: "iban DE89 3704 0044 0532 0130 00" }),
    ];
    const result = await deliver(batchOf(events));
    expect(result.explicitAcks).toHaveLength(3);
    const [f] = await query<{ comment: string }>(sql`select comment from feedback where tenant_id = ${id}`);
    const [t] = await query<{ error: string }>(sql`select error from turns where tenant_id = ${id}`);
    const [s] = await query<{ topic: string }>(sql`select topic from safety_events where tenant_id = ${id}`);
    expect(f?.comment).toBe("I am [email], card [card]");
    expect(t?.error).toBe("upstream echoed [phone]");
    expect(s?.topic).toBe("iban [iban]");
  });

  it("stores the escalation transcript in the outbox without the visitor's contact details", async () => {
    const { id, key } = await chatTenant({ escalation_email: "desk@shop.example" });
    const conv = await start(key);
    await send("POST", `/v1/conversations/${conv}/messages`, key, {
      content: "I am jo@mail.example, +1 (555) 123-4567",
    });
    await send("POST", `/v1/conversations/${conv}/messages`, key, {
      content: "let me speak to a human agent",
    });
    const [row] = await eventually(async () => {
      const rows = await query<{ body: string }>(sql`select body from notifications where tenant_id = ${id}`);
      expect(rows).toHaveLength(1);
      return rows;
    });
    expect(row?.body).toContain("Visitor: I am [email], [phone]");
    // Neither contact detail, in any part: the body's times may hold "555" as milliseconds.
    expect(row?.body).not.toMatch(/jo@mail|mail\.example|\(555\)|123-4567/);
  });
});

describe("tenant redaction settings", () => {
  it("refuses patterns that could backtrack catastrophically, with the pattern's index", async () => {
    const { id } = await chatTenant();
    const res = await admin("PATCH", `/tenants/${id}`, { redact_patterns: ["ok-\\d{4}", "(a+)+$"] });
    expect(res.status).toBe(400);
    const err = await envelope(res);
    expect(err.code).toBe("VALIDATION_FAILED");
    expect(JSON.stringify(err.details)).toContain("redact_patterns.1");
    expect(JSON.stringify(err.details)).toContain("nested quantifiers");
    const [row] = await query<{ redact_patterns: string[] }>(
      sql`select redact_patterns from tenants where id = ${id}`,
    );
    expect(row?.redact_patterns).toEqual([]);
  });

  it("bounds the number of patterns and answers the settings on read", async () => {
    const { id } = await chatTenant();
    const many = await admin("PATCH", `/tenants/${id}`, { redact_patterns: Array(21).fill("x\\d") });
    expect(many.status).toBe(400);
    const ok = await admin("PATCH", `/tenants/${id}`, {
      redact_patterns: ["\\bCUST-\\d{5}\\b"],
      redact_before_model: true,
      retention_days: 30,
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      redact_patterns: ["\\bCUST-\\d{5}\\b"],
      redact_before_model: true,
      retention_days: 30,
    });
  });
});
