// NTP-style clock offset between two agents, against synthetic clocks whose true offset and per-leg delays
// are known: the estimate is never further off than half the best round trip, impossible or stalled
// exchanges are ignored, and the window follows the most recent exchanges.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockOffsetEstimator,
  ClockOffsetUnknownError,
  computeSample,
  DEFAULT_CLOCK_WINDOW,
  DEFAULT_MAX_DELAY_MS,
} from '../../../agent/coordination/clock-offset.js';
import { NearmeshError } from '../../../agent/core/errors.js';

/** Roughly performance.timeOrigin + performance.now() today, so float precision matches real use. */
const EPOCH_MS = 1_764_000_000_000.123;

interface Exchange {
  /** Request leg, reply leg and the peer's turnaround, in real milliseconds. */
  outboundMs: number;
  returnMs: number;
  processingMs: number;
}

/** The four timestamps of one exchange started at local time `startMs` with a peer `offsetMs` ahead. */
function timestamps(startMs: number, offsetMs: number, exchange: Exchange): [number, number, number, number] {
  const t1 = startMs;
  const t2 = t1 + exchange.outboundMs + offsetMs;
  const t3 = t2 + exchange.processingMs;
  const t4 = t1 + exchange.outboundMs + exchange.processingMs + exchange.returnMs;
  return [t1, t2, t3, t4];
}

const exchangeArbitrary = fc.record({
  outboundMs: fc.double({ min: 0.05, max: 400, noNaN: true }),
  returnMs: fc.double({ min: 0.05, max: 400, noNaN: true }),
  processingMs: fc.double({ min: 0, max: 20, noNaN: true }),
});

