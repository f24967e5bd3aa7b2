// Human-written durations ("500ms", "5s", "1m30s") for config (`timeout = "5s"`) and the CLI (`--in 500ms`).
// Millisecond resolution and exact decimal arithmetic, so "1.1s" is 1100 ms and never 1100.0000000000002;
// anything ambiguous (no unit, "M" for months or minutes, fractions of a millisecond) is refused rather
// than guessed, because a wrong timeout fails silently at 3 a.m.

import { NearmeshError } from './errors.js';

/**
 * Longest accepted duration: 24 days, below the 2^31 − 1 ms (24.8 days) a Node timer can hold (a longer one
 * fires after 1 ms). Anything longer is a configuration mistake.
 */
export const MAX_DURATION_MS = 24 * 24 * 60 * 60 * 1000;

/** Longer input is not a duration anyone typed; refusing it bounds the work done on hostile input. */
const MAX_TEXT_LENGTH = 64;

const EXPECTED = 'expected a number and a unit (ms, s, m, h, d), e.g. "500ms", "1.5s" or "1h30m"';

/** Units in the only order they may appear in a compound duration, largest first. */
const UNITS: readonly (readonly [unit: string, ms: bigint])[] = [
  ['d', 86_400_000n],
  ['h', 3_600_000n],
  ['m', 60_000n],
  ['s', 1_000n],
  ['ms', 1n],
];

/** A duration that could not be parsed or is out of range; `reason` says which part was wrong. */
export class DurationError extends NearmeshError {
  constructor(
    readonly text: string,
    readonly reason: string,
  ) {
    super('bad-duration', `invalid duration ${JSON.stringify(text)}: ${reason}`);
  }
}

const isDigit = (char: string | undefined): boolean => char !== undefined && char >= '0' && char <= '9';
const isLetter = (char: string | undefined): boolean =>
  char !== undefined && ((char >= 'a' && char <= 'z') || (char >= 'A' && char <= 'Z'));

/**
 * Parses "500ms", "5s", "1.5s", "2m", "1h30m", "1d12h" into whole milliseconds. Units are ms, s, m, h, d
 * (lowercase), each at most once and largest first; surrounding whitespace is ignored, inner is not.
 */
export function parseDuration(text: string): number {
  const source = text.trim();
  const fail = (reason: string): never => {
    throw new DurationError(text, reason);
  };
  if (source === '') fail(`empty; ${EXPECTED}`);
  if (source.length > MAX_TEXT_LENGTH) fail(`longer than ${MAX_TEXT_LENGTH} characters; ${EXPECTED}`);
  if (source.startsWith('-')) fail(`negative durations are not allowed; ${EXPECTED}`);

  let total = 0n;
  let position = 0;
  let nextUnitIndex = 0; // units must strictly decrease, so "1m1h" and "1s1s" are refused
  while (position < source.length) {
    const start = position;
    while (isDigit(source[position])) position++;
    const whole = source.slice(start, position);
    if (whole === '')
      fail(`unexpected ${JSON.stringify(source[position])} at position ${position + 1}; ${EXPECTED}`);
    let fraction = '';
    if (source[position] === '.') {
      position++;
      const fractionStart = position;
      while (isDigit(source[position])) position++;
      fraction = source.slice(fractionStart, position);
      if (fraction === '') fail(`expected digits after the decimal point at position ${position + 1}`);
    }
    const unitStart = position;
    while (isLetter(source[position])) position++;
    const unit = source.slice(unitStart, position);
    if (unit === '') {
      fail(
        position < source.length
          ? `unexpected ${JSON.stringify(source[position])} at position ${position + 1}; ${EXPECTED}`
          : `missing unit after ${JSON.stringify(source.slice(start))}; ${EXPECTED}`,
      );
    }
    const unitIndex = UNITS.findIndex(([name]) => name === unit);
    if (unitIndex < 0) fail(`unknown unit ${JSON.stringify(unit)}; ${EXPECTED}`);
    if (unitIndex < nextUnitIndex)
      fail(`unit ${JSON.stringify(unit)} out of order; use each unit once, largest first`);
    nextUnitIndex = unitIndex + 1;
    const unitMs = (UNITS[unitIndex] as readonly [string, bigint])[1];
    const scale = 10n ** BigInt(fraction.length);
    const scaled = (BigInt(whole) * scale + BigInt(fraction === '' ? '0' : fraction)) * unitMs;
    if (scaled % scale !== 0n) fail('finer than the 1 ms resolution');
    total += scaled / scale;
    if (total > BigInt(MAX_DURATION_MS))
      fail(`longer than the maximum of ${formatDuration(MAX_DURATION_MS)}`);
  }
  return Number(total);
}

/**
 * The canonical text for a duration, the inverse of parseDuration: 1500 → "1.5s", 90000 → "1m30s",
 * 5400000 → "1h30m", 0 → "0ms". Rounds to whole milliseconds; negative values get a leading "-".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new DurationError(String(ms), 'not a finite number of milliseconds');
  const rounded = Math.round(Math.abs(ms));
  if (rounded === 0) return '0ms';
  const sign = ms < 0 ? '-' : '';
  let rest = rounded;
  let text = '';
  for (const [unit, unitMs] of UNITS.slice(0, 3)) {
    const count = Math.floor(rest / Number(unitMs));
    if (count > 0) text += `${count}${unit}`;
    rest -= count * Number(unitMs);
  }
  if (rest === 0) return sign + text;
  const seconds = Math.floor(rest / 1000);
  const millis = rest % 1000;
  if (seconds === 0 && text === '') return `${sign}${millis}ms`;
  const fraction = millis === 0 ? '' : `.${String(millis).padStart(3, '0').replace(/0+$/, '')}`;
  return `${sign}${text}${seconds}${fraction}s`;
}
