const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ID_CHARS = 12;
const SECRET_CHARS = 32;
/** Keys made since checksums came in end with 6 base62 characters of the CRC-32 of the rest. */
const CHECK_CHARS = 6;

export type KeyKind = "secret" | "publishable";

const KIND_TAG: Record<KeyKind, string> = { secret: "sk", publishable: "pk" };
const KEY_PATTERN = new RegExp(
  `^(sk|pk)_([A-Za-z0-9]{${ID_CHARS}})[A-Za-z0-9]{${SECRET_CHARS}}([A-Za-z0-9]{${CHECK_CHARS}})?$`,
);

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE) of ASCII text, as 6 base62 characters. */
function checksum(text: string): string {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++)
    crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0) ^ (crc >>> 8);
  let n = (crc ^ 0xffffffff) >>> 0;
  let out = "";
  for (let i = 0; i < CHECK_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Random base62 text; rejection sampling keeps every character equally likely. */
export function randomToken(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export interface NewKey {
  key: string;
  prefix: string;
  hash: string;
  last4: string;
}

/**
 * Makes a key `sk_<id><secret><check>`: its `sk_<id>` prefix indexes it, only its hash is stored,
 * and the checksum lets a mistyped or made-up key be refused without a lookup.
 */
export async function generateKey(kind: KeyKind): Promise<NewKey> {
  const body = `${KIND_TAG[kind]}_${randomToken(ID_CHARS)}${randomToken(SECRET_CHARS)}`;
  const key = `${body}${checksum(body)}`;
  return { key, prefix: key.slice(0, 3 + ID_CHARS), hash: await sha256Hex(key), last4: key.slice(-4) };
}

/**
 * Splits a presented key into its kind and lookup prefix; anything malformed, or with a checksum
 * that does not match, is undefined. Keys made before checksums (no check characters) still parse.
 */
export function parseKey(key: string): { kind: KeyKind; prefix: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  if (m[3] !== undefined && checksum(key.slice(0, -CHECK_CHARS)) !== m[3]) return undefined;
  return { kind: m[1] === "sk" ? "secret" : "publishable", prefix: key.slice(0, 3 + ID_CHARS) };
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** HMAC-SHA256 of `text` under `secret`, hex (webhook signatures). */
export async function hmacSha256Hex(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text))));
}

/** Reads `Authorization: Bearer <token>`; undefined when absent or not of that form. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header.trim());
  return m?.[1];
}
