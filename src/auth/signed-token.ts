/**
 * Tokens the platform issues and later reads back without storing them: `<prefix>.<payload>.<mac>`,
 * the payload a JSON object in base64url, the mac its HMAC-SHA256 (base64url, over `<prefix>.<payload>`)
 * under the key derived for the token's purpose. Visitor tokens (src/chat/visitor-token.ts) and live
 * tickets (src/handoff/ticket.ts) are two of them; each checks its own fields once the mac holds.
 */
import { derivedKey, hmac, type KeyPurpose } from "./derived-keys";

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

function unb64url(text: string): Uint8Array | undefined {
  // A visitor token's payload with a 256-character user id fits (JSON escapes, UTF-8 and base64 included).
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(text)) return undefined;
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  // A loop, not Uint8Array.from with a callback per character: about a quarter of the time.
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

export async function signToken(
  env: { ADMIN_TOKEN: string },
  purpose: KeyPurpose,
  prefix: string,
  payload: object,
): Promise<string> {
  const body = b64url(new TextEncoder().encode(JSON.stringify(payload)));
  const mac = b64url(await hmac(await derivedKey(env, purpose), `${prefix}.${body}`));
  return `${prefix}.${body}.${mac}`;
}

/**
 * The payload of a token this platform signed for `purpose` under `prefix`, parsed but not yet
 * checked field by field; undefined for anything else (wrong shape, prefix or mac, not JSON).
 */
export async function openToken(
  env: { ADMIN_TOKEN: string },
  purpose: KeyPurpose,
  prefix: string,
  token: string | undefined,
): Promise<Record<string, unknown> | undefined> {
  const parts = token?.split(".");
  if (parts?.length !== 3 || parts[0] !== prefix) return undefined;
  const [, body = "", mac = ""] = parts;
  const macBytes = unb64url(mac);
  const raw = unb64url(body);
  if (!macBytes || !raw) return undefined;
  const key = await derivedKey(env, purpose);
  const data = new TextEncoder().encode(`${prefix}.${body}`);
  if (!(await crypto.subtle.verify("HMAC", key, macBytes, data))) return undefined;
  try {
    const p: unknown = JSON.parse(new TextDecoder().decode(raw));
    return p !== null && typeof p === "object" && !Array.isArray(p)
      ? (p as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
