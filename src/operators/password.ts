/**
 * Operators' passwords. The Workers runtime has no memory-hard KDF (no scrypt or Argon2 in Web
 * Crypto, and a WebAssembly one would cost the isolate's memory), so PBKDF2-HMAC-SHA256 at
 * 100,000 iterations: the most Workers' Web Crypto accepts (it refuses more). The iteration count
 * is stored with each hash, so a later increase re-hashes on the next sign-in.
 */
import { hashesEqual } from "../auth/compare";
import { toHex } from "../auth/keys";

export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

/** Passwords are 12 to 200 characters; nothing else is required of them (NIST SP 800-63B). */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 200;

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BITS,
  );
  return toHex(new Uint8Array(bits));
}

/** `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>` of a new random salt. */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  return `pbkdf2-sha256$${iterations}$${toHex(salt)}$${await derive(password, salt, iterations)}`;
}

// Compared against when the account does not exist or has no password yet, so that a wrong email
// costs the same time as a wrong password (no account enumeration by timing).
let decoy: Promise<string> | undefined;

/** Whether `password` matches `stored`; a null or malformed `stored` is false after the same work. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = stored?.split("$");
  if (parts?.length !== 4 || parts[0] !== "pbkdf2-sha256") {
    decoy ??= hashPassword("decoy password, never matches");
    await verifyPassword(password, await decoy);
    return false;
  }
  const [, iterations, saltHex, hashHex] = parts as [string, string, string, string];
  const salt = new Uint8Array((saltHex.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)));
  return hashesEqual(await derive(password, salt, Number(iterations)), hashHex);
}
