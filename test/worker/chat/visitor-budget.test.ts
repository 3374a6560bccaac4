/**
 * The abuse case of issue #14 (item 5): one browser visitor used up a 150,000-token monthly budget
 * in 11 requests. With the tenant's `visitor_monthly_token_share` (5% by default) a visitor gets
 * at most 7,500 of those tokens a month, whatever conversations it starts; another visitor still
 * chats, and the tenant's servers (secret key) are not limited by the share.
 */
import { describe, expect, it } from "vitest";
import type { StartedConversation } from "../../../src/api-types";
import { countTextTokens } from "../../../src/chat/tokens";
import { eventually } from "../eventually";
import { createKey, envelope, query, send, sql, uniqueId } from "../helpers";
import { chatTenant, completions } from "./helpers";

const ORIGIN = "https://shop.example";
const address = () => `198.51.100.9-${uniqueId("ip")}`;
const from = (ip: string, token?: string) => ({
  origin: ORIGIN,
  "cf-connecting-ip": ip,
  ...(token ? { "x-visitor-token": token } : {}),
});

interface MonthUsage {
  month: { tokens_used: number; tokens_reserved: number };
}

describe("the visitor token share over HTTP", () => {
  it("stops one visitor at 5% of a 150,000-token month; another visitor and the servers go on", async () => {
    const t = await chatTenant({
      allowed_origins: [ORIGIN],
      monthly_token_budget: 150_000,
      visitor_monthly_token_share: 0.05,
      rate_limit_per_minute: 10_000,
      user_rate_limit_per_minute: 10_000,
      address_messages_per_minute: 10_000,
      address_conversations_per_hour: 10_000,
    });
    const pk = (await createKey(t.id, "publishable")).key;
    const ip = address();
    const start = async (token?: string) => {
      const res = await send("POST", "/v1/conversations", pk, {}, from(ip, token));
      expect(res.status).toBe(201);
      return (await res.json()) as StartedConversation;
    };
    const a = await start();
    const say = (conv: StartedConversation, token: string | undefined, content: string, at = ip) =>
      send("POST", `/v1/conversations/${conv.id}/messages`, pk, { content }, from(at, token));
    // Long messages, so the visitor spends fast; every one is answered until the share binds.
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 40; i++) {
      last = await say(a, a.visitor_token, `message ${i}: ${"tell me about your return policy ".repeat(40)}`);
      statuses.push(last.status);
      if (last.status !== 200) break;
      await last.text();
    }
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.slice(0, -1).every((s) => s === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    const err = await envelope(last as Response);
    expect(err.code).toBe("BUDGET_EXCEEDED");
    expect(err.details).toMatchObject({ level: "budget", budget: "visitor_tokens" });
    expect(err.message).toContain("5%, 7,500 tokens a month");
    // What the visitor used, once every settlement has landed: within its 7,500 tokens.
    const usage = await eventually(async () => {
      const u = (await (await send("GET", "/v1/usage", t.key)).json()) as MonthUsage;
      expect(u.month.tokens_reserved).toBe(0);
      return u.month.tokens_used;
    });
    expect(usage).toBeLessThanOrEqual(7_500);
    // Each message reserved what its history costs, not a flat 6,000 tokens: the visitor got to
    // use most of its share (with the flat budget it was refused at about 1,500).
    expect(usage).toBeGreaterThan(5_000);
    // A new conversation does not give the same visitor a new share: a message more than what is
    // left of it (that a fresh share would take) is refused.
    const again = await start(a.visitor_token);
    let content = "tell me about your return policy";
    while (countTextTokens(content) <= 7_500 - usage) content += " tell me about your return policy";
    expect(countTextTokens(content)).toBeLessThan(7_000);
    const refused = await say(again, a.visitor_token, content);
    expect(refused.status).toBe(429);
    expect((await envelope(refused)).details).toMatchObject({ budget: "visitor_tokens" });
    // Another visitor has a share of its own.
    const b = await start();
    expect(b.visitor_token).not.toBe(a.visitor_token);
    expect((await say(b, b.visitor_token, "hello")).status).toBe(200);
    // The tenant's servers are not limited by the share: one request of more than 7,500 tokens.
    const server = await completions(t.key, {
      model: "mock",
      user: "alice",
      messages: [{ role: "user", content: "tell me about your return policy ".repeat(1_500) }],
    });
    expect(server.status).toBe(200);
    const body = (await server.json()) as { usage: { prompt_tokens: number } };
    expect(body.usage.prompt_tokens).toBeGreaterThan(7_500);
    // Both refusals reach analytics under their own budget.
    await eventually(async () => {
      const [row] = await query<{ n: number }>(
        sql`select refused_visitor_tokens::int as n from tenant_totals where tenant_id = ${t.id}`,
      );
      expect(row?.n).toBe(2);
    });
  });
});
