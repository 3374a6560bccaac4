import { describe, expect, it } from "vitest";
import { embedTexts, questionCacheKey, unpackVector } from "../../../src/knowledge/embed";
import { DEFAULT_UNKNOWN_ANSWER, groundMessage, planKnowledge } from "../../../src/knowledge/retrieve";
import type { Settings } from "../../../src/knowledge/schemas";
import { searchSemantic } from "../../../src/knowledge/search";
import { chatTenant, completions } from "../chat/helpers";
import { createKey, envelope, query, send, sql, uniqueId } from "../helpers";
import {
  addSource,
  BASE_URL,
  converse,
  embeddingCalls,
  MODEL,
  SHIPPING,
  services,
  setEmbedding,
  settled,
  TAG,
  TYPO,
} from "./helpers";

/** A tenant with the local embedder configured (its own API key) and the shipping policy indexed. */
async function semanticShop(overrides: Record<string, unknown> = {}) {
  const t = await chatTenant(overrides);
  const apiKey = `sk-emb-${uniqueId()}`;
  await setEmbedding(t.key, apiKey);
  const source = await addSource(t.key, {
    type: "markdown",
    title: "Shipping policy",
    content: SHIPPING,
    url: "https://shop.example/shipping",
  });
  expect((await settled(t.key, source.id)).status).toBe("ready");
  return { ...t, apiKey, source };
}

describe("embedding settings", () => {
  it("stores the model, never returns the key, and refuses bad input without changing anything", async () => {
    const { key, id } = await chatTenant();
    await setEmbedding(key, "sk-emb-secret-value");
    const got = (await (await send("GET", "/v1/knowledge/settings", key)).json()) as Settings;
    expect(got.embedding).toEqual({
      provider: "openai",
      model: MODEL,
      base_url: BASE_URL,
      api_key_set: true,
    });
    expect(JSON.stringify(got)).not.toContain("sk-emb-secret-value");
    const audit = await query<{ data: { embedding?: { api_key?: string } } }>(
      sql`select data from audit_log where tenant_id = ${id} and action = 'knowledge.settings.update'`,
    );
    expect(audit.map((r) => r.data.embedding?.api_key)).toEqual(["(set)"]);

    for (const embedding of [
      { provider: "openai", model: MODEL },
      { provider: "openai", model: MODEL, base_url: "file:///etc/passwd" },
      { provider: "workers-ai", model: "bge-small" },
      { provider: "cohere", model: "x" },
      { provider: "none", model: "x" },
    ]) {
      const res = await send("PATCH", "/v1/knowledge/settings", key, { embedding, enabled: false });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("VALIDATION_FAILED");
    }
    expect(await (await send("GET", "/v1/knowledge/settings", key)).json()).toEqual(got);

    expect(
      (await send("PATCH", "/v1/knowledge/settings", key, { embedding: { provider: "none" } })).status,
    ).toBe(200);
    const off = (await (await send("GET", "/v1/knowledge/settings", key)).json()) as Settings;
    expect(off.embedding).toEqual({ provider: "none", model: null, base_url: null, api_key_set: false });
  });
});

