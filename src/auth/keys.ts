const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ID_CHARS = 12;
const SECRET_CHARS = 32;

export type KeyKind = "secret" | "publishable";

const KIND_TAG: Record<KeyKind, string> = { secret: "sk", publishable: "pk" };
const KEY_PATTERN = new RegExp(`^(sk|pk)_([A-Za-z0-9]{${ID_CHARS}})[A-Za-z0-9]{${SECRET_CHARS}}$`);

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

/** Makes a key `sk_<id><secret>`: its `sk_<id>` prefix indexes it, only its hash is stored. */
export async function generateKey(kind: KeyKind): Promise<NewKey> {
  const key = `${KIND_TAG[kind]}_${randomToken(ID_CHARS)}${randomToken(SECRET_CHARS)}`;
  return { key, prefix: key.slice(0, 3 + ID_CHARS), hash: await sha256Hex(key), last4: key.slice(-4) };
}

/** Splits a presented key into its kind and lookup prefix; anything malformed is undefined. */
export function parseKey(key: string): { kind: KeyKind; prefix: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  return { kind: m[1] === "sk" ? "secret" : "publishable", prefix: key.slice(0, 3 + ID_CHARS) };
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads `Authorization: Bearer <token>`; undefined when absent or not of that form. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header.trim());
  return m?.[1];
}
