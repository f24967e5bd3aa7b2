import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../../agent/core/topic-match.js';
import { RetainedStore } from '../../../agent/gateway/retained-store.js';
import type { BrokerMessage } from '../../../agent/gateway/session-store.js';

function message(topic: string, payload = 'x'): BrokerMessage {
  return { topic, payload: Buffer.from(payload), qos: 0, retain: true };
}

function matchedTopics(store: RetainedStore, filter: string): string[] {
  return store
    .match(filter)
    .map((m) => m.topic)
    .sort();
}

describe('RetainedStore', () => {
  it('finds exactly the topics topicMatches says, for any topics and filter', () => {
    const level = fc.constantFrom('a', 'b', '', '$x');
    const filterLevel = fc.constantFrom('a', 'b', '', '+', '$x');
    const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'));
    const filter = fc
      .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'));
    fc.assert(
      fc.property(
        fc.uniqueArray(topic, { maxLength: 12 }),
        fc.oneof(filter, fc.constant('#')),
        (topics, f) => {
          const store = new RetainedStore(1000, 1_000_000);
          for (const t of topics) expect(store.set(message(t))).toBe(true);
          expect(matchedTopics(store, f)).toEqual(topics.filter((t) => topicMatches(f, t)).sort());
        },
      ),
    );
  });

  it('replaces a topic, clears it with an empty payload and prunes what is left empty', () => {
    const store = new RetainedStore(10, 10_000);
    store.set(message('a/b/c', 'one'));
    store.set(message('a/b/c', 'two'));
    store.set(message('a', 'parent'));
    expect(store.size).toBe(2);
    expect(store.match('a/b/c').map((m) => m.payload.toString())).toEqual(['two']);
    store.set(message('a/b/c', ''));
    expect(store.size).toBe(1);
    expect(matchedTopics(store, '#')).toEqual(['a']);
    store.set(message('a', ''));
    expect(store.match('#')).toEqual([]);
    // What was freed can be used again, up to the same bound.
    for (let i = 0; i < 10; i++) expect(store.set(message(`t/${i}`))).toBe(true);
    expect(store.set(message('t/10'))).toBe(false);
  });

  it('counts 200 bytes per topic level against its byte bound', () => {
    const store = new RetainedStore(100, 1000);
    expect(store.set(message('a/b/c/d', 'x'))).toBe(true); // 1 + 7 + 4 × 200 = 808
    expect(store.set(message('e', 'x'))).toBe(false); // 808 + 202 > 1000
    expect(store.set(message('a/b/c/d', 'xy'))).toBe(true); // a replacement counts the difference
  });

  it('walks a filter of many levels without recursion', () => {
    const store = new RetainedStore(10, 10_000_000);
    const deep = Array.from({ length: 20_000 }, () => 'a').join('/');
    store.set(message(deep));
    expect(store.match(deep)).toHaveLength(1);
    expect(store.match('#')).toHaveLength(1);
    expect(store.match(`${deep}/#`)).toHaveLength(1);
  });
});
