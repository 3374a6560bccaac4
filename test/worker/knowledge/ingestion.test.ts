import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../../src/analytics/consumer";
import { openDb } from "../../../src/db/client";
import { DEFAULT_QUEUE_NAMES, loadEnv } from "../../../src/env";
import { MAX_ATTEMPTS } from "../../../src/knowledge/consumer";
import { searchChunks } from "../../../src/knowledge/search";
import { batchOf, deliver } from "../analytics/helpers";
import { chatTenant, FAKE } from "../chat/helpers";
import { query, send, sql } from "../helpers";
import { addSource, SHIPPING, settled } from "./helpers";

const knowledgeBatch = (bodies: unknown[], attempts = 1) =>
  batchOf(bodies, { queue: DEFAULT_QUEUE_NAMES.KNOWLEDGE_QUEUE_NAME, attempts });
const chunkCount = async (sourceId: string) =>
  Number(
    (
      await query<{ n: string }>(
        sql`select count(*) as n from knowledge_chunks where source_id = ${sourceId}`,
      )
    )[0]?.n,
  );
const page = (params: Record<string, string>) => `${FAKE}/__page?${new URLSearchParams(params)}`;

async function search(tenantId: string, q: string) {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const h = openDb(loaded.env);
  try {
    return await searchChunks(h.db, tenantId, q);
  } finally {
    await h.close();
  }
}

describe("knowledge ingestion queue", () => {
  it("indexes nothing for a message naming another tenant's source, and acks it", async () => {
    const a = await chatTenant();
    const b = await chatTenant();
    const s = await addSource(a.key, { type: "markdown", title: "A's policy", content: SHIPPING });
    await settled(a.key, s.id);
    await query(
      sql`update knowledge_sources set indexed_version = null, status = 'queued' where id = ${s.id}`,
    );
    await query(sql`delete from knowledge_chunks where source_id = ${s.id}`);
    const res = await deliver(knowledgeBatch([{ tenantId: b.id, sourceId: s.id, version: 1 }]));
    expect(res.explicitAcks).toHaveLength(1);
    expect(await chunkCount(s.id)).toBe(0);
    expect(await query(sql`select id from knowledge_chunks where tenant_id = ${b.id}`)).toEqual([]);
  });

  it("does not duplicate chunks when a message is delivered again, and drops invalid or stale ones", async () => {
    const { key, id } = await chatTenant();
    const s = await addSource(key, { type: "markdown", title: "Policy", content: SHIPPING });
    await settled(key, s.id);
    expect(await chunkCount(s.id)).toBe(2);
    // As if the first delivery died after its inserts, before marking the source ready.
    await query(
      sql`update knowledge_sources set indexed_version = null, status = 'indexing' where id = ${s.id}`,
    );
    const again = await deliver(knowledgeBatch([{ tenantId: id, sourceId: s.id, version: 1 }]));
    expect(again.explicitAcks).toHaveLength(1);
    expect(await chunkCount(s.id)).toBe(2);
    expect(await settled(key, s.id)).toMatchObject({ status: "ready", chunk_count: 2 });

    const junk = await deliver(
      knowledgeBatch([{ nope: 1 }, { tenantId: id, sourceId: s.id, version: 7 }, "text"]),
    );
    expect(junk.explicitAcks).toHaveLength(3);
    expect(await chunkCount(s.id)).toBe(2);
  });

  it("never returns another tenant's chunks, whatever the question", async () => {
    const a = await chatTenant();
    const b = await chatTenant();
    const s = await addSource(a.key, { type: "markdown", title: "A's policy", content: SHIPPING });
    await settled(a.key, s.id);
    const other = await addSource(b.key, {
      type: "text",
      title: "B",
      content: "Our opening hours are 9 to 5.",
    });
    await settled(b.key, other.id);
    expect((await search(a.id, "is shipping free")).length).toBeGreaterThan(0);
    expect(await search(b.id, "is shipping free")).toEqual([]);
    const reply = await send("POST", "/v1/chat/completions", b.key, {
      model: "mock",
      messages: [{ role: "user", content: "is shipping free" }],
    });
    const body = (await reply.json()) as {
      chatedge_sources: unknown[];
      choices: { message: { content: string } }[];
    };
    expect(body.chatedge_sources).toEqual([]);
    expect(body.choices[0]?.message.content).not.toContain("Shipping");
  });

  it("fetches a URL source, following a redirect, and reads it by its Content-Type", async () => {
    const { key } = await chatTenant();
    const target = page({ body: "<h1>Hours</h1><p>We are open 9 to 5 on weekdays.</p>" });
    const s = await addSource(key, { type: "url", url: page({ status: "302", location: target }) });
    expect(s.title).toBe(s.url);
    expect(await settled(key, s.id)).toMatchObject({ status: "ready", chunk_count: 1, type: "url" });
    const md = await addSource(key, {
      type: "url",
      url: page({ body: "# Hours\n\nClosed on Sundays.", type: "text/markdown" }),
    });
    expect(await settled(key, md.id)).toMatchObject({ status: "ready", chunk_count: 1 });
  });

  it("fails a URL source for good on a 404 or a non-text page, with the reason", async () => {
    const { key } = await chatTenant();
    const missing = await addSource(key, { type: "url", url: page({ status: "404" }) });
    const image = await addSource(key, { type: "url", url: page({ body: "x", type: "image/png" }) });
    expect(await settled(key, missing.id)).toMatchObject({
      status: "failed",
      error: "fetching the page answered 404",
    });
    expect(await settled(key, image.id)).toMatchObject({
      status: "failed",
      error: "the page is image/png, not text or HTML",
    });
  });

  it("retries a page that answers 5xx with backoff, then records the failure after the last attempt", async () => {
    const { key, id } = await chatTenant();
    // Written straight to Postgres, so no queue message races the test's own deliveries.
    const s = { id: crypto.randomUUID() };
    await query(
      sql`insert into knowledge_sources (id, tenant_id, kind, title, url) values (${s.id}, ${id}, 'url', 'Down', ${page({ status: "503" })})`,
    );
    const msg = { tenantId: id, sourceId: s.id, version: 1 };
    const first = await deliver(knowledgeBatch([msg], 1));
    expect(first.retryMessages).toHaveLength(1);
    expect(Object.values(first.delays)).toEqual([retryDelaySeconds(1)]);
    expect((await (await send("GET", `/v1/knowledge/sources/${s.id}`, key)).json()) as object).toMatchObject({
      status: "indexing",
    });
    const last = await deliver(knowledgeBatch([msg], MAX_ATTEMPTS));
    expect(last.explicitAcks).toHaveLength(1);
    expect((await (await send("GET", `/v1/knowledge/sources/${s.id}`, key)).json()) as object).toMatchObject({
      status: "failed",
      error: "indexing failed: fetching the page answered 503",
    });
  });
});
