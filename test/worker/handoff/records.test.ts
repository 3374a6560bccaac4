/**
 * What a handled conversation leaves behind, through the real queues and consumers: the inbox
 * index (status, holder, version, every entry once, docs/handoff.md) and the summary's handoff
 * fields (human handled, time to the first human reply, resolved by a human).
 */
import { describe, expect, it } from "vitest";
import { eventually, present } from "../eventually";
import { query, sql } from "../helpers";
import { consoleSend, operator, visitor, widgetTenant } from "./helpers";

describe("a handled conversation's records", () => {
  it("indexes every entry once with the final state, and the summary says a human handled and resolved it", async () => {
    const t = await widgetTenant();
    const anna = await operator(t.id, "agent", "Anna");
    const v = visitor(t.pk);
    const conv = await v.start();
    await v.say(conv.id, "hello");
    await v.say(conv.id, "let me speak to a human agent");
    // Waiting for a human, since the escalation: what the inbox and its alert read.
    const waiting = await eventually(async () => {
      const [r] = await query<{ status: string; waiting: boolean }>(
        sql`select status, waiting_since is not null as waiting from inbox_conversations
            where tenant_id = ${t.id} and conversation_id = ${conv.id}`,
      );
      const found = present(r, "inbox row");
      if (found.status !== "waiting") throw new Error(`status ${found.status}`);
      return found;
    });
    expect(waiting.waiting).toBe(true);
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/takeover`, anna.session)).status).toBe(200);
    await consoleSend("POST", `/operator/inbox/${conv.id}/messages`, anna.session, {
      content: "Hi, Anna here",
    });
    await v.say(conv.id, "great");
    expect((await consoleSend("POST", `/operator/inbox/${conv.id}/resolve`, anna.session)).status).toBe(200);
    // 2 turns (4 entries), joined, Anna, the visitor, resolved: seq 1..8.
    const row = await eventually(async () => {
      const [r] = await query<{ status: string; version: number; holder_name: string | null }>(
        sql`select status, version::int as version, holder_name from inbox_conversations
            where tenant_id = ${t.id} and conversation_id = ${conv.id}`,
      );
      const found = present(r, "inbox row");
      if (found.status !== "resolved") throw new Error(`status ${found.status}`);
      return found;
    });
    expect(row).toEqual({ status: "resolved", version: 8, holder_name: null });
    const entries = await eventually(async () => {
      const rows = await query<{ seq: number; role: string; author: string | null }>(
        sql`select seq::int as seq, role, author from inbox_entries
            where tenant_id = ${t.id} and conversation_id = ${conv.id} order by seq`,
      );
      if (rows.length < 8) throw new Error(`${rows.length} entries`);
      return rows;
    });
    expect(entries.map((e) => [e.seq, e.role])).toEqual([
      [1, "user"],
      [2, "assistant"],
      [3, "user"],
      [4, "assistant"],
      [5, "system"],
      [6, "operator"],
      [7, "user"],
      [8, "system"],
    ]);
    expect(entries[5]?.author).toBe("Anna");
    const summary = await eventually(async () => {
      const [r] = await query<{
        resolved: boolean;
        escalated: boolean;
        human_handled: boolean;
        first_human_reply_ms: number | null;
        resolved_by: string | null;
      }>(
        sql`select resolved, escalated, human_handled, first_human_reply_ms, resolved_by from conversations
            where tenant_id = ${t.id} and conversation_id = ${conv.id}`,
      );
      return present(r, "summary");
    });
    expect(summary).toMatchObject({
      resolved: true,
      escalated: true,
      human_handled: true,
      resolved_by: "human",
    });
    expect(summary.first_human_reply_ms).toBeGreaterThanOrEqual(0);
  });
});
