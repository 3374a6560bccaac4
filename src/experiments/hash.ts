/**
 * XXH64 (xxHash, 64-bit, seed 0), the assignment hash. Why this one (docs/experiments.md):
 * - synchronous and dependency-free: WebCrypto's SHA-256 is async only, and MD5 is not in
 *   WebCrypto at all, so either would put an await (and a crypto call) on the hot path per experiment;
 * - statistically strong: passes SMHasher (full avalanche, no bias), so every input bit moves every
 *   bucket and the salted inputs of two experiments give unrelated assignments;
 * - 64 bits: `h mod 10000` has a modulo bias of 10000 / 2^64 ≈ 5e-16, nothing to correct for;
 * - standard and reproducible: the same bucket can be recomputed offline in any language
 *   (Python `xxhash`, ClickHouse `xxHash64`, Go, Rust) from (salt, experiment, user).
 * BigInt keeps the 64-bit arithmetic exact; one hash of a short key costs microseconds.
 */

const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const mul = (a: bigint, b: bigint) => (a * b) & M;
const add = (a: bigint, b: bigint) => (a + b) & M;

function round(acc: bigint, lane: bigint): bigint {
  return mul(rotl(add(acc, mul(lane, P2)), 31n), P1);
}

function mergeRound(acc: bigint, v: bigint): bigint {
  return add(mul(acc ^ round(0n, v), P1), P4);
}

function read64(b: Uint8Array, i: number): bigint {
  return BigInt(read32(b, i)) | (BigInt(read32(b, i + 4)) << 32n);
}

function read32(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16) | ((b[i + 3] ?? 0) << 24)) >>> 0;
}

/** XXH64 of `input` with seed 0, as an unsigned 64-bit BigInt. */
export function xxh64(input: Uint8Array): bigint {
  const len = input.length;
  let i = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = add(P1, P2);
    let v2 = P2;
    let v3 = 0n;
    let v4 = (M + 1n - P1) & M;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, read64(input, i));
      v2 = round(v2, read64(input, i + 8));
      v3 = round(v3, read64(input, i + 16));
      v4 = round(v4, read64(input, i + 24));
    }
    h = add(add(rotl(v1, 1n), rotl(v2, 7n)), add(rotl(v3, 12n), rotl(v4, 18n)));
    h = mergeRound(mergeRound(mergeRound(mergeRound(h, v1), v2), v3), v4);
  } else {
    h = P5;
  }
  h = add(h, BigInt(len));
  for (; i + 8 <= len; i += 8) {
    h ^= round(0n, read64(input, i));
    h = add(mul(rotl(h, 27n), P1), P4);
  }
  if (i + 4 <= len) {
    h ^= mul(BigInt(read32(input, i)), P1);
    h = add(mul(rotl(h, 23n), P2), P3);
    i += 4;
  }
  for (; i < len; i++) {
    h ^= mul(BigInt(input[i] ?? 0), P5);
    h = mul(rotl(h, 11n), P1);
  }
  h ^= h >> 33n;
  h = mul(h, P2);
  h ^= h >> 29n;
  h = mul(h, P3);
  h ^= h >> 32n;
  return h;
}

const utf8 = new TextEncoder();

/** XXH64 of a string's UTF-8 bytes. */
export function xxh64String(text: string): bigint {
  return xxh64(utf8.encode(text));
}
