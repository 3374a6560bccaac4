/**
 * The caller's network address, and the keyed hash it is kept as. Cloudflare's edge sets
 * `CF-Connecting-IP` on every request (a client cannot choose it there); `wrangler dev` sets it to the
 * socket's address. Addresses are never stored or logged: counters and rows hold an HMAC of them under
 * a key derived from the ADMIN_TOKEN secret, so they can be compared but not read back.
 */

const keys = new WeakMap<object, Promise<CryptoKey>>();

function hashKey(env: { ADMIN_TOKEN: string }): Promise<CryptoKey> {
  let key = keys.get(env);
  if (!key) {
    const enc = new TextEncoder();
    key = crypto.subtle
      .importKey("raw", enc.encode(env.ADMIN_TOKEN), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then((root) => crypto.subtle.sign("HMAC", root, enc.encode("chatedge ip hash v1")))
      .then((derived) =>
        crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      );
    keys.set(env, key);
  }
  return key;
}

/** The client's address as Cloudflare reports it; "unknown" where nothing reports one. */
export function clientIp(headers: Headers): string {
  return headers.get("cf-connecting-ip")?.trim() || "unknown";
}

/** A keyed hash of an address: 16 bytes of HMAC-SHA256, hex. */
export async function ipHash(env: { ADMIN_TOKEN: string }, ip: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hashKey(env), new TextEncoder().encode(ip));
  return [...new Uint8Array(mac, 0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
