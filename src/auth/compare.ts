// Workers-only: crypto.subtle.timingSafeEqual is a Cloudflare extension of Web Crypto. The Node-side
// typecheck (tsconfig.node.json, which reaches src through bench/ and the generated env types) sees
// Node's `crypto` global, hence the `SubtleCrypto` (workers-types') annotation.
const subtle = (): SubtleCrypto => crypto.subtle;

/** Compares two secrets in constant time by comparing their fixed-length digests. */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(presented)),
    crypto.subtle.digest("SHA-256", enc.encode(expected)),
  ]);
  return subtle().timingSafeEqual(a, b);
}

/** Compares a presented key's hash with the stored one in constant time. */
export function hashesEqual(presentedHex: string, storedHex: string): boolean {
  const enc = new TextEncoder();
  const a = enc.encode(presentedHex);
  const b = enc.encode(storedHex);
  return a.byteLength === b.byteLength && subtle().timingSafeEqual(a, b);
}
