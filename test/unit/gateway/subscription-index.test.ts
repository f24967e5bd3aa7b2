import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../../agent/core/topic-match.js';
import { Session } from '../../../agent/gateway/session-store.js';
import { SubscriptionIndex } from '../../../agent/gateway/subscription-index.js';

const OPTIONS = { qos: 0, noLocal: false, retainAsPublished: false } as const;

function matchedFilters(index: SubscriptionIndex, topic: string): string[] {
  return [...index.match(topic)].map((subscription) => subscription.filter).sort();
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('SubscriptionIndex', () => {
  it('keeps MQTT wildcard semantics', () => {
    const index = new SubscriptionIndex();
    const session = new Session('c');
    for (const filter of ['a/#', 'a/+', '+/b', '#', 'a/+/c', '$SYS/#', '+/+', 'a//c', 'a/+/+'])
      index.add(session, filter, filter, OPTIONS);
    expect(matchedFilters(index, 'a')).toEqual(['#', 'a/#']); // `#` also matches the parent level
    expect(matchedFilters(index, 'a/b')).toEqual(['#', '+/+', '+/b', 'a/#', 'a/+']);
    expect(matchedFilters(index, 'a//c')).toEqual(['#', 'a/#', 'a/+/+', 'a/+/c', 'a//c']); // `+` matches ''
    // Topics starting with `$` are matched by no filter starting with a wildcard.
    expect(matchedFilters(index, '$SYS/load')).toEqual(['$SYS/#']);
  });

  it('matches exactly what topicMatches says, for any filters and topic', () => {
    const level = fc.constantFrom('a', 'b', '', '$x');
    const filterLevel = fc.constantFrom('a', 'b', '', '+', '$x');
    const filter = fc
      .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'));
    const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'));
    fc.assert(
      fc.property(fc.uniqueArray(filter, { maxLength: 12 }), topic, (filters, name) => {
        const index = new SubscriptionIndex();
        const session = new Session('c');
        for (const f of filters) index.add(session, f, f, OPTIONS);
        expect(matchedFilters(index, name)).toEqual(filters.filter((f) => topicMatches(f, name)).sort());
      }),
    );
  });

  it('replaces a filter subscribed twice and removes one on unsubscribe', () => {
    const index = new SubscriptionIndex();
    const session = new Session('c');
    index.add(session, 'a/+', 'a/+', OPTIONS);
    index.add(session, 'a/+', 'a/+', { ...OPTIONS, qos: 1 });
    expect([...index.match('a/b')].map((s) => s.options.qos)).toEqual([1]);
    expect(index.remove(session, 'a/+')).toBe(true);
    expect(index.remove(session, 'a/+')).toBe(false);
    expect(matchedFilters(index, 'a/b')).toEqual([]);
  });

  it('drops a session at once and takes its filters out of the trie a bounded batch per turn', async () => {
    const index = new SubscriptionIndex();
    const heavy = new Session('heavy');
    const other = new Session('other');
    for (let i = 0; i < 20_000; i++) index.add(heavy, `devices/${i}/#`, `devices/${i}/#`, OPTIONS);
    index.add(other, 'devices/+/#', 'devices/+/#', OPTIONS);
    index.dropSession(heavy);
    expect(heavy.subscriptions.size).toBe(0);
    expect([...index.match('devices/7/t')].map((s) => s.session.clientId)).toEqual(['other']);
    // The work is spread: each event-loop turn removes at most a fixed number of filters.
    const pending = [index.pendingRemovals];
    while (index.pendingRemovals > 0) {
      await nextTurn();
      pending.push(index.pendingRemovals);
    }
    expect(pending[0]).toBe(20_000);
    for (let i = 1; i < pending.length; i++)
      expect((pending[i - 1] as number) - (pending[i] as number)).toBeLessThanOrEqual(1000);
    expect(pending.length).toBeGreaterThanOrEqual(21);
    expect([...index.match('devices/7/t')].map((s) => s.session.clientId)).toEqual(['other']);
  });
});
