// Small mechanisms the agent leans on: rate-limited logging, jittered backoff, the bounded memory of
// delivered ids, and the bounded line reader of the control socket.
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../agent/core/backoff.js';
import { setBounded } from '../../../agent/core/bounded-map.js';
import { LineReader } from '../../../agent/core/line-reader.js';
import { RateLimiter } from '../../../agent/core/rate-limiter.js';
import { RecentIds } from '../../../agent/core/recent-ids.js';

describe('RateLimiter', () => {
  it('lets a key through once per interval, keys independently', () => {
    let nowMs = 0;
    const limiter = new RateLimiter(60_000, 1024, () => nowMs);
    expect(limiter.allow('10.0.0.2')).toBe(true);
    expect(limiter.allow('10.0.0.2')).toBe(false);
    expect(limiter.allow('10.0.0.3')).toBe(true);
    nowMs = 59_999;
    expect(limiter.allow('10.0.0.2')).toBe(false);
    nowMs = 60_000;
    expect(limiter.allow('10.0.0.2')).toBe(true);
  });

  it('stays bounded under a flood of distinct keys', () => {
    const limiter = new RateLimiter(60_000, 100, () => 0);
    for (let i = 0; i < 10_000; i++) limiter.allow(`host-${i}`);
    // The oldest keys were forgotten, so they may log again; the newest are still limited.
    expect(limiter.allow('host-0')).toBe(true);
    expect(limiter.allow('host-9999')).toBe(false);
  });
});

describe('Backoff', () => {
  it('doubles up to the cap with jitter in [ceiling/2, ceiling] and resets', () => {
    const low = new Backoff({ initialMs: 500, maxMs: 8_000, random: () => 0 });
    expect([low.next(), low.next(), low.next(), low.next(), low.next(), low.next()]).toEqual([
      250, 500, 1000, 2000, 4000, 4000,
    ]);
    const high = new Backoff({ initialMs: 500, maxMs: 8_000, random: () => 1 });
    expect([high.next(), high.next(), high.next(), high.next(), high.next(), high.next()]).toEqual([
      500, 1000, 2000, 4000, 8000, 8000,
    ]);
    high.reset();
    expect(high.next()).toBe(500);
  });
});

describe('RecentIds', () => {
  it('reports repeats and forgets the oldest beyond its capacity', () => {
    const ids = new RecentIds(3);
    expect([ids.add(1), ids.add(2), ids.add(1)]).toEqual([true, true, false]);
    ids.add(3);
    ids.add(4);
    expect(ids.add(1)).toBe(true);
    expect(ids.add(4)).toBe(false);
  });
});

describe('LineReader', () => {
  it('reassembles lines across chunks and refuses an endless line', () => {
    const reader = new LineReader(8);
    expect(reader.push(Buffer.from('ab'))).toEqual([]);
    expect(reader.push(Buffer.from('c\nde\nf'))).toEqual(['abc', 'de']);
    expect(reader.push(Buffer.from('\n'))).toEqual(['f']);
    expect(reader.push(Buffer.from('123456789'))).toBe('too-long');
  });
});

describe('setBounded', () => {
  it('keeps the most recently set `capacity` entries, says which one it dropped, and re-setting refreshes', () => {
    const map = new Map<string, number>();
    expect(setBounded(map, 'a', 1, 2)).toBeUndefined();
    expect(setBounded(map, 'b', 2, 2)).toBeUndefined();
    // Setting 'a' again makes it the most recent: 'b' is now the oldest.
    expect(setBounded(map, 'a', 3, 2)).toBeUndefined();
    expect(setBounded(map, 'c', 4, 2)).toBe('b');
    expect([...map]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
  });

  it('drops the least recently set key, through any mix of sets, refreshes, deletes and emptyings', () => {
    // A reference list against the map: its cursor must never skip or repeat an entry, whatever the
    // holes, re-insertions and rehashes behind it.
    let seed = 7;
    const random = (below: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % below;
    };
    const capacity = 64;
    const map = new Map<number, number>();
    let model: number[] = [];
    for (let step = 0; step < 20_000; step++) {
      const key = random(200);
      if (random(10) === 0) {
        map.delete(key);
        model = model.filter((k) => k !== key);
        continue;
      }
      if (random(2_000) === 0) {
        map.clear();
        model = [];
        continue;
      }
      model = model.filter((k) => k !== key);
      const expected = model.length >= capacity ? model.shift() : undefined;
      model.push(key);
      expect(setBounded(map, key, step, capacity)).toBe(expected);
      expect(map.size).toBe(model.length);
    }
    expect([...map.keys()]).toEqual(model);
  });
});
