/**
 * The statistics behind experiment results (formulas in docs/experiments.md): Wilson intervals for
 * rates, Student-t intervals for means, the user-clustered (cluster-robust) difference test, and
 * the chi-square goodness-of-fit test for sample ratio mismatch. The distributions come from the
 * regularized incomplete beta and gamma functions (Numerical Recipes, 3rd ed., §6.1, §6.2, §6.4),
 * good to about 1e-12 here, so p-values far into the tails stay meaningful.
 */

/** Conversations each arm needs before results name a winner. */
export const MIN_SAMPLE_PER_ARM = 100;
/** Significance level of the tests; the verdict divides it among the comparisons (Bonferroni). */
export const ALPHA = 0.05;
/** Sample ratio mismatch is flagged below this p-value. */
export const SRM_ALPHA = 0.001;
/** The 97.5th percentile of the standard normal: the z of a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

const EPS = 1e-15;
const TINY = 1e-300;
const MAX_ITER = 500;

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  for (let i = 1; i < LANCZOS.length; i++) a += (LANCZOS[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta function, by the modified Lentz method. */
function betaFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITER; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) return h;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The fraction converges fast only on this side of the mean; use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(a, b, x)) / a;
  return 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** The regularized upper incomplete gamma function Q(a, x) = 1 − P(a, x). */
export function upperGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    // Series for P(a, x).
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < MAX_ITER; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * front;
  }
  // Continued fraction for Q(a, x), modified Lentz.
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return front * h;
}

/** Two-sided p-value of a standard normal statistic: erfc(|z|/√2) = Q(1/2, z²/2). */
export function normalTwoSided(z: number): number {
  return upperGamma(0.5, (z * z) / 2);
}

