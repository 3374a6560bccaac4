/**
 * The demo tenant's knowledge: a shipping policy and a returns FAQ, added through the admin API
 * once (when the tenant has no source yet), so the worker's own queue indexes them and the demo
 * widget answers "is shipping free?" from them, with the sources under the answer.
 */
import { LOCAL_EMBEDDING_MODEL } from "./embedder.ts";

const SHIPPING_POLICY = `# Shipping policy

## Delivery times

Orders placed before 2 pm on a business day ship the same day; later orders ship the next business day.
Standard delivery takes 2 to 4 business days inside the EU and 5 to 8 business days to the UK, Switzerland and Norway.

## Shipping costs

Standard shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies.
Express delivery (next business day, EU only) costs 9.90 euros whatever the order's value.

## Tracking your parcel

You get an email with the carrier and the tracking number as soon as your parcel ships.
Ask the assistant "where is my order 1234?" to see its status at any time.
`;

const RETURNS_FAQ = {
  type: "qa",
  title: "Returns FAQ",
  pairs: [
    {
      question: "How long do I have to return an item?",
      answer: "You can return any unused item within 30 days of delivery for a full refund.",
    },
    {
      question: "How do I get my refund?",
      answer:
        "Refunds go back to the original payment method within 5 business days after the returned item reaches our warehouse.",
    },
    {
      question: "Who pays for return shipping?",
      answer: "Returns are free: print the prepaid label from your order confirmation email.",
    },
    {
      question: "What if my item arrived damaged?",
      answer:
        "Send a photo of the damaged item to support@demo-shop.example and we send a replacement for free.",
    },
  ],
};

/** Adds the demo documents to `tenant` through the admin API unless it already has knowledge. */
export async function seedDemoKnowledge(base: string, adminToken: string, tenant: string): Promise<number> {
  const headers = { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" };
  const url = `${base}/admin/tenants/${tenant}/knowledge/sources`;
  const listed = await fetch(url, { headers });
  if (!listed.ok) throw new Error(`listing the demo knowledge: ${listed.status}`);
  if (((await listed.json()) as { sources: unknown[] }).sources.length > 0) return 0;
  const docs = [
    { type: "markdown", title: "Shipping policy", content: SHIPPING_POLICY, url: `${base}/demo/#shipping` },
    RETURNS_FAQ,
  ];
  for (const doc of docs) {
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(doc) });
    if (res.status !== 201)
      throw new Error(`adding demo knowledge "${doc.title}": ${res.status} ${await res.text()}`);
  }
  return docs.length;
}

/**
 * Waits until every source of `tenant` is indexed (or failed), so the demo answers from its
 * documents from the first message; answers how many are ready, or throws after `timeoutMs`.
 */
export async function demoKnowledgeReady(
  base: string,
  adminToken: string,
  tenant: string,
  timeoutMs = 30_000,
): Promise<number> {
  const url = `${base}/admin/tenants/${tenant}/knowledge/sources`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${adminToken}` } });
    const { sources } = (await res.json()) as { sources: { status: string }[] };
    const pending = sources.filter((s) => s.status === "queued" || s.status === "indexing");
    if (res.ok && pending.length === 0) return sources.filter((s) => s.status === "ready").length;
    if (Date.now() > deadline) throw new Error(`demo knowledge not indexed after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Points `tenant`'s semantic search at the local embedder (local/embedder.ts) before its sources
 * are added, so the demo ingests vectors and answers with hybrid retrieval. Its similarity floor
 * suits that embedder's lexical vectors (a real model's cosines sit higher).
 */
export async function useLocalEmbedder(
  base: string,
  adminToken: string,
  tenant: string,
  embedderBaseUrl: string,
): Promise<void> {
  const res = await fetch(`${base}/admin/tenants/${tenant}/knowledge/settings`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      embedding: { provider: "openai", model: LOCAL_EMBEDDING_MODEL, base_url: embedderBaseUrl },
      min_similarity: 0.15,
    }),
  });
  if (!res.ok) throw new Error(`configuring the demo's embedder: ${res.status} ${await res.text()}`);
}
