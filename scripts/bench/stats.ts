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
