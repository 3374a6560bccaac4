import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  chiSquareSurvival,
  clusteredDifferenceTest,
  incompleteBeta,
  meanInterval,
  normalTwoSided,
  sampleRatioMismatch,
  studentCdf,
  studentQuantileTwoSided,
  studentTwoSided,
  upperGamma,
  wilsonInterval,
} from "../../../src/experiments/stats";

// Every expected value below names its source. "scipy" means SciPy 1.17 (scipy.stats), computed
// independently of this code, quoted to full double precision.

const moments = (xs: number[]) => {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  return { n, mean, variance: xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) };
};

describe("Wilson score interval", () => {
  // Newcombe R.G. (1998), "Two-sided confidence intervals for the single proportion: comparison of
  // seven methods", Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity
  // correction), published to 4 decimals. scipy.stats.binomtest(x, n).proportion_ci(method="wilson")
  // agrees to 1e-15.
  it.each([
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])("%i of %i -> [%f, %f]", (x, n, lo, hi) => {
    const ci = wilsonInterval(x, n);
    expect(ci?.[0]).toBeCloseTo(lo, 4);
    expect(ci?.[1]).toBeCloseTo(hi, 4);
  });

  it("matches scipy to full precision and has no interval for an empty arm", () => {
    const ci = wilsonInterval(81, 263);
    expect(ci?.[0]).toBeCloseTo(0.2552885198782742, 12);
    expect(ci?.[1]).toBeCloseTo(0.36620957698280004, 12);
    expect(wilsonInterval(0, 0)).toBeNull();
  });
});

describe("user-clustered difference test", () => {
  it("is the HC1 test with one conversation per user: 100/200 vs 130/200", () => {
    // Each user one conversation: E_g is the residual itself, Σ E² = n·p(1 − p) per arm, and
    // c = G/(G−1)·(N−1)/(N−2) = 400/398. V = 400/398 · (0.25/200 + 0.2275/200).
    const arm = (x: number, n: number) => ({ n, clusters: n, mean: x / n, residualSquares: x * (1 - x / n) });
    const r = clusteredDifferenceTest(arm(100, 200), arm(130, 200));
    const z = 0.15 / Math.sqrt((400 / 398) * (0.25 / 200 + 0.2275 / 200));
    expect(r?.difference).toBeCloseTo(0.15, 15);
    expect(r?.statistic).toBeCloseTo(z, 12);
    expect(r?.df).toBeNull();
    expect(r?.pValue).toBeCloseTo(normalTwoSided(z), 15);
    expect(r?.relativeLift).toBeCloseTo(0.3, 15);
  });

  it("takes its p-value from the normal tail: scipy's 2·norm.sf(3.034330424545042)", () => {
    // scipy.stats.norm.sf, quoted here since the pooled z-test of 100/200 vs 130/200 was checked with it.
    expect(normalTwoSided(3.034330424545042)).toBeCloseTo(0.0024107023750756166, 14);
  });

  it("takes a user seen in both arms as one cluster with its cross term", () => {
    const a = { n: 10, clusters: 5, mean: 0.4, residualSquares: 2 };
    const b = { n: 10, clusters: 5, mean: 0.6, residualSquares: 2 };
    const alone = clusteredDifferenceTest(a, b);
    const shared = clusteredDifferenceTest(a, b, { clusters: 1, residualProducts: 0.5 });
    // G = 9 instead of 10, and −2·0.5/(10·10) off the variance.
    const v = (9 / 8) * (19 / 18) * (2 / 100 + 2 / 100 - 1 / 100);
    expect(shared?.statistic).toBeCloseTo(0.2 / Math.sqrt(v), 12);
    expect(Math.abs(shared?.statistic as number)).toBeGreaterThan(Math.abs(alone?.statistic as number));
  });

  it("answers p = 1 when neither arm varies alike, nothing when they differ without variance or data", () => {
    const flat = (mean: number) => ({ n: 20, clusters: 10, mean, residualSquares: 0 });
    expect(clusteredDifferenceTest(flat(0), flat(0))?.pValue).toBe(1);
    expect(clusteredDifferenceTest(flat(0), flat(1))).toBeNull();
    expect(clusteredDifferenceTest({ n: 0, clusters: 0, mean: 0, residualSquares: 0 }, flat(1))).toBeNull();
    expect(
      clusteredDifferenceTest(
        { n: 1, clusters: 1, mean: 0, residualSquares: 0 },
        { n: 1, clusters: 1, mean: 1, residualSquares: 0 },
      ),
    ).toBeNull();
  });
});

