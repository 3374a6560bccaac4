/**
 * Knowledge analytics: answers grounded in sources, "I don't know" answers and the sources most
 * used, from the turn event through the analytics consumer's rollups to the tenant dashboard and
 * `GET /admin/metrics` (parsed by a real Prometheus text-format parser).
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import type { TurnKnowledge } from "../../../src/analytics/events";
import { dayTime, turnEvent } from "../analytics/helpers";
import { chatTenant, completions } from "../chat/helpers";
import { eventually } from "../eventually";
import { admin, query, send, sql } from "../helpers";
import { ingest } from "../monitoring/helpers";
import { addSource, RETURNS_HTML, SHIPPING, settled } from "./helpers";

type Knowledge = {
  answers: number;
  grounded: number;
  grounded_pct: number | null;
  unanswered: number;
  unanswered_pct: number | null;
  top_sources: { source_id: string; title: string | null; citations: number }[];
};
type Family = { name: string; type: string; metrics: { labels?: Record<string, string>; value?: string }[] };

async function dashboard(tenantId: string, days = 1): Promise<Knowledge> {
  const res = await admin("GET", `/tenants/${tenantId}/analytics/dashboard?days=${days}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { knowledge: Knowledge }).knowledge;
}

/** The tenant's knowledge samples in the exposition, by family (and source), as numbers. */
async function scraped(tenantId: string) {
  const res = await admin("GET", "/metrics");
  expect(res.status).toBe(200);
  const families = new Map((parsePrometheusTextFormat(await res.text()) as Family[]).map((f) => [f.name, f]));
  const own = (name: string) => {
    const f = families.get(name);
    expect(f?.type, name).toBe("COUNTER");
    return (f?.metrics ?? []).filter((m) => m.labels?.tenant === tenantId);
  };
  const one = (name: string) => own(name).map((m) => Number(m.value))[0];
  return {
    answers: one("chatedge_knowledge_answers_total"),
    grounded: one("chatedge_knowledge_grounded_answers_total"),
    unanswered: one("chatedge_knowledge_unanswered_total"),
    citations: Object.fromEntries(
      own("chatedge_knowledge_source_citations_total").map((m) => [m.labels?.source, Number(m.value)]),
    ),
  };
}

const answer = (tenantId: string, knowledge: TurnKnowledge | undefined, at = dayTime(0)) =>
  turnEvent(tenantId, { at, ...(knowledge ? { knowledge } : {}) });

describe("knowledge analytics", () => {
  it("counts grounded and unanswered answers and the sources they cite, once per event", async () => {
    const { id, key } = await chatTenant();
    const a = await addSource(key, { type: "text", title: "Shipping", content: "Shipping is free." });
    const b = await addSource(key, { type: "text", title: "Returns", content: "Returns take 30 days." });
    const gone = crypto.randomUUID(); // a source deleted since: counted, listed without a title
    const events = [
      answer(id, { sources: [a.id], unanswered: false }),
      answer(id, { sources: [a.id, b.id], unanswered: false }),
      answer(id, { sources: [b.id, a.id], unanswered: false }),
      answer(id, { sources: [gone], unanswered: false }),
      answer(id, { sources: [], unanswered: true }),
      answer(id, { sources: [], unanswered: true }),
      answer(id, { sources: [], unanswered: false }), // answered from the prompt alone (a greeting)
      answer(id, undefined), // knowledge off: not an answer from knowledge
      answer(id, { sources: [a.id], unanswered: false }, dayTime(3)), // outside a 1-day window
    ];
    await ingest(events);
    await ingest(events.slice(0, 5)); // redelivered: counted once
    expect(await dashboard(id)).toEqual({
      answers: 7,
      grounded: 4,
      grounded_pct: (4 / 7) * 100,
      unanswered: 2,
      unanswered_pct: (2 / 7) * 100,
      top_sources: [
        { source_id: a.id, title: "Shipping", citations: 3 },
        { source_id: b.id, title: "Returns", citations: 2 },
        { source_id: gone, title: null, citations: 1 },
      ].sort((x, y) => y.citations - x.citations || x.source_id.localeCompare(y.source_id)),
    });
    expect((await dashboard(id, 7)).answers).toBe(8);
    // Prometheus counts since the beginning: the answer 3 days ago too.
    expect(await scraped(id)).toEqual({
      answers: 8,
      grounded: 5,
      unanswered: 2,
      citations: { [a.id]: 4, [b.id]: 2, [gone]: 1 },
    });
  });

  it("shows nothing, with null rates, for a tenant without answers from knowledge", async () => {
    const { id } = await chatTenant();
    await ingest([answer(id, undefined)]);
    expect(await dashboard(id)).toEqual({
      answers: 0,
      grounded: 0,
      grounded_pct: null,
      unanswered: 0,
      unanswered_pct: null,
      top_sources: [],
    });
    expect(await scraped(id)).toEqual({
      answers: undefined,
      grounded: undefined,
      unanswered: undefined,
      citations: {},
    });
  });

  it("dead-letters a turn event whose knowledge is malformed and counts nothing of it", async () => {
    const { id } = await chatTenant();
    const bad = { ...answer(id, undefined), knowledge: { sources: ["not-a-uuid"], unanswered: false } };
    await ingest([bad as never]);
    const letters = await query<{ reason: string; error: string }>(
      sql`select reason, error from dead_letters where event_id = ${bad.id}`,
    );
    expect(letters).toEqual([{ reason: "invalid", error: expect.stringContaining("knowledge.sources.0") }]);
    expect((await dashboard(id)).answers).toBe(0);
  });

  it("records what the chat routes answered: cited sources and the tenant's 'I don't know'", async () => {
    const t = await chatTenant();
    const shipping = await addSource(t.key, {
      type: "markdown",
      title: "Shipping policy",
      content: SHIPPING,
    });
    const returns = await addSource(t.key, { type: "html", title: "Returns FAQ", content: RETURNS_HTML });
    await settled(t.key, shipping.id);
    await settled(t.key, returns.id);
    const converse = async (content: string) => {
      const conv = (await (await send("POST", "/v1/conversations", t.key, {})).json()) as { id: string };
      expect((await send("POST", `/v1/conversations/${conv.id}/messages`, t.key, { content })).status).toBe(
        200,
      );
    };
    await converse("Is shipping free?"); // cites the shipping policy
    await converse("how do I get a refund"); // cites the returns FAQ
    const res = await completions(t.key, {
      model: "mock",
      messages: [{ role: "user", content: "Is shipping free?" }],
    });
    expect(res.status).toBe(200);
    await converse("hello"); // nothing matches; answered normally, no source
    await converse("Is there a loyalty programme?"); // nothing matches: the model says it does not know
    await eventually(async () =>
      expect(await dashboard(t.id)).toEqual({
        answers: 5,
        grounded: 3,
        grounded_pct: 60,
        unanswered: 1,
        unanswered_pct: 20,
        top_sources: [
          { source_id: shipping.id, title: "Shipping policy", citations: 2 },
          { source_id: returns.id, title: "Returns FAQ", citations: 1 },
        ],
      }),
    );
  });
});
