/**
 * An independent reference for user-clustered comparisons, written from first principles and
 * sharing nothing with src/experiments/stats.ts: the OLS of the outcome on an intercept and a
 * variant dummy with the generic cluster-robust sandwich (X'X)⁻¹ (Σ_g X_g'e_g e_g'X_g) (X'X)⁻¹ and
 * statsmodels' CR1 factor G/(G−1)·(N−1)/(N−K), and a two-sided normal p-value from erfc computed
 * by its Maclaurin series (small |z|) or its Laplace continued fraction (large |z|). statsmodels'
 * equivalent, not run here (no scipy/statsmodels in this environment):
 *   smf.ols("y ~ treated", df).fit(cov_type="cluster", cov_kwds={"groups": df.user})
 * whose default for a robust cov_type is the normal distribution (use_t=False).
 */

/** One observation: the randomized unit it belongs to, whether it is the variant's, its outcome. */
export interface Observation {
  cluster: string;
  treated: boolean;
  y: number;
}

export interface ClusteredReference {
  difference: number;
  se: number;
  z: number;
  p: number;
  clusters: number;
}

type Mat2 = [[number, number], [number, number]];

const mul = (a: Mat2, b: Mat2): Mat2 => [
  [a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1]],
  [a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1]],
];

function inverse(m: Mat2): Mat2 {
  const det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
  return [
    [m[1][1] / det, -m[0][1] / det],
    [-m[1][0] / det, m[0][0] / det],
  ];
}

/** The variant's coefficient and its CR1 cluster-robust standard error, z and two-sided p. */
export function clusteredOls(obs: readonly Observation[]): ClusteredReference {
  // X'X and X'y with X = [1, d]: sums of 1, d, d² and y, d·y.
  let n0 = 0;
  let nd = 0;
  let sy = 0;
  let sdy = 0;
  for (const o of obs) {
    const d = o.treated ? 1 : 0;
    n0 += 1;
    nd += d;
    sy += o.y;
    sdy += d * o.y;
  }
  const xtx: Mat2 = [
    [n0, nd],
    [nd, nd],
  ];
  const xty = [sy, sdy] as const;
  const inv = inverse(xtx);
  const beta = [inv[0][0] * xty[0] + inv[0][1] * xty[1], inv[1][0] * xty[0] + inv[1][1] * xty[1]] as const;
  const scores = new Map<string, [number, number]>();
  for (const o of obs) {
    const d = o.treated ? 1 : 0;
    const e = o.y - beta[0] - beta[1] * d;
    const s = scores.get(o.cluster) ?? [0, 0];
    s[0] += e;
    s[1] += d * e;
    scores.set(o.cluster, s);
  }
  const meat: Mat2 = [
    [0, 0],
    [0, 0],
  ];
  for (const [a, b] of scores.values()) {
    meat[0][0] += a * a;
    meat[0][1] += a * b;
    meat[1][0] += b * a;
    meat[1][1] += b * b;
  }
  const g = scores.size;
  const n = obs.length;
  const k = 2;
  const v = mul(mul(inv, meat), inv);
  const se = Math.sqrt(v[1][1] * (g / (g - 1)) * ((n - 1) / (n - k)));
  const z = beta[1] / se;
  return { difference: beta[1], se, z, p: erfc(Math.abs(z) / Math.SQRT2), clusters: g };
}

/** erfc(x) for x ≥ 0: 1 − erf by its series below 3, the Laplace continued fraction above. */
export function erfc(x: number): number {
  if (x < 3) {
    // erf(x) = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up.
  let f = x;
  for (let n = 120; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
