/** One measured figure, beside the baseline it is judged against (null when it has none). */
export interface BenchRow {
  bench?: string;
  name: string;
  metric: string;
  value: number;
  baseline: number | null;
  ratio: number | null;
}

export interface BenchResult {
  rows: BenchRow[];
  /** Anything worth keeping with the numbers: settings, sanity checks. */
  notes?: Record<string, unknown>;
}

/** A benchmark the runner can plug in. */
export interface Bench {
  name: string;
  run(log: (msg: string) => void): Promise<BenchResult>;
}