describe("Student-t interval of a mean", () => {
  // Wikipedia, "Welch's t-test", Examples, example 1 (revision 994214781), sample A1.
  const A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];

  it("gives the Student-t 95% interval of a mean", () => {
    // scipy.stats.t.interval(0.95, 14, loc=mean(A1), scale=sem(A1)).
    const ci = meanInterval(moments(A1));
    expect(ci?.[0]).toBeCloseTo(19.26670165245124, 11);
    expect(ci?.[1]).toBeCloseTo(22.373298347548754, 11);
  });

  it("has no interval below two observations", () => {
    expect(meanInterval({ n: 1, mean: 3, variance: 0 })).toBeNull();
  });
});

describe("distributions", () => {
  it("puts 5% beyond the tabulated critical values", () => {
    // NIST/SEMATECH e-Handbook of Statistical Methods, §1.3.6.7.4 (chi-square) and §1.3.6.7.2 (t):
    // χ²(1) 3.841 and 10.828, χ²(2) 5.991, χ²(3) 7.815; t(0.975; 1, 10, 30) = 12.706, 2.228, 2.042.
    // The full-precision quantiles are scipy's chi2.ppf / t.ppf.
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 14);
    expect(chiSquareSurvival(10.827566170662733, 1)).toBeCloseTo(0.001, 15);
    expect(chiSquareSurvival(5.991464547107979, 2)).toBeCloseTo(0.05, 14);
    expect(chiSquareSurvival(7.814727903251179, 3)).toBeCloseTo(0.05, 14);
    expect(studentQuantileTwoSided(0.05, 1)).toBeCloseTo(12.706204736174694, 9);
    expect(studentQuantileTwoSided(0.05, 10)).toBeCloseTo(2.228138851986274, 11);
    expect(studentQuantileTwoSided(0.05, 30)).toBeCloseTo(2.0422724563012378, 11);
    expect(normalTwoSided(1.959963984540054)).toBeCloseTo(0.05, 14);
    expect(normalTwoSided(0)).toBe(1);
  });

  it("agrees with the closed forms (Cauchy, t with 2 df, χ² with 2 df, exponential)", () => {
    // By hand: t with 1 df is Cauchy, P(|T| > t) = 1 − (2/π)·atan(t); with 2 df, 1 − t/√(t² + 2);
    // χ² with 2 df has P(X > x) = e^(−x/2); Q(1, x) = e^(−x).
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e3, noNaN: true }), (t) => {
        expect(studentTwoSided(t, 1)).toBeCloseTo(1 - (2 / Math.PI) * Math.atan(t), 12);
        expect(studentTwoSided(t, 2)).toBeCloseTo(1 - t / Math.sqrt(t * t + 2), 12);
        expect(chiSquareSurvival(t, 2)).toBeCloseTo(Math.exp(-t / 2), 12);
        expect(upperGamma(1, t)).toBeCloseTo(Math.exp(-t), 12);
      }),
    );
  });

  it("keeps the incomplete beta's symmetry and the t CDF's monotonicity", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 0.999, noNaN: true }),
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        (x, a, b) => {
          expect(incompleteBeta(x, a, b) + incompleteBeta(1 - x, b, a)).toBeCloseTo(1, 10);
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        fc.double({ min: 1, max: 500, noNaN: true }),
        (t, step, df) => {
          expect(studentCdf(t + step, df)).toBeGreaterThanOrEqual(studentCdf(t, df) - 1e-15);
        },
      ),
    );
  });
});

describe("sample ratio mismatch (chi-square goodness of fit)", () => {
  it("flags 300 vs 200 users on a 50/50 split", () => {
    // By hand: expected 250 each, χ² = 50²/250 + 50²/250 = 20, df = 1;
    // p = P(χ²(1) > 20) = 7.744216431044088e-06 (scipy chi2.sf) < 0.001.
    const r = sampleRatioMismatch({ control: 300, B: 200 }, { control: 0.5, B: 0.5 });
    expect(r).toMatchObject({ chiSquare: 20, df: 1, flagged: true, expected: { control: 250, B: 250 } });
    expect(r?.pValue).toBeCloseTo(7.744216431044088e-6, 18);
  });

  it("does not flag a split that holds, and counts only arms with a share in df", () => {
    const r = sampleRatioMismatch({ A: 3400, B: 3300, C: 3300, D: 0 }, { A: 0.34, B: 0.33, C: 0.33, D: 0 });
    expect(r).toMatchObject({ df: 2, flagged: false });
    expect(r?.pValue).toBeCloseTo(1, 12);
    expect(r?.chiSquare).toBeCloseTo(0, 20);
  });

  it("flags users in an arm that has no share, and has nothing to say without users", () => {
    const r = sampleRatioMismatch({ A: 100, B: 1 }, { A: 1, B: 0 });
    expect(r).toMatchObject({ chiSquare: Number.POSITIVE_INFINITY, df: 0, pValue: 0, flagged: true });
    expect(sampleRatioMismatch({ A: 0, B: 0 }, { A: 0.5, B: 0.5 })).toBeNull();
  });
});
