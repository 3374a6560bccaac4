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

/**
 * The network an address stands for, as limits count it: an IPv4 address itself, an IPv6 address's
 * /64 (the prefix one subscriber or host is given: every address in it is the same caller, so a
 * script cannot rotate through its 2^64 addresses to get fresh windows), an IPv4-mapped IPv6
 * address its IPv4. Anything that does not parse as IPv6 is kept as it is.
 */
export function addressNetwork(ip: string): string {
  if (!ip.includes(":")) return ip;
  const bare = ip.split("%")[0]?.toLowerCase() ?? "";
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(bare);
  if (mapped) return mapped[1] as string;
  const halves = bare.split("::");
  if (halves.length > 2) return ip;
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups.
  const width = (gs: string[]) => gs.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - width(head) - width(tail);
  if (halves.length === 2 ? missing < 1 : missing !== 0) return ip;
  const prefix = [...head, ...Array<string>(missing).fill("0"), ...tail].slice(0, 4);
  if (!prefix.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return ip;
  return `${prefix.map((g) => Number.parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/** A keyed hash of the network an address stands for (`addressNetwork`): 16 bytes of HMAC-SHA256, hex. */
export async function ipHash(env: { ADMIN_TOKEN: string }, ip: string): Promise<string> {
  const mac = await hmac(await derivedKey(env, "ip hash"), addressNetwork(ip));
  return toHex(mac.subarray(0, 16));
}
