/**
 * Tokens the platform issues and later reads back without storing them: `<prefix>.<payload>.<mac>`,
 * the payload a JSON object in base64url, the mac its HMAC-SHA256 (base64url, over `<prefix>.<payload>`)
 * under the key derived for the token's purpose. Visitor tokens (src/chat/visitor-token.ts) and live
 * tickets (src/handoff/ticket.ts) are two of them; each checks its own fields once the mac holds.
 */
import { fromBase64Url, toBase64Url } from "./base64url";
import { derivedKey, hmac, type KeyPurpose } from "./derived-keys";

/** A part of a token as bytes: 1-4096 characters of base64url, else undefined. */
function unb64url(text: string): Uint8Array | undefined {
  // A visitor token's payload with a 256-character user id fits (JSON escapes, UTF-8 and base64 included).
  return text.length >= 1 && text.length <= 4096 ? fromBase64Url(text) : undefined;
}

export async function signToken(
  env: { ADMIN_TOKEN: string },
  purpose: KeyPurpose,
  prefix: string,
  payload: object,
): Promise<string> {
  const body = toBase64Url(new TextEncoder().encode(JSON.stringify(payload)));
  const mac = toBase64Url(await hmac(await derivedKey(env, purpose), `${prefix}.${body}`));
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
