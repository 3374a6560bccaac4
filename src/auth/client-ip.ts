/**
 * The caller's network address, and the keyed hash it is kept as. Cloudflare's edge sets
 * `CF-Connecting-IP` on every request (a client cannot choose it there); `wrangler dev` sets it to the
 * socket's address. Addresses are never stored or logged: counters hold an HMAC of them under a key
 * derived from the ADMIN_TOKEN secret (src/auth/derived-keys.ts), comparable but not readable.
 */
import { derivedKey, hmac } from "./derived-keys";
import { toHex } from "./keys";

/** The client's address as Cloudflare reports it; "unknown" where nothing reports one. */
export function clientIp(headers: Headers): string {
  return headers.get("cf-connecting-ip")?.trim() || "unknown";
}

/** A keyed hash of an address: 16 bytes of HMAC-SHA256, hex. */
export async function ipHash(env: { ADMIN_TOKEN: string }, ip: string): Promise<string> {
  const mac = await hmac(await derivedKey(env, "ip hash"), ip);
  return toHex(mac.subarray(0, 16));
}
