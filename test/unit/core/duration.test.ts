// Durations as users write them in config and on the command line: what is accepted, what is refused and
// why, and that formatting is the exact inverse of parsing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DurationError,
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
} from '../../../agent/core/duration.js';
import { NearmeshError } from '../../../agent/core/errors.js';
import { refusal } from '../../support/refused.js';

function parseError(text: string): DurationError {
  return refusal(DurationError, parseDuration, text);
}

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['1.1s', 1_100],
    ['0.001s', 1],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['1d', 86_400_000],
    ['1d2h3m4s5ms', 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5],
    ['1.5h', 5_400_000],
    ['0.25m', 15_000],
    ['0ms', 0],
    ['0s', 0],
    ['007s', 7_000],
    ['24d', MAX_DURATION_MS],
    ['23d23h59m59.999s', MAX_DURATION_MS - 1],
    ['  10s ', 10_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', /empty; expected a number and a unit/],
    ['   ', /empty/],
    ['5', /missing unit after "5"/],
    ['1m30', /missing unit after "30"/],
    ['-5s', /negative durations are not allowed/],
    ['-0s', /negative/],
    ['5x', /unknown unit "x"/],
    ['250us', /unknown unit "us"/],
    ['5S', /unknown unit "S"/],
    ['5M', /unknown unit "M"/],
    ['5sec', /unknown unit "sec"/],
    ['1m1h', /unit "h" out of order/],
    ['1s1s', /unit "s" out of order/],
    ['25d', /longer than the maximum of 24d/],
    ['24d1ms', /longer than the maximum/],
    ['576h1ms', /longer than the maximum/],
    ['99999999999999999999999d', /longer than the maximum/],
    ['0.5ms', /finer than the 1 ms resolution/],
    ['1.0001s', /finer than the 1 ms resolution/],
    ['NaN', /unexpected "N" at position 1/],
    ['Infinitys', /unexpected "I" at position 1/],
    ['.5s', /unexpected "\." at position 1/],
    ['1.s', /expected digits after the decimal point at position 3/],
    ['5 s', /unexpected " " at position 2/],
    ['1h 30m', /unexpected " " at position 3/],
    ['+5s', /unexpected "\+" at position 1/],
    ['1e3ms', /unknown unit "e"/],
    ['5s!', /unexpected "!" at position 3/],
    [`${'1'.repeat(70)}s`, /longer than 64 characters/],
  ])('refuses %j (%s)', (text, message) => {
    const error = parseError(text);
    expect(error).toBeInstanceOf(NearmeshError);
    expect(error.code).toBe('bad-duration');
    expect(error.name).toBe('DurationError');
    expect(error.text).toBe(text);
    expect(error.message).toMatch(message);
    expect(error.message).toContain(JSON.stringify(text));
  });

  it('never throws anything but DurationError, and only returns whole ms within range', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.stringMatching(/^[0-9.]{0,5}(ms|s|m|h|d|x)?[0-9.]{0,3}(ms|s|m|h|d)?$/),
        ),
        (text) => {
          try {
            const ms = parseDuration(text);
            expect(Number.isSafeInteger(ms)).toBe(true);
            expect(ms).toBeGreaterThanOrEqual(0);
            expect(ms).toBeLessThanOrEqual(MAX_DURATION_MS);
          } catch (error) {
            expect(error).toBeInstanceOf(DurationError);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [1, '1ms'],
    [500, '500ms'],
    [999, '999ms'],
    [1_000, '1s'],
    [1_500, '1.5s'],
    [1_050, '1.05s'],
    [1_001, '1.001s'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [3_600_500, '1h0.5s'],
    [86_400_000, '1d'],
    [MAX_DURATION_MS, '24d'],
    [MAX_DURATION_MS - 1, '23d23h59m59.999s'],
    [-1_500, '-1.5s'],
    [1_499.6, '1.5s'],
    [0.4, '0ms'],
    [-0.4, '0ms'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('refuses non-finite input with a DurationError', () => {
    for (const ms of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => formatDuration(ms)).toThrow(DurationError);
    }
  });

  it('is the exact inverse of parseDuration for every whole duration in range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
      { numRuns: 5_000 },
    );
  });

  it('reformats any accepted text to an equivalent canonical form', () => {
    for (const text of ['90s', '0.5m', '1.5h', '2000ms', '1d24h']) {
      expect(parseDuration(formatDuration(parseDuration(text)))).toBe(parseDuration(text));
    }
    expect(formatDuration(parseDuration('90s'))).toBe('1m30s');
    expect(formatDuration(parseDuration('1d24h'))).toBe('2d');
  });
});