/** Two-sided p-value of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2). */
export function studentTwoSided(t: number, df: number): number {
  if (!Number.isFinite(t)) return 0;
  const t2 = t * t;
  // For small t, df/(df + t²) rounds to 1 and loses t; the mirrored form keeps it (I_x = 1 − I_{1−x}).
  if (t2 < df) return 1 - incompleteBeta(t2 / (df + t2), 0.5, df / 2);
  return incompleteBeta(df / (df + t2), df / 2, 0.5);
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentCdf(t: number, df: number): number {
  const tail = studentTwoSided(t, df) / 2;
  return t >= 0 ? 1 - tail : tail;
}

/** The t with P(|T| > t) = p (two-sided), found by bisection on the exact CDF. */
export function studentQuantileTwoSided(p: number, df: number): number {
  let lo = 0;
  let hi = 1;
  while (studentTwoSided(hi, df) > p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTwoSided(mid, df) > p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(X > x) for a chi-square variable with `df` degrees of freedom: Q(df/2, x/2). */
export function chiSquareSurvival(x: number, df: number): number {
  if (!Number.isFinite(x)) return 0;
  return upperGamma(df / 2, x / 2);
}

export type Interval = [number, number];

/** Wilson score interval (95%) for `successes` of `n`; null when n is 0. */
export function wilsonInterval(successes: number, n: number, z = Z95): Interval | null {
  if (n <= 0) return null;
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** Summary of a sample: size, mean and sample variance (n − 1 denominator). */
export interface Moments {
  n: number;
  mean: number;
  variance: number;
}

/** Student-t interval (95%) for a mean; null below two observations. */
export function meanInterval(m: Moments): Interval | null {
  if (m.n < 2) return null;
  const half = studentQuantileTwoSided(1 - 0.95, m.n - 1) * Math.sqrt(m.variance / m.n);
  return [m.mean - half, m.mean + half];
}

/** A comparison of a variant against control. */
export interface TestResult {
  /** Variant minus control. */
  difference: number;
  /** difference / control; null when control is 0. */
  relativeLift: number | null;
  statistic: number;
  /** Degrees of freedom (t-test only). */
  df: number | null;
  pValue: number;
}

const lift = (diff: number, base: number) => (base === 0 ? null : diff / base);

/**
 * One arm of a comparison whose observations (conversations) cluster in randomized units (users):
 * `n` observations in `clusters` users, their mean, and Σ over users of E_g², E_g being the sum of
 * the user's residuals (y − mean).
 */
export interface ClusteredSample {
  n: number;
  clusters: number;
  mean: number;
  residualSquares: number;
}

/** Users seen in both arms (a split changed under them): how many, and Σ E_control,g · E_variant,g. */
export interface SharedClusters {
  clusters: number;
  residualProducts: number;
}

/**
 * Variant (b) minus control (a) with a user-clustered (cluster-robust, CR1) standard error: the
 * coefficient of an OLS of the outcome on a variant dummy, V = Σ_g (E_b,g/n_b − E_a,g/n_a)² ·
 * G/(G−1) · (N−1)/(N−2), G users and N observations in both arms, two-sided normal p-value. It is
 * what statsmodels' OLS(...).fit(cov_type="cluster", groups=user) answers, and stays valid when one
 * user has many conversations. Null when an arm is empty or below two users in all; p = 1 with no
 * variance and no difference; null with no variance but a difference (nothing to test it against).
 */
export function clusteredDifferenceTest(
  a: ClusteredSample,
  b: ClusteredSample,
  shared: SharedClusters = { clusters: 0, residualProducts: 0 },
): TestResult | null {
  const n = a.n + b.n;
  const g = a.clusters + b.clusters - shared.clusters;
  if (a.n < 1 || b.n < 1 || g < 2 || n < 3) return null;
  const v =
    a.residualSquares / (a.n * a.n) +
    b.residualSquares / (b.n * b.n) -
    (2 * shared.residualProducts) / (a.n * b.n);
  const se = Math.sqrt(Math.max(v, 0) * (g / (g - 1)) * ((n - 1) / (n - 2)));
  const diff = b.mean - a.mean;
  // Residuals of constant arms are rounding noise, not variance.
  const noise = 1e-12 * Math.max(Math.abs(a.mean), Math.abs(b.mean));
  if (!(se > noise)) {
    if (Math.abs(diff) > noise) return null;
    return { difference: diff, relativeLift: lift(diff, a.mean), statistic: 0, df: null, pValue: 1 };
  }
  const z = diff / se;
  return {
    difference: diff,
    relativeLift: lift(diff, a.mean),
    statistic: z,
    df: null,
    pValue: normalTwoSided(z),
  };
}

/** The sample ratio mismatch check: observed users per variant against the configured split. */
export interface SrmResult {
  chiSquare: number;
  df: number;
  pValue: number;
  flagged: boolean;
  expected: Record<string, number>;
}

/**
 * Chi-square goodness of fit of the observed counts to the split, df = (arms with a share) − 1.
 * An arm with no share but observations makes the statistic infinite (p = 0). Null without data.
 */
export function sampleRatioMismatch(
  observed: Record<string, number>,
  split: Record<string, number>,
): SrmResult | null {
  const names = Object.keys(split);
  const total = names.reduce((s, k) => s + (observed[k] ?? 0), 0);
  if (total === 0) return null;
  let chi = 0;
  let arms = 0;
  const expected: Record<string, number> = {};
  for (const k of names) {
    const share = split[k] ?? 0;
    const o = observed[k] ?? 0;
    const e = total * share;
    expected[k] = e;
    if (share > 0) {
      arms += 1;
      chi += ((o - e) * (o - e)) / e;
    } else if (o > 0) {
      chi = Number.POSITIVE_INFINITY;
    }
  }
  const df = Math.max(arms - 1, 0);
  const pValue = df === 0 ? (Number.isFinite(chi) ? 1 : 0) : chiSquareSurvival(chi, df);
  return { chiSquare: chi, df, pValue, flagged: pValue < SRM_ALPHA, expected };
}