describe("semantic search", () => {
  it("embeds every chunk at ingestion through the consumer, in one batched call", async () => {
    const { source, apiKey } = await semanticShop();
    const rows = await query<{ heading: string; dims: number; model: string; norm: number }>(
      sql`select heading, cardinality(embedding) as dims, embedding_model as model,
            (select sqrt(sum(x * x)) from unnest(embedding) x) as norm
          from knowledge_chunks where source_id = ${source.id} order by ordinal`,
    );
    expect(rows.map((r) => [r.heading, Number(r.dims), r.model])).toEqual([
      ["Shipping policy > Delivery times", 384, TAG],
      ["Shipping policy > Shipping costs", 384, TAG],
    ]);
    for (const r of rows) expect(Number(r.norm)).toBeCloseTo(1, 5);
    expect(await embeddingCalls(apiKey)).toBe(1);
  });

  it("answers a question keyword search misses, through the conversation API and the OpenAI route", async () => {
    const { key, source } = await semanticShop();
    const keywordOnly = await chatTenant();
    const plain = await addSource(keywordOnly.key, {
      type: "markdown",
      title: "Shipping policy",
      content: SHIPPING,
    });
    await settled(keywordOnly.key, plain.id);
    // Keyword search alone finds nothing for the misspelt words: the tenant's "I don't know".
    expect((await converse(keywordOnly.key, TYPO)).message?.content).toBe(DEFAULT_UNKNOWN_ANSWER);

    const reply = await converse(key, TYPO);
    expect(reply.message?.content).toBe(
      "Shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies. [S1]",
    );
    expect(reply.sources).toEqual([
      { id: source.id, title: "Shipping policy", url: "https://shop.example/shipping" },
    ]);

    const res = await completions(key, { model: "mock", messages: [{ role: "user", content: TYPO }] });
    const body = (await res.json()) as {
      choices: { message: { content: string } }[];
      chatedge_sources: unknown[];
    };
    expect(body.choices[0]?.message.content).toMatch(/^Shipping is free for orders over 50 euros\..*\[S1\]$/);
    expect(body.chatedge_sources).toEqual([
      { id: source.id, title: "Shipping policy", url: "https://shop.example/shipping" },
    ]);
  });

  it("fuses keyword and semantic lists and caches the question's vector per tenant", async () => {
    const a = await semanticShop();
    const b = await semanticShop();
    const svc = services();
    try {
      const g = await groundMessage(svc, a.id, "What does shipping cost?");
      expect(g.kind === "grounded" && g.retrieval).toBe("hybrid");
      expect(g.kind === "grounded" && g.hits[0]?.heading).toBe("Shipping policy > Shipping costs");
      const before = await embeddingCalls(a.apiKey);
      await groundMessage(svc, a.id, "What does shipping cost?");
      expect(await embeddingCalls(a.apiKey)).toBe(before);
      // Same model, same question, another tenant: its own call, never A's cached vector.
      const bBefore = await embeddingCalls(b.apiKey);
      await groundMessage(svc, b.id, "What does shipping cost?");
      expect(await embeddingCalls(b.apiKey)).toBe(bBefore + 1);
      const cfg = { provider: "openai", model: MODEL, baseUrl: BASE_URL, apiKey: null } as const;
      const [ka, kb] = await Promise.all([
        questionCacheKey(a.id, cfg, "What does shipping cost?"),
        questionCacheKey(b.id, cfg, "What does shipping cost?"),
      ]);
      expect(ka).not.toBe(kb);
      expect(ka.startsWith(`kq:${a.id}:`)).toBe(true);
      // Kept packed (float32 bytes), a quarter of its JSON, and read back as the same float32 values.
      const packed = await svc.cache.getJson<unknown>(ka);
      expect(typeof packed).toBe("string");
      const [model] = await embedTexts(svc.env, { ...cfg, apiKey: a.apiKey }, ["What does shipping cost?"]);
      const vector = model ?? [];
      expect(unpackVector(packed)).toEqual(vector.map(Math.fround));
      // Four bytes a dimension, in base64url: what a model's 17-digit JSON numbers take a quarter of.
      expect((packed as string).length).toBe(Math.ceil((vector.length * 4 * 4) / 3));
      // A copy an older version kept as JSON is a miss: the question is embedded again, and packed.
      await svc.cache.setJson(ka, vector, 60);
      const again = await embeddingCalls(a.apiKey);
      await groundMessage(svc, a.id, "What does shipping cost?");
      expect(await embeddingCalls(a.apiKey)).toBe(again + 1);
      expect(typeof (await svc.cache.getJson<unknown>(ka))).toBe("string");
    } finally {
      await svc.dbh.close();
    }
  });

  it("never returns another tenant's vectors", async () => {
    const a = await semanticShop();
    const other = await chatTenant();
    const svc = services();
    try {
      const cfg = { provider: "openai", model: MODEL, baseUrl: BASE_URL, apiKey: a.apiKey } as const;
      const [v] = await embedTexts(svc.env, cfg, ["Shipping is free for orders over 50 euros."]);
      expect((await searchSemantic(svc.dbh.db, a.id, TAG, v ?? [])).length).toBe(2);
      expect(await searchSemantic(svc.dbh.db, other.id, TAG, v ?? [])).toEqual([]);
      // Another model's vectors are not compared either.
      expect(await searchSemantic(svc.dbh.db, a.id, "openai:elsewhere#other", v ?? [])).toEqual([]);
    } finally {
      await svc.dbh.close();
    }
  });

  it("falls back to keyword search when the question cannot be embedded, and says so", async () => {
    const { key, id, source } = await semanticShop();
    // Same model and URL (the stored vectors still match), but a key the API refuses.
    await setEmbedding(key, "sk-bad-embedding-key");
    const svc = services();
    try {
      const g = await groundMessage(svc, id, "Is shipping free?");
      expect(g.kind === "grounded" && g.retrieval).toBe("keyword_fallback");
      expect(g.kind === "grounded" && g.hits[0]?.heading).toBe("Shipping policy > Shipping costs");
    } finally {
      await svc.dbh.close();
    }
    const reply = await converse(key, "Is shipping free?");
    expect(reply.sources).toEqual([
      { id: source.id, title: "Shipping policy", url: "https://shop.example/shipping" },
    ]);
  });

  it("indexes a source for keyword search only when the model refuses its chunks", async () => {
    const t = await chatTenant();
    await setEmbedding(t.key, "sk-bad-at-ingestion");
    const s = await addSource(t.key, { type: "markdown", title: "Shipping policy", content: SHIPPING });
    expect((await settled(t.key, s.id)).status).toBe("ready");
    const rows = await query<{ n: string; embedded: string }>(
      sql`select count(*) as n, count(embedding) as embedded from knowledge_chunks where source_id = ${s.id}`,
    );
    expect(rows[0]).toEqual({ n: "2", embedded: "0" });
    expect((await converse(t.key, "Is shipping free?")).sources.map((x) => x.id)).toEqual([s.id]);
  });

  it("refuses, in production, a base URL on a private host at every call", async () => {
    const cfg = { provider: "openai", model: MODEL, baseUrl: BASE_URL, apiKey: null } as const;
    await expect(embedTexts({ ENVIRONMENT: "production" }, cfg, ["a"])).rejects.toThrow(
      /^embedding base url /,
    );
    const metadata = { ...cfg, baseUrl: "https://169.254.169.254/v1" };
    await expect(embedTexts({ ENVIRONMENT: "production" }, metadata, ["a"])).rejects.toThrow(
      /^embedding base url /,
    );
  });

  it("reads Workers AI's answer shape through the AI binding, normalised", async () => {
    const calls: unknown[] = [];
    const ai = {
      run: async (model: string, inputs: Record<string, unknown>) => {
        calls.push([model, inputs]);
        const text = inputs.text as string[];
        return { shape: [text.length, 2], data: text.map(() => [3, 4]) };
      },
    };
    const out = await embedTexts(
      { ENVIRONMENT: "test", AI: ai },
      { provider: "workers-ai", model: "@cf/baai/bge-small-en-v1.5" },
      ["a", "b"],
    );
    expect(out).toEqual([
      [0.6, 0.8],
      [0.6, 0.8],
    ]);
    expect(calls).toEqual([["@cf/baai/bge-small-en-v1.5", { text: ["a", "b"] }]]);
    await expect(
      embedTexts({ ENVIRONMENT: "test" }, { provider: "workers-ai", model: "@cf/baai/bge-small-en-v1.5" }, [
        "a",
      ]),
    ).rejects.toThrow("AI binding");
  });
});