describe('computeSample', () => {
  it('matches the NTP formulas on a worked example', () => {
    // Peer 100 ms ahead, 4 ms out, 1 ms turnaround, 6 ms back.
    expect(computeSample(0, 104, 105, 11)).toEqual({ offsetMs: 99, delayMs: 10 });
    // Symmetric legs give the exact offset.
    expect(computeSample(1_000, 505, 507, 1_012)).toEqual({ offsetMs: -500, delayMs: 10 });
    expect(computeSample(5, 5, 5, 5)).toEqual({ offsetMs: 0, delayMs: 0 });
  });

  it('is off by exactly half the leg asymmetry, whatever the offset', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e7, max: 1e7, noNaN: true }),
        exchangeArbitrary,
        (offsetMs, exchange) => {
          const sample = computeSample(...timestamps(EPOCH_MS, offsetMs, exchange));
          expect(sample.offsetMs - offsetMs).toBeCloseTo((exchange.outboundMs - exchange.returnMs) / 2, 2);
          expect(sample.delayMs).toBeCloseTo(exchange.outboundMs + exchange.returnMs, 2);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('ClockOffsetEstimator', () => {
  it('knows nothing before the first sample, and says so with a typed error', () => {
    const estimator = new ClockOffsetEstimator();
    expect(estimator.estimate()).toBeUndefined();
    expect(() => estimator.toPeerTime(EPOCH_MS)).toThrow(ClockOffsetUnknownError);
    expect(() => estimator.toLocalTime(EPOCH_MS)).toThrow(ClockOffsetUnknownError);
    try {
      estimator.toLocalTime(0);
    } catch (error) {
      expect(error).toBeInstanceOf(NearmeshError);
      expect((error as NearmeshError).code).toBe('clock-offset-unknown');
    }
    expect(estimator.windowSize).toBe(DEFAULT_CLOCK_WINDOW);
    expect(estimator.maxDelayMs).toBe(DEFAULT_MAX_DELAY_MS);
  });

  it('reports the offset of the minimum-delay sample, and converts both ways with it', () => {
    const estimator = new ClockOffsetEstimator();
    expect(estimator.addSample({ offsetMs: 40, delayMs: 30 })).toBe(true);
    expect(estimator.addSample({ offsetMs: 52.5, delayMs: 4.25 })).toBe(true);
    expect(estimator.addSample({ offsetMs: 10, delayMs: 90 })).toBe(true);
    expect(estimator.estimate()).toEqual({ offsetMs: 52.5, delayMs: 4.25, samples: 3 });
    expect(estimator.toPeerTime(1_000)).toBe(1_052.5);
    expect(estimator.toLocalTime(1_052.5)).toBe(1_000);
  });

  it('prefers the newest sample when delays tie', () => {
    const estimator = new ClockOffsetEstimator();
    estimator.addSample({ offsetMs: 1, delayMs: 5 });
    estimator.addSample({ offsetMs: 2, delayMs: 5 });
    expect(estimator.estimate()?.offsetMs).toBe(2);
  });

  it('stays within half the best round trip of the true offset, under random asymmetric delays', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -3_600_000, max: 3_600_000, noNaN: true }),
        fc.array(exchangeArbitrary, { minLength: 1, maxLength: 30 }),
        (trueOffsetMs, exchanges) => {
          const estimator = new ClockOffsetEstimator();
          let now = EPOCH_MS;
          for (const exchange of exchanges) {
            expect(estimator.addExchange(...timestamps(now, trueOffsetMs, exchange))).toBe(true);
            now += 1_000;
          }
          const window = exchanges.slice(-DEFAULT_CLOCK_WINDOW);
          const minDelay = Math.min(...window.map((e) => e.outboundMs + e.returnMs));
          // Round trips within float rounding (timestamps near 1.8e12 ms) of the fastest tie: any may be chosen.
          const fastest = window.filter((e) => e.outboundMs + e.returnMs <= minDelay + 1e-3);
          const estimate = estimator.estimate();
          expect(estimate?.samples).toBe(window.length);
          const error = (estimate?.offsetMs ?? Number.NaN) - trueOffsetMs;
          // The chosen sample is the fastest round trip, and its error is exactly half its leg asymmetry...
          expect(estimate?.delayMs).toBeCloseTo(minDelay, 2);
          expect(fastest.some((e) => Math.abs(error - (e.outboundMs - e.returnMs) / 2) < 5e-3)).toBe(true);
          // ...so the estimate is never off by more than half the minimum delay in the window.
          expect(Math.abs(error)).toBeLessThanOrEqual(minDelay / 2 + 1e-3);
          // And peer time round-trips through both conversions.
          expect(estimator.toLocalTime(estimator.toPeerTime(now))).toBeCloseTo(now, 3);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('lands within a millisecond when one quick, nearly symmetric exchange hides among slow lopsided ones', () => {
    const trueOffsetMs = -12_345.678;
    const estimator = new ClockOffsetEstimator();
    const exchanges: Exchange[] = [
      { outboundMs: 250, returnMs: 3, processingMs: 2 },
      { outboundMs: 4, returnMs: 180, processingMs: 1 },
      { outboundMs: 2.4, returnMs: 2.1, processingMs: 0.5 },
      { outboundMs: 900, returnMs: 30, processingMs: 3 },
      { outboundMs: 12, returnMs: 140, processingMs: 0 },
    ];
    exchanges.forEach((exchange, index) => {
      estimator.addExchange(...timestamps(EPOCH_MS + index * 500, trueOffsetMs, exchange));
    });
    const estimate = estimator.estimate();
    expect(estimate?.delayMs).toBeCloseTo(4.5, 3);
    expect(Math.abs((estimate?.offsetMs ?? 0) - trueOffsetMs)).toBeLessThan(1);
    // A schedule in peer time maps onto our clock off by the same residual asymmetry, (2.4 - 2.1) / 2 ms.
    expect(estimator.toLocalTime(EPOCH_MS + 10_000 + trueOffsetMs) - (EPOCH_MS + 10_000)).toBeCloseTo(
      -0.15,
      3,
    );
  });

  it.each([
    ['negative delay', { offsetMs: 0, delayMs: -0.001 }],
    ['delay above 10 s', { offsetMs: 0, delayMs: DEFAULT_MAX_DELAY_MS + 0.5 }],
    ['NaN offset', { offsetMs: Number.NaN, delayMs: 1 }],
    ['infinite offset', { offsetMs: Number.POSITIVE_INFINITY, delayMs: 1 }],
    ['NaN delay', { offsetMs: 0, delayMs: Number.NaN }],
  ])('rejects a sample with %s and keeps the estimate', (_, sample) => {
    const estimator = new ClockOffsetEstimator();
    estimator.addSample({ offsetMs: 7, delayMs: 50 });
    expect(estimator.addSample(sample)).toBe(false);
    expect(estimator.estimate()).toEqual({ offsetMs: 7, delayMs: 50, samples: 1 });
  });

  it('accepts a delay of exactly zero and exactly the maximum', () => {
    const estimator = new ClockOffsetEstimator();
    expect(estimator.addSample({ offsetMs: 1, delayMs: DEFAULT_MAX_DELAY_MS })).toBe(true);
    expect(estimator.addSample({ offsetMs: 2, delayMs: 0 })).toBe(true);
    expect(estimator.estimate()).toEqual({ offsetMs: 2, delayMs: 0, samples: 2 });
  });

  it.each([
    ['reply received before the request was sent', [100, 50, 60, 99]],
    ['reply sent before the request arrived', [100, 60, 50, 200]],
    ['peer turnaround longer than the round trip', [100, 50, 80, 110]],
    ['a stalled 12 s round trip', [0, 5, 6, 12_000]],
    ['a NaN timestamp', [0, Number.NaN, 6, 10]],
    ['an infinite timestamp', [0, 5, 6, Number.POSITIVE_INFINITY]],
  ])('rejects an exchange with %s', (_, times) => {
    const estimator = new ClockOffsetEstimator();
    const [t1, t2, t3, t4] = times as [number, number, number, number];
    expect(estimator.addExchange(t1, t2, t3, t4)).toBe(false);
    expect(estimator.estimate()).toBeUndefined();
  });

  it('ignores outliers: a stalled exchange never displaces good ones, a slow one never wins', () => {
    const trueOffsetMs = 250;
    const estimator = new ClockOffsetEstimator();
    estimator.addExchange(
      ...timestamps(EPOCH_MS, trueOffsetMs, { outboundMs: 3, returnMs: 4, processingMs: 1 }),
    );
    expect(
      estimator.addExchange(
        ...timestamps(EPOCH_MS + 1, trueOffsetMs, { outboundMs: 15_000, returnMs: 2, processingMs: 0 }),
      ),
    ).toBe(false);
    expect(
      estimator.addExchange(
        ...timestamps(EPOCH_MS + 2, trueOffsetMs, { outboundMs: 4_000, returnMs: 2, processingMs: 0 }),
      ),
    ).toBe(true);
    const estimate = estimator.estimate();
    expect(estimate?.samples).toBe(2);
    expect(estimate?.delayMs).toBeCloseTo(7, 3);
    expect(estimate?.offsetMs).toBeCloseTo(trueOffsetMs - 0.5, 3);
  });

  it('rolls the window: only the last N accepted samples count', () => {
    const estimator = new ClockOffsetEstimator();
    for (let index = 0; index < DEFAULT_CLOCK_WINDOW; index++) {
      estimator.addSample({ offsetMs: 100, delayMs: 1 + index * 0.01 });
    }
    expect(estimator.estimate()).toEqual({ offsetMs: 100, delayMs: 1, samples: DEFAULT_CLOCK_WINDOW });
    // The peer's clock was stepped; slower but newer samples take over one by one.
    for (let index = 0; index < DEFAULT_CLOCK_WINDOW; index++) {
      estimator.addSample({ offsetMs: 900, delayMs: 20 });
      const expected = index === DEFAULT_CLOCK_WINDOW - 1 ? 900 : 100;
      expect(estimator.estimate()?.offsetMs).toBe(expected);
      expect(estimator.estimate()?.samples).toBe(DEFAULT_CLOCK_WINDOW);
    }
    // Rejected samples do not push anything out.
    estimator.addSample({ offsetMs: 5, delayMs: -1 });
    expect(estimator.estimate()).toEqual({ offsetMs: 900, delayMs: 20, samples: DEFAULT_CLOCK_WINDOW });
  });

  it('honours a custom window and delay limit, and refuses nonsensical ones', () => {
    const estimator = new ClockOffsetEstimator({ windowSize: 2, maxDelayMs: 100 });
    estimator.addSample({ offsetMs: 1, delayMs: 1 });
    estimator.addSample({ offsetMs: 2, delayMs: 50 });
    estimator.addSample({ offsetMs: 3, delayMs: 60 });
    expect(estimator.estimate()).toEqual({ offsetMs: 2, delayMs: 50, samples: 2 });
    expect(estimator.addSample({ offsetMs: 4, delayMs: 101 })).toBe(false);
    expect(() => new ClockOffsetEstimator({ windowSize: 0 })).toThrow(RangeError);
    expect(() => new ClockOffsetEstimator({ windowSize: 1.5 })).toThrow(RangeError);
    expect(() => new ClockOffsetEstimator({ maxDelayMs: 0 })).toThrow(RangeError);
    expect(() => new ClockOffsetEstimator({ maxDelayMs: Number.NaN })).toThrow(RangeError);
  });

  it('forgets everything on reset', () => {
    const estimator = new ClockOffsetEstimator();
    estimator.addSample({ offsetMs: 1, delayMs: 1 });
    estimator.reset();
    expect(estimator.estimate()).toBeUndefined();
    expect(() => estimator.toPeerTime(0)).toThrow(ClockOffsetUnknownError);
  });
});
