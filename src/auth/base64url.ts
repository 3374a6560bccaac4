/**
 * Base64url without padding (RFC 4648 section 5): how signed tokens (src/auth/signed-token.ts) and
 * the inbox's cursors carry bytes in headers and URLs. Both come back from clients, so decoding
 * answers undefined for anything that is not such text, and never throws.
 */

export function toBase64Url(bytes: Uint8Array): string {
  // In slices: spreading a long array as arguments overflows the stack (a sealed cache value, src/cache/seal.ts).
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The bytes `text` encodes; undefined for a character outside the alphabet (padding included) or a
 * length no encoding has (one past a multiple of four, where `atob` would throw).
 */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1 || !/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  // A loop, not Uint8Array.from with a callback per character: about a quarter of the time.
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}
