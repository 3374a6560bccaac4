/**
 * Keys the platform signs and hashes with, derived from the ADMIN_TOKEN secret by HMAC-SHA256 under
 * a label per purpose, so one secret serves several uses and no two uses share a key. Rotating the
 * admin token rotates them all (visitor tokens then start over; hashed addresses no longer match).
 */
const keys = new WeakMap<object, Map<string, Promise<CryptoKey>>>();

export type KeyPurpose = "ip hash" | "visitor token" | "live ticket";

/** The HMAC-SHA256 key for one purpose, once per env object (per isolate). */
export function derivedKey(env: { ADMIN_TOKEN: string }, purpose: KeyPurpose): Promise<CryptoKey> {
  let byPurpose = keys.get(env);
  if (!byPurpose) {
    byPurpose = new Map();
    keys.set(env, byPurpose);
  }
  let key = byPurpose.get(purpose);
  if (!key) {
    const enc = new TextEncoder();
    const hmac = { name: "HMAC", hash: "SHA-256" };
    key = crypto.subtle
      .importKey("raw", enc.encode(env.ADMIN_TOKEN), hmac, false, ["sign"])
      .then((root) => crypto.subtle.sign("HMAC", root, enc.encode(`chatedge ${purpose} v1`)))
      .then((raw) => crypto.subtle.importKey("raw", raw, hmac, false, ["sign", "verify"]));
    byPurpose.set(purpose, key);
  }
  return key;
}

/** HMAC-SHA256 of text under a key, as bytes. */
export async function hmac(key: CryptoKey, text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
}
