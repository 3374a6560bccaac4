// Workers-only: crypto.subtle.timingSafeEqual is a Cloudflare extension of Web Crypto.

/** Compares two secrets in constant time by comparing their fixed-length digests. */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(presented)),
    crypto.subtle.digest("SHA-256", enc.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Compares a presented key's hash with the stored one in constant time. */
export function hashesEqual(presentedHex: string, storedHex: string): boolean {
  const enc = new TextEncoder();
  const a = enc.encode(presentedHex);
  const b = enc.encode(storedHex);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}
