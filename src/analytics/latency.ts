/**
 * Response-time histogram buckets, log-linear like HdrHistogram: whole milliseconds below 64 ms,
 * then 32 buckets per power of two. A percentile read from the histogram is the representative of
 * the bucket holding the exact nearest-rank value, so it is off by at most 1/64 of that value
 * (plus 0.5 ms from rounding to whole milliseconds). Integer arithmetic only: the consumer, the
 * seeding script and the tests compute the same bucket for the same latency, bit for bit.
 */

/** log2 of the buckets per power of two. */
export const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** Latencies above this (about 12 days) share the last bucket. */
export const MAX_LATENCY_MS = 2 ** 30;

/** The histogram bucket of a latency in milliseconds. */
export function latencyBucket(latencyMs: number): number {
  const v = Math.min(Math.max(Math.round(latencyMs), 0), MAX_LATENCY_MS);
  if (v < 2 * SUB) return v;
  const log2 = 31 - Math.clz32(v);
  const e = log2 - SUB_BITS;
  return SUB * e + (v >>> e);
}

/** The value a bucket stands for: its midpoint (exact below 64 ms). */
export function bucketValue(bucket: number): number {
  if (bucket < 2 * SUB) return bucket;
  const e = Math.floor(bucket / SUB) - 1;
  const m = bucket - SUB * e;
  const lo = m * 2 ** e;
  return lo + (2 ** e - 1) / 2;
}

/** 1-based nearest rank of the q-th percentile (q in 1..100) among n values: ceil(q·n/100). */
export function nearestRank(q: number, n: number): number {
  return Math.floor((q * n + 99) / 100);
}
