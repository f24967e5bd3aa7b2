// Order statistics for the benchmarks: medians of repeated runs and latency percentiles.
// Linear interpolation between order statistics, the same convention tinybench uses.

/** The p-quantile (0..1) of `values`; throws on an empty list, which is always a bench bug. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * p;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below] ?? 0;
  const high = sorted[above] ?? low;
  return low + (high - low) * (position - below);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** A small seeded generator (mulberry32): bootstrap intervals come out the same for the same samples. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Percentile bootstrap: the central `confidence` interval of `statistic` when every series is resampled on
 * its own, with replacement, `resamples` times. How far a figure computed from medians may move by chance.
 */
export function bootstrapInterval(
  series: readonly (readonly number[])[],
  statistic: (resampled: readonly (readonly number[])[]) => number,
  resamples = 2_000,
  confidence = 0.95,
): [number, number] {
  const random = seededRandom(0x6e6d);
  const values: number[] = [];
  for (let round = 0; round < resamples; round++) {
    const resampled = series.map((values) => {
      if (values.length === 0) throw new Error('bootstrap of an empty series');
      return Array.from({ length: values.length }, () => values[Math.floor(random() * values.length)] ?? 0);
    });
    values.push(statistic(resampled));
  }
  const tail = (1 - confidence) / 2;
  return [quantile(values, tail), quantile(values, 1 - tail)];
}
