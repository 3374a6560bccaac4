import { eventually } from "../eventually";
import { send } from "../helpers";

export type SourceOut = {
  id: string;
  type: string;
  title: string;
  url: string | null;
  status: string;
  error: string | null;
  version: number;
  chunk_count: number;
};

/** Adds a source with a secret key and answers the created source. */
export async function addSource(key: string, body: unknown): Promise<SourceOut> {
  const res = await send("POST", "/v1/knowledge/sources", key, body);
  if (res.status !== 201) throw new Error(`addSource: ${res.status} ${await res.text()}`);
  return (await res.json()) as SourceOut;
}

/** Waits until the consumer has settled the source (ready or failed) at `version`. */
export function settled(key: string, id: string, version = 1): Promise<SourceOut> {
  return eventually(async () => {
    const res = await send("GET", `/v1/knowledge/sources/${id}`, key);
    const s = (await res.json()) as SourceOut;
    if (s.version !== version || (s.status !== "ready" && s.status !== "failed"))
      throw new Error(`source ${id} is ${s.status} at version ${s.version}`);
    return s;
  });
}

export const SHIPPING = `# Shipping policy

## Delivery times

Orders ship within two business days. Standard delivery takes 3 to 5 business days inside the EU.

## Shipping costs

Shipping is free for orders over 50 euros. Below that, a flat fee of 4.90 euros applies.
`;

export const RETURNS_HTML = `<html><head><title>x</title><style>.a{color:red}</style><script>alert("returns")</script></head>
<body><h1>Returns FAQ</h1><p>You can return any item within <b>30 days</b> of delivery &amp; get a full refund.</p>
<h2>Damaged items</h2><p>Send us a photo of the damaged parcel and we replace it for free.</p></body></html>`;
