import { describe, expect, it } from "vitest";
import { chatTenant } from "../chat/helpers";
import { admin, createKey, envelope, query, send, sql } from "../helpers";
import { addSource, RETURNS_HTML, SHIPPING, type SourceOut, settled } from "./helpers";

type Chunk = { heading: string; content: string; version: number; ordinal: number };
const chunksOf = (sourceId: string) =>
  query<Chunk>(
    sql`select heading, content, version, ordinal from knowledge_chunks where source_id = ${sourceId} order by version, ordinal`,
  );

describe("knowledge sources", () => {
  it("indexes a Markdown document in the background, one chunk per section with its heading path", async () => {
    const { key } = await chatTenant();
    const created = await addSource(key, { type: "markdown", title: "Shipping", content: SHIPPING });
    expect(created).toMatchObject({
      type: "markdown",
      title: "Shipping",
      status: "queued",
      version: 1,
      chunk_count: 0,
    });
    const ready = await settled(key, created.id);
    expect(ready).toMatchObject({ status: "ready", error: null, chunk_count: 2 });
    expect((await chunksOf(created.id)).map((c) => c.heading)).toEqual([
      "Shipping policy > Delivery times",
      "Shipping policy > Shipping costs",
    ]);
  });

  it("reads HTML as text: tags and scripts gone, entities decoded, headings kept", async () => {
    const { key } = await chatTenant();
    const s = await addSource(key, { type: "html", title: "Returns", content: RETURNS_HTML });
    expect((await settled(key, s.id)).status).toBe("ready");
    const chunks = await chunksOf(s.id);
    expect(chunks.map((c) => c.heading)).toEqual(["Returns FAQ", "Returns FAQ > Damaged items"]);
    expect(chunks[0]?.content).toBe(
      "You can return any item within 30 days of delivery & get a full refund.",
    );
    expect(chunks.map((c) => c.content).join(" ")).not.toMatch(/alert|color|<|>/);
  });

  it("indexes plain text, PDF text and Q&A pairs", async () => {
    const { key } = await chatTenant();
    const text = await addSource(key, {
      type: "text",
      title: "Notes",
      content: "# not a heading\n\nOpening hours are 9 to 5.",
    });
    const pdf = await addSource(key, {
      type: "pdf_text",
      title: "Manual",
      content: "The warranty lasts two years and cov-\ners parts.\fPage two.",
    });
    const qa = await addSource(key, {
      type: "qa",
      title: "FAQ",
      pairs: [
        { question: "Do you ship abroad?", answer: "Yes, to 30 countries." },
        { question: "Can I pay by invoice?", answer: "Only business customers." },
      ],
    });
    for (const s of [text, pdf, qa]) expect((await settled(key, s.id)).status).toBe("ready");
    expect(await chunksOf(text.id)).toMatchObject([
      { heading: "", content: "# not a heading\n\nOpening hours are 9 to 5." },
    ]);
    expect((await chunksOf(pdf.id)).map((c) => c.content)).toEqual([
      "The warranty lasts two years and covers parts.\n\nPage two.",
    ]);
    expect(await chunksOf(qa.id)).toMatchObject([
      { heading: "Do you ship abroad?", content: "Q: Do you ship abroad?\nA: Yes, to 30 countries." },
      { heading: "Can I pay by invoice?", content: "Q: Can I pay by invoice?\nA: Only business customers." },
    ]);
  });

  it("lists, re-indexes on update (old chunks replaced) and deletes with its chunks, each audited", async () => {
    const { id, key } = await chatTenant();
    const s = await addSource(key, { type: "markdown", title: "Shipping", content: SHIPPING });
    await settled(key, s.id);
    const put = await send("PUT", `/v1/knowledge/sources/${s.id}`, key, {
      type: "text",
      title: "Shipping v2",
      content: "Everything ships the same day.",
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ status: "queued", version: 2, title: "Shipping v2" });
    const v2 = await settled(key, s.id, 2);
    expect(v2).toMatchObject({ status: "ready", chunk_count: 1, type: "text" });
    expect(await chunksOf(s.id)).toMatchObject([
      { version: 2, ordinal: 0, content: "Everything ships the same day." },
    ]);

    const list = (await (await send("GET", "/v1/knowledge/sources", key)).json()) as { sources: SourceOut[] };
    expect(list.sources.map((x) => x.id)).toEqual([s.id]);

    const del = await send("DELETE", `/v1/knowledge/sources/${s.id}`, key);
    expect(del.status).toBe(200);
    expect(await chunksOf(s.id)).toEqual([]);
    expect((await send("GET", `/v1/knowledge/sources/${s.id}`, key)).status).toBe(404);
    const audit = await query<{ action: string; target: string }>(
      sql`select action, target from audit_log where tenant_id = ${id} and action like 'knowledge.%' order by id`,
    );
    expect(audit).toEqual([
      { action: "knowledge.source.create", target: s.id },
      { action: "knowledge.source.update", target: s.id },
      { action: "knowledge.source.delete", target: s.id },
    ]);
  });

  it("works the same under /admin/tenants/{id}", async () => {
    const { id, key } = await chatTenant();
    const res = await admin("POST", `/tenants/${id}/knowledge/sources`, {
      type: "text",
      title: "A",
      content: "Alpha text.",
    });
    expect(res.status).toBe(201);
    const s = (await res.json()) as SourceOut;
    expect((await settled(key, s.id)).status).toBe("ready");
    const got = await admin("GET", `/tenants/${id}/knowledge/sources/${s.id}`);
    expect(await got.json()).toMatchObject({ id: s.id, status: "ready" });
    const audit = await query<{ actor: string }>(sql`select actor from audit_log where target = ${s.id}`);
    expect(audit).toEqual([{ actor: "admin" }]);
  });

  it("refuses bad input in the error envelope and writes nothing", async () => {
    const { id, key } = await chatTenant();
    const cases: unknown[] = [
      {},
      { type: "docx", title: "x", content: "y" },
      { type: "markdown", title: "", content: "y" },
      { type: "markdown", title: "x", content: "" },
      { type: "markdown", title: "x", content: "y", extra: 1 },
      { type: "qa", title: "x", pairs: [] },
      { type: "qa", title: "x", pairs: [{ question: "q" }] },
      { type: "url", url: "ftp://example.com/a" },
      { type: "url", url: "javascript:alert(1)" },
      { type: "markdown", title: "x", content: "y", url: "javascript:alert(1)" },
    ];
    for (const body of cases) {
      const res = await send("POST", "/v1/knowledge/sources", key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await envelope(res)).code).toBe("VALIDATION_FAILED");
    }
    const tooLong = await send("POST", "/v1/knowledge/sources", key, {
      type: "text",
      title: "x",
      content: "a".repeat(60_001),
    });
    expect(tooLong.status).toBe(400);
    expect((await send("GET", "/v1/knowledge/sources/not-a-uuid", key)).status).toBe(400);
    expect(await query(sql`select id from knowledge_sources where tenant_id = ${id}`)).toEqual([]);
  });

  it("refuses publishable keys, other tenants' sources and unknown ids", async () => {
    const a = await chatTenant();
    const b = await chatTenant();
    const s = await addSource(a.key, { type: "text", title: "Secret", content: "Tenant A only." });
    const pk = await createKey(a.id, "publishable");
    expect((await send("GET", "/v1/knowledge/sources", pk.key)).status).toBe(403);
    expect(
      (await send("POST", "/v1/knowledge/sources", pk.key, { type: "text", title: "x", content: "y" }))
        .status,
    ).toBe(403);
    for (const [method, body] of [
      ["GET", undefined],
      ["PUT", { type: "text", title: "hijack", content: "B's now" }],
      ["DELETE", undefined],
    ] as const) {
      const res = await send(method, `/v1/knowledge/sources/${s.id}`, b.key, body);
      expect(res.status).toBe(404);
    }
    expect((await send("GET", "/v1/knowledge/sources", b.key)).status).toBe(200);
    expect(
      ((await (await send("GET", "/v1/knowledge/sources", b.key)).json()) as { sources: unknown[] }).sources,
    ).toEqual([]);
    expect((await settled(a.key, s.id)).title).toBe("Secret");
    expect((await send("GET", `/v1/knowledge/sources/${crypto.randomUUID()}`, a.key)).status).toBe(404);
  });

  it("records why a source failed, and a failed source does not hold up the others", async () => {
    const { key } = await chatTenant();
    const empty = await addSource(key, {
      type: "html",
      title: "Only a script",
      content: "<script>x()</script>",
    });
    const good = await addSource(key, { type: "text", title: "Good", content: "Fine text." });
    expect(await settled(key, empty.id)).toMatchObject({
      status: "failed",
      error: "no text to index",
      chunk_count: 0,
    });
    expect(await settled(key, good.id)).toMatchObject({ status: "ready", chunk_count: 1 });
  });
});