/**
 * A copied publishable key's view of the search: each question a script sends is an embedding call
 * and a full-text query the tenant pays for, outside any budget. They run only for a message that
 * was admitted: its address counted, its conversation its visitor's, its tokens reserved.
 */
describe("knowledge searched only for an admitted message", () => {
  const ORIGIN = "https://shop.example";
  const from = (ip: string, token?: string) => ({
    origin: ORIGIN,
    "cf-connecting-ip": ip,
    ...(token ? { "x-visitor-token": token } : {}),
  });
  async function browserShop(addressMessagesPerMinute: number) {
    const t = await semanticShop({
      allowed_origins: [ORIGIN],
      address_messages_per_minute: addressMessagesPerMinute,
    });
    return { ...t, pk: (await createKey(t.id, "publishable")).key };
  }
  async function visitor(pk: string) {
    const ip = `203.0.113.9-${uniqueId("ip")}`;
    const res = await send("POST", "/v1/conversations", pk, {}, from(ip));
    expect(res.status).toBe(201);
    const started = (await res.json()) as { id: string; visitor_token: string };
    return { ip, id: started.id, as: from(ip, started.visitor_token) };
  }

  it("embeds nothing for a message to another visitor's conversation or to none", async () => {
    const shop = await browserShop(30);
    const ann = await visitor(shop.pk);
    const bob = await visitor(shop.pk);
    const before = await embeddingCalls(shop.apiKey);
    for (const [path, headers] of [
      [`/v1/conversations/${ann.id}/messages`, bob.as],
      [`/v1/conversations/${ann.id.slice(0, -6)}Zz0Zz0/messages`, bob.as],
    ] as const) {
      const res = await send(
        "POST",
        path,
        shop.pk,
        { content: `What does shipping cost, ${uniqueId("q")}?` },
        headers,
      );
      expect(res.status).toBe(404);
    }
    expect(await embeddingCalls(shop.apiKey)).toBe(before);
    // Ann's own message is searched, and answered from the knowledge.
    const own = await send(
      "POST",
      `/v1/conversations/${ann.id}/messages`,
      shop.pk,
      { content: `${TYPO} (${uniqueId("q")})` },
      ann.as,
    );
    expect(own.status).toBe(200);
    expect(await embeddingCalls(shop.apiKey)).toBe(before + 1);
  });

  it("embeds only the admitted messages of a burst from one address", async () => {
    const shop = await browserShop(3);
    const v = await visitor(shop.pk);
    const before = await embeddingCalls(shop.apiKey);
    const burst = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        send(
          "POST",
          `/v1/conversations/${v.id}/messages`,
          shop.pk,
          { content: `Is shipping free for order ${i} ${uniqueId("q")}?` },
          v.as,
        ),
      ),
    );
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429, 429, 429, 429]);
    for (const r of burst.filter((r) => r.status === 429))
      expect((await envelope(r)).message).toContain("from this address");
    expect(await embeddingCalls(shop.apiKey)).toBe(before + 3);
  });

  it("never makes a block larger than what a message reserves for it, and charges the block it made", async () => {
    const shop = await semanticShop();
    // Far more about shipping than the default 1,500 tokens of references hold.
    const long = await addSource(shop.key, {
      type: "markdown",
      title: "Shipping handbook",
      content: Array.from(
        { length: 80 },
        (_, i) =>
          `## Shipping zone ${i}\n\n${`Shipping to zone ${i} costs ${i + 3} euros and takes ${i % 9} days. `.repeat(12)}`,
      ).join("\n\n"),
    });
    expect((await settled(shop.key, long.id)).status).toBe("ready");
    const svc = services();
    try {
      const plan = await planKnowledge(svc, shop.id);
      expect(plan.bound).toBeGreaterThan(1_500);
      for (const q of [TYPO, "What does shipping cost?", "Do you sell gift cards?", "x".repeat(3000)]) {
        const g = await groundMessage(svc, shop.id, q, plan);
        expect(g.kind).not.toBe("off");
        expect(g.kind !== "off" && g.tokens).toBeLessThanOrEqual(plan.bound);
      }
      // Settings changed between the reservation and the search: the search keeps the reserved ones.
      const patched = await send("PATCH", "/v1/knowledge/settings", shop.key, { max_context_tokens: 8_000 });
      expect(patched.status).toBe(200);
      expect((await planKnowledge(svc, shop.id)).bound).toBeGreaterThan(8_000);
      const g = await groundMessage(svc, shop.id, "What does shipping cost?", plan);
      expect(g.kind !== "off" && g.tokens).toBeGreaterThan(1_000);
      expect(g.kind !== "off" && g.tokens).toBeLessThanOrEqual(plan.bound);
      // Without the plan the search takes the new settings: a block past the old bound.
      const unplanned = await groundMessage(svc, shop.id, "What does shipping cost?");
      expect(unplanned.kind !== "off" && unplanned.tokens).toBeGreaterThan(plan.bound);
      // A message is charged the block it was sent, not the bound it reserved.
      const reply = await converse(shop.key, "What does shipping cost?");
      expect(reply.sources.length).toBeGreaterThan(0);
      expect(reply.usage.input_tokens).toBeGreaterThan(unplanned.kind !== "off" ? unplanned.tokens : 0);
      expect(reply.usage.input_tokens).toBeLessThan((await planKnowledge(svc, shop.id)).bound);
      // Knowledge switched off: nothing is reserved for it.
      const off = await chatTenant();
      expect((await planKnowledge(svc, off.id)).bound).toBe(0);
    } finally {
      await svc.dbh.close();
    }
  });
});
