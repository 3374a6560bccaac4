/**
 * Verifies that a request came from chatedge: copy this one file into your tool's Worker.
 *
 * chatedge signs every tool call with the tool's secret (shown once, when the tool is registered or
 * its secret rotated):
 *
 *   X-Chatedge-Timestamp: <unix seconds>
 *   X-Chatedge-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
 *
 * A request is genuine when the signature matches the exact body bytes and the timestamp is within
 * REPLAY_WINDOW_SECONDS of the tool's clock (either way): an old captured request cannot be replayed
 * after that, and a changed body or timestamp breaks the signature. No dependencies, Web Crypto only.
 */

export const TIMESTAMP_HEADER = "X-Chatedge-Timestamp";
export const SIGNATURE_HEADER = "X-Chatedge-Signature";
/** How far the request's timestamp may be from the tool's clock, either way. */
export const REPLAY_WINDOW_SECONDS = 300;

/** Why a request was refused; `ok` carries the body, read once, for the tool to parse. */
export type Verified =
  | { ok: true; body: string; timestamp: number }
  | { ok: false; reason: "missing_headers" | "bad_timestamp" | "stale" | "bad_signature" };

const encoder = new TextEncoder();

/** HMAC-SHA256 of `text` under `secret`, as raw bytes. */
async function hmac(secret: string, text: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
}

/** Hex text to bytes; null when it is not even-length lower- or upper-case hex. */
function fromHex(hex: string): Uint8Array | null {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Compares in time that depends only on the length, so a forger learns nothing from timing. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Checks a signature over `body` sent at `timestamp` (the header values as received). `nowMs` is
 * the tool's clock, injectable for tests.
 */
export async function verifySignature(
  secret: string,
  timestamp: string | null,
  signature: string | null,
  body: string,
  nowMs: number = Date.now(),
): Promise<Verified> {
  if (!timestamp || !signature) return { ok: false, reason: "missing_headers" };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "bad_timestamp" };
  const ts = Number(timestamp);
  if (Math.abs(nowMs / 1000 - ts) > REPLAY_WINDOW_SECONDS) return { ok: false, reason: "stale" };
  const given = fromHex(signature.startsWith("sha256=") ? signature.slice(7) : "");
  if (!given) return { ok: false, reason: "bad_signature" };
  const expected = await hmac(secret, `${timestamp}.${body}`);
  return equalBytes(given, expected)
    ? { ok: true, body, timestamp: ts }
    : { ok: false, reason: "bad_signature" };
}

/** Reads and verifies a request from chatedge; the body is read here, once. */
export async function verifyRequest(
  request: Request,
  secret: string,
  nowMs: number = Date.now(),
): Promise<Verified> {
  const body = await request.text();
  return verifySignature(
    secret,
    request.headers.get(TIMESTAMP_HEADER),
    request.headers.get(SIGNATURE_HEADER),
    body,
    nowMs,
  );
}
