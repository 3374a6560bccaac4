/**
 * Sealing for what a named cache keeps in Redis when its values hold secrets (a tenant's identity
 * and Turnstile secrets, its tools' signing secrets): AES-256-GCM under a key derived from
 * ADMIN_TOKEN (src/auth/derived-keys.ts), a fresh 96-bit nonce each time, and what the caller binds
 * it to (the Redis key and the copy's freshness) as the additional data, so a sealed value moved to
 * another key, or stored again as fresh for longer, does not open. Whoever reads Redis (its
 * REST token, a dump, the provider) reads no secret; a value that does not open (tampered, moved,
 * sealed under a rotated admin token) reads as a miss and is loaded again.
 */

import { fromBase64Url, toBase64Url } from "../auth/base64url";
import { sealingKey } from "../auth/derived-keys";

const NONCE_BYTES = 12;
const enc = new TextEncoder();

/** `value` as JSON, sealed for `key` (the text it is bound to): base64url of the nonce and the ciphertext. */
export async function seal(env: { ADMIN_TOKEN: string }, key: string, value: unknown): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: enc.encode(key) },
    await sealingKey(env),
    enc.encode(JSON.stringify(value)),
  );
  const out = new Uint8Array(NONCE_BYTES + sealed.byteLength);
  out.set(iv);
  out.set(new Uint8Array(sealed), NONCE_BYTES);
  return toBase64Url(out);
}

/** What `seal` sealed for `key`; undefined when it does not open. */
export async function unseal<T>(
  env: { ADMIN_TOKEN: string },
  key: string,
  sealed: unknown,
): Promise<T | undefined> {
  if (typeof sealed !== "string") return undefined;
  const bytes = fromBase64Url(sealed);
  if (!bytes || bytes.length <= NONCE_BYTES) return undefined;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, NONCE_BYTES), additionalData: enc.encode(key) },
      await sealingKey(env),
      bytes.subarray(NONCE_BYTES),
    );
    return JSON.parse(new TextDecoder().decode(plain)) as T;
  } catch {
    return undefined;
  }
}
