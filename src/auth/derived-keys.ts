/**
 * Keys the platform signs and hashes with, derived from the ADMIN_TOKEN secret by HMAC-SHA256 under
 * a label per purpose, so one secret serves several uses and no two uses share a key. Rotating the
 * admin token rotates them all (visitor tokens then start over; hashed addresses no longer match).
 */
const keys = new WeakMap<object, Map<string, Promise<CryptoKey>>>();

export type KeyPurpose = "ip hash" | "visitor token" | "live ticket";

const enc = new TextEncoder();
const HMAC = { name: "HMAC", hash: "SHA-256" };

/** A key derived for `label`, made once per env object (per isolate). */
function derived(
  env: { ADMIN_TOKEN: string },
  label: string,
  make: (raw: ArrayBuffer) => Promise<CryptoKey>,
) {
  let byLabel = keys.get(env);
  if (!byLabel) {
    byLabel = new Map();
    keys.set(env, byLabel);
  }
  let key = byLabel.get(label);
  if (!key) {
    key = crypto.subtle
      .importKey("raw", enc.encode(env.ADMIN_TOKEN), HMAC, false, ["sign"])
      .then((root) => crypto.subtle.sign("HMAC", root, enc.encode(`chatedge ${label} v1`)))
      .then(make);
    byLabel.set(label, key);
  }
  return key;
}

/** The HMAC-SHA256 key for one purpose, once per env object (per isolate). */
export function derivedKey(env: { ADMIN_TOKEN: string }, purpose: KeyPurpose): Promise<CryptoKey> {
  return derived(env, purpose, (raw) => crypto.subtle.importKey("raw", raw, HMAC, false, ["sign", "verify"]));
}

/** The AES-256-GCM key that seals what the platform keeps in Redis (src/cache/seal.ts). */
export function sealingKey(env: { ADMIN_TOKEN: string }): Promise<CryptoKey> {
  return derived(env, "redis seal", (raw) =>
    crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]),
  );
}

/** HMAC-SHA256 of text under a key, as bytes. */
export async function hmac(key: CryptoKey, text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
}
