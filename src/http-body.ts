/**
 * Reads a body the platform fetched from somewhere a tenant chose (a tool, a page, an embeddings
 * API) as text, up to `cap` bytes: null for a body that declares or turns out to be longer, without
 * reading the rest. A body read whole could be made to fill the isolate's memory, which every
 * tenant's requests in it share.
 */
export async function readCapped(res: Response, cap: number): Promise<string | null> {
  if (Number(res.headers.get("content-length") ?? 0) > cap) {
    await res.body?.cancel().catch(() => {});
    return null;
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      return null;
    }
    parts.push(value);
  }
  return new TextDecoder().decode(joined(parts, size));
}

/** `parts` in one array of `bytes` bytes (their sum). */
export function joined(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
