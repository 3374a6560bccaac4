/** The populated tenant the erasure and purge tests start from: data in every store. */
import { expect } from "vitest";
import { stickyKey } from "../../../src/experiments/assign";
import { chatTenant, completions } from "../chat/helpers";
import { eventually } from "../eventually";
import { createExperiment, defOfJson, services, twoArms } from "../experiments/helpers";
import { admin, query, send, sql } from "../helpers";
import { addSource, settled } from "../knowledge/helpers";

/** Services with a patient Redis: the tests' own reads and writes must not fall back. */
export const redis = () => services({ REDIS_TIMEOUT_MS: 5_000 });

/** Who said what: one conversation each, answered, rated, ended. */
export type Visit = readonly [user: string, text: string];

/**
 * A tenant that blocks "weapons", with an experiment, one ended conversation with feedback per
 * visit (through the conversation API, so each has an object) and `user:ann`'s assignment in Redis.
 * With `everyStore`, also a turn through the OpenAI-compatible route, a tool, an operator, an indexed
 * knowledge source and alert settings. Returns once the consumer has written every row.
 */
export async function populatedTenant(visits: readonly Visit[], opts: { everyStore?: boolean } = {}) {
  const t = await chatTenant({ blocked_topics: ["weapons"] });
  const exp = await createExperiment(t.id, twoArms("tone"));
  const conversations: string[] = [];
  for (const [user, text] of visits) {
    const conv = ((await (await send("POST", "/v1/conversations", t.key, { user })).json()) as { id: string })
      .id;
    await send("POST", `/v1/conversations/${conv}/messages`, t.key, { content: text });
    await send("POST", `/v1/conversations/${conv}/feedback`, t.key, { csat: 4, comment: `${user} liked it` });
    await send("POST", `/v1/conversations/${conv}/end`, t.key, { resolved: true });
    conversations.push(conv);
  }
  if (opts.everyStore) await everyOtherStore(t);
  const expected = {
    t: visits.length + (opts.everyStore ? 1 : 0),
    c: visits.length,
    f: visits.length,
    s: visits.filter(([, text]) => text.includes("weapons")).length,
  };
  await eventually(async () => {
    const [r] = await query<{ t: number; c: number; f: number; s: number }>(sql`select
      (select count(*)::int from turns where tenant_id = ${t.id}) as t,
      (select count(*)::int from conversations where tenant_id = ${t.id}) as c,
      (select count(*)::int from feedback where tenant_id = ${t.id}) as f,
      (select count(*)::int from safety_events where tenant_id = ${t.id}) as s`);
    expect(r).toEqual(expected);
  });
  // The assignment the start stored, set here too: a slow Redis under test load may have skipped it.
  await redis().cache.run(null, (r) => r.set(stickyKey(t.id, defOfJson(exp), "user:ann"), "B"));
  return { ...t, exp, conversations };
}

async function everyOtherStore(t: { id: string; key: string }) {
  const openai = await completions(t.key, {
    model: "mock",
    user: "cat",
    messages: [{ role: "user", content: "hi" }],
  });
  expect(openai.status).toBe(200);
  const tool = await send("POST", "/v1/tools", t.key, {
    name: "order_status",
    description: "Looks up an order by its number",
    parameters: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
    target: { kind: "https", url: "https://tools.example.com/orders" },
  });
  expect(tool.status).toBe(201);
  const op = await admin("POST", `/tenants/${t.id}/operators`, {
    email: `${t.id}@example.com`,
    name: "Op",
    role: "owner",
  });
  expect(op.status).toBe(201);
  const source = await addSource(t.key, {
    type: "text",
    title: "Shipping",
    content: "Orders ship within two days.",
  });
  await settled(t.key, source.id);
  expect(
    (await send("PUT", "/v1/alert-settings", t.key, { rules: { csat: { threshold: 3.5 } } })).status,
  ).toBe(200);
}
