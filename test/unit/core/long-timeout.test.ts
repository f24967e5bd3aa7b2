// longTimeout waits delays past setTimeout's ~24.8-day limit instead of firing them at once.
import { afterEach, expect, it, vi } from 'vitest';
import { longTimeout } from '../../../agent/core/long-timeout.js';

const DAY_MS = 24 * 3600 * 1000;

afterEach(() => {
  vi.useRealTimers();
});

it('fires a 30-day delay after 30 days, not at once nor at the 24.8-day limit, and not once cancelled', () => {
  vi.useFakeTimers();
  const fired: string[] = [];
  longTimeout(30 * DAY_MS, () => fired.push('long'));
  const cancel = longTimeout(40 * DAY_MS, () => fired.push('cancelled'));
  vi.advanceTimersByTime(1);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(25 * DAY_MS);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(5 * DAY_MS);
  expect(fired).toEqual(['long']);
  cancel();
  vi.advanceTimersByTime(20 * DAY_MS);
  expect(fired).toEqual(['long']);
});
