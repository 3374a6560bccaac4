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

/**
 * Upper bounds in seconds of the Prometheus response-time histogram (`tenant_latency_totals`),
 * around the response-time rules' targets and thresholds (2, 5, 8, 15 s). Changing them means
 * recomputing that table from `tenant_latency_daily` (as migration 0010 did).
 */
export const HISTOGRAM_BOUNDS_SECONDS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60, 120,
] as const;
const BOUND_BUCKETS = HISTOGRAM_BOUNDS_SECONDS.map((s) => latencyBucket(s * 1000));

/**
 * The Prometheus bucket (its `le` in seconds, Infinity past the last bound) a latency counts in:
 * the least bound whose stored bucket is at or after the latency's. So every latency at or below
 * a bound counts under it, and so do latencies above it by at most its bucket's width (1/64 of
 * the bound, plus 0.5 ms of rounding).
 */
export function histogramBound(latencyMs: number): number {
  const b = latencyBucket(latencyMs);
  const i = BOUND_BUCKETS.findIndex((x) => b <= x);
  return HISTOGRAM_BOUNDS_SECONDS[i] ?? Number.POSITIVE_INFINITY;
}
