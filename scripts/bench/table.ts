// The one result table `npm run bench` prints: row type, number formatting, column alignment.
// Benchmarks return rows with display-ready strings; this module only lays them out.
import type { Load } from './cpu-usage.js';

/** BUSY: the machine was too busy with other work during the row's runs to judge it. */
export type PassMark = 'PASS' | 'FAIL' | '—' | 'ERROR' | 'BUSY';

export interface ResultRow {
  readonly benchmark: string;
  readonly nearmesh: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly goal: string;
  readonly pass: PassMark;
  /** How busy the machine was during this row's runs; the runner gives the section's when a row has none. */
  readonly load?: Load;
}

/** Above this share of the machine busy with other work, a row is said to be BUSY, not judged. */
export const MAX_OTHER_LOAD = 0.3;

export function withLoad(row: ResultRow, load: Load): ResultRow {
  const measured = row.load ?? load;
  const judged = row.pass === 'PASS' || row.pass === 'FAIL';
  return { ...row, load: measured, pass: judged && measured.other > MAX_OTHER_LOAD ? 'BUSY' : row.pass };
}

const COLUMNS = ['benchmark', 'nearmesh', 'baseline', 'ratio', 'goal', 'pass', 'load'] as const;
type Column = (typeof COLUMNS)[number];
type Cells = Readonly<Record<Column, string>>;

const HEADERS: Cells = {
  benchmark: 'benchmark',
  nearmesh: 'nearmesh',
  baseline: 'baseline',
  ratio: 'ratio',
  goal: 'goal',
  pass: 'pass',
  load: 'busy (other)',
};
/** Numbers read best right-aligned; names and marks left-aligned. */
const RIGHT_ALIGNED: ReadonlySet<Column> = new Set(['nearmesh', 'baseline', 'ratio', 'load']);

/** "52 % (3 %)": the machine's busy share, and the part of it that was not this bench's own processes. */
function formatLoad(load: Load | undefined): string {
  if (load === undefined) return '';
  const percent = (share: number) => `${Math.round(share * 100)} %`;
  return `${percent(load.busy)} (${percent(load.other)})`;
}

export function passMark(isMet: boolean | undefined): PassMark {
  if (isMet === undefined) return '—';
  return isMet ? 'PASS' : 'FAIL';
}

export function errorRow(benchmark: string, error: unknown): ResultRow {
  const detail = error instanceof Error ? error.message : String(error);
  return {
    benchmark,
    nearmesh: 'crashed',
    baseline: '',
    ratio: '',
    goal: detail.slice(0, 60),
    pass: 'ERROR',
  };
}

/** Plain-text table with a header rule, columns separated by " | ". */
export function formatTable(rows: readonly ResultRow[]): string {
  const all: Cells[] = [HEADERS, ...rows.map((row) => ({ ...row, load: formatLoad(row.load) }))];
  const widths = COLUMNS.map((column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: Cells): string =>
    COLUMNS.map((column, index) => {
      const width = widths[index] ?? 0;
      return RIGHT_ALIGNED.has(column) && row !== HEADERS
        ? row[column].padStart(width)
        : row[column].padEnd(width);
    })
      .join(' | ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('-|-');
  return [line(HEADERS), rule, ...all.slice(1).map(line)].join('\n');
}

/** 0.253 -> "25.3 %". */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)} %`;
}

/** 1.234 -> "1.23×". */
export function formatTimes(factor: number): string {
  return `${factor.toFixed(2)}×`;
}

/** Decimal megabytes (10^6 bytes), as every MB in the table. */
export function formatMegabytes(bytes: number, suffix = 'MB'): string {
  return `${(bytes / 1e6).toFixed(1)} ${suffix}`;
}

/** 612345.6 -> "612k/s". */
export function formatPerSecond(perSecond: number): string {
  return perSecond >= 1e4 ? `${Math.round(perSecond / 1e3)}k/s` : `${Math.round(perSecond)}/s`;
}

export function formatMilliseconds(ms: number): string {
  return ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}
