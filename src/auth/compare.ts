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

/**
 * Compares a presented key's hash with the stored one in constant time: every character is looked
 * at whatever the first difference (in JS: Web Crypto's timingSafeEqual would need both encoded
 * first, a few percent of a chat request's CPU for a 64-character compare).
 */
export function hashesEqual(presentedHex: string, storedHex: string): boolean {
  if (presentedHex.length !== storedHex.length) return false;
  let diff = 0;
  for (let i = 0; i < presentedHex.length; i++) diff |= presentedHex.charCodeAt(i) ^ storedHex.charCodeAt(i);
  return diff === 0;
}
