// The app inbox on a real queue file: consumers, windows, what leaves and when, bounds and expiry.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../../agent/core/counters.js';
import { silentLogger } from '../../../../agent/core/logger.js';
import { AppInbox, InboxConsumerBusyError } from '../../../../agent/messaging/reliable/app-inbox.js';
import {
  DurableQueue,
  type DurableQueueOptions,
} from '../../../../agent/messaging/reliable/durable-queue.js';
import { noInboxChanges } from '../../../../agent/messaging/reliable/inbox-changes.js';
import type { InboxEntry } from '../../../../agent/messaging/reliable/inbox-store.js';

const opened: DurableQueue[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const queue of opened.splice(0)) queue.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Fixture {
  queue: DurableQueue;
  inbox: AppInbox;
  counters: Counters;
  clock: { now: number };
  /** Stores `count` messages from `peer` (seqs continuing), as a receiver's turn would. */
  receive(peer: string, count: number, bytes?: number): Array<number | undefined>;
}

async function fixture(options: DurableQueueOptions = {}, path?: string): Promise<Fixture> {
  const file =
    path ??
    (() => {
      const dir = mkdtempSync(join(tmpdir(), 'nearmesh-inbox-'));
      dirs.push(dir);
      return join(dir, 'queue.db');
    })();
  const queue = await DurableQueue.open(file, options);
  opened.push(queue);
  const counters = new Counters();
  const clock = { now: 1_000_000 };
  const inbox = new AppInbox({
    store: queue.inbox,
    counters,
    log: silentLogger(),
    now: () => clock.now,
  });
  const seqs = new Map<string, number>();
  const receive = (peer: string, count: number, bytes = 10): Array<number | undefined> => {
    const messages = Array.from({ length: count }, () => {
      const seq = (seqs.get(peer) ?? queue.lastDelivered(peer, 'e')) + 1;
      seqs.set(peer, seq);
      return {
        peer,
        epoch: 'e',
        seq,
        payload: Buffer.alloc(bytes, seq % 256),
        hops: 1,
        receivedAtMs: clock.now,
      };
    });
    const changes = noInboxChanges();
    const ids = queue.receiveMany(messages, changes);
    inbox.stored();
    return ids;
  };
  return { queue, inbox, counters, clock, receive };
}

/** A consumer is handed what waits just after consume() returns. */
function handedOver(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(resolve));
}

function collector(): { entries: InboxEntry[]; listener: (entry: InboxEntry) => void } {
  const entries: InboxEntry[] = [];
  return { entries, listener: (entry) => entries.push(entry) };
}

describe('AppInbox', () => {
  it('keeps messages while no consumer is registered; the first gets all of them, oldest first', async () => {
    const { inbox, receive } = await fixture();
    receive('p', 3);
    expect(inbox.stats().messages).toBe(3);
    const { entries, listener } = collector();
    const taking = inbox.consume('app', listener);
    expect(entries).toEqual([]);
    await handedOver();
    expect(entries.map((entry) => entry.id)).toEqual([1, 2, 3]);
    taking.take(2);
    expect(inbox.stats().messages).toBe(1);
    taking.take(3);
    expect(inbox.stats().messages).toBe(0);
    receive('p', 1);
    expect(entries.map((entry) => entry.id)).toEqual([1, 2, 3, 4]);
  });

  it('hands each message once to a consumer that takes it while it is handed over', async () => {
    const { inbox, receive } = await fixture();
    receive('p', 300);
    const ids: number[] = [];
    const taking = inbox.consume('app', (entry) => {
      ids.push(entry.id);
      taking.take(entry.id);
    });
    await handedOver();
    receive('p', 5);
    expect(ids).toEqual(Array.from({ length: 305 }, (_, i) => i + 1));
    expect(inbox.stats().messages).toBe(0);
  });

  it('hands a consumer at most 256 untaken messages; taking makes room for more', async () => {
    const { inbox, receive } = await fixture();
    receive('p', 300);
    const { entries, listener } = collector();
    const taking = inbox.consume('app', listener);
    await handedOver();
    expect(entries).toHaveLength(256);
    taking.take(100);
    expect(entries).toHaveLength(300);
    expect(new Set(entries.map((entry) => entry.id)).size).toBe(300);
  });

  it('hands what was not taken to the next consume of the same consumer, across a reopen', async () => {
    const first = await fixture();
    first.receive('p', 10);
    const taking = first.inbox.consume('app', () => {});
    await handedOver();
    taking.take(4);
    taking.stop();
    first.inbox.stop(); // as the agent stops it before the queue: what was taken this turn is written down
    const path = first.queue.path;
    first.queue.close();
    const again = await fixture({}, path);
    const { entries, listener } = collector();
    again.inbox.consume('app', listener);
    await handedOver();
    expect(entries.map((entry) => entry.id)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('gives each consumer its own copy: a message leaves once all have taken it', async () => {
    const { inbox, receive } = await fixture();
    const one = inbox.consume('one', () => {});
    const two = inbox.consume('two', () => {});
    await handedOver();
    receive('p', 5);
    one.take(5);
    expect(inbox.stats().messages).toBe(5);
    two.take(3);
    expect(inbox.stats().messages).toBe(2);
    expect(inbox.consumers().map((row) => [row.name, row.waiting])).toEqual([
      ['one', 0],
      ['two', 2],
    ]);
    two.stop();
    expect(inbox.forget('two')).toBe(true);
    expect(inbox.stats().messages).toBe(0);
    expect(inbox.forget('two')).toBe(false);
  });

  it('refuses a second consume of a consumer taking now, and forgetting it, but not a peek', async () => {
    const { inbox, receive } = await fixture();
    receive('p', 2);
    inbox.consume('app', () => {});
    expect(() => inbox.consume('app', () => {})).toThrow(InboxConsumerBusyError);
    expect(() => inbox.forget('app')).toThrow(InboxConsumerBusyError);
    const { entries, listener } = collector();
    inbox.consume(undefined, listener);
    await handedOver();
    expect(entries).toHaveLength(2);
    expect(inbox.stats().messages).toBe(2);
  });

  it('refuses names that are not a consumer name', async () => {
    const { inbox } = await fixture();
    expect(() => inbox.consume('a b', () => {})).toThrow(/consumer name/);
    expect(() => inbox.consume('x'.repeat(129), () => {})).toThrow(/consumer name/);
  });

  it('when full refuses new messages, counted, and each sender after its first refused one', async () => {
    const { queue, receive } = await fixture({ inbox: { maxMessages: 3 } });
    expect(receive('a', 2)).toEqual([1, 2]);
    const ids = receive('b', 2);
    expect(ids).toEqual([3, undefined]);
    expect(queue.lastDelivered('b', 'e')).toBe(1); // the refused one is not received: b sends it again
    expect(queue.inbox.stats().messages).toBe(3);
  });

  it('with drop-oldest makes room by dropping the oldest, counted', async () => {
    const { queue, receive } = await fixture({ inbox: { maxMessages: 3, whenFull: 'drop-oldest' } });
    receive('a', 5);
    expect(queue.inbox.after(0, 10).map((entry) => entry.id)).toEqual([3, 4, 5]);
  });

  it('sweeps out messages past max_age and consumers not seen for consumer_expiry', async () => {
    const hour = 3_600_000;
    const { inbox, counters, clock, receive } = await fixture({
      inbox: { maxAgeMs: 2 * hour, consumerExpiryMs: 24 * hour },
    });
    const gone = inbox.consume('gone', () => {});
    gone.stop();
    receive('p', 2);
    clock.now += hour;
    receive('p', 1);
    clock.now += 1.5 * hour;
    inbox.sweep();
    expect(inbox.list({ limit: 10 }).map((entry) => entry.id)).toEqual([3]);
    expect(counters.get('inbox.expired')).toBe(2);
    clock.now += 24 * hour;
    inbox.sweep();
    expect(inbox.consumers()).toEqual([]);
    expect(counters.get('inbox.consumers_forgotten')).toBe(1);
  });

  it('lists by sender and time, and clears up to an id', async () => {
    const { inbox, clock, receive } = await fixture();
    receive('a', 2);
    clock.now += 1000;
    receive('b', 2);
    expect(inbox.list({ from: 'b', limit: 10 }).map((entry) => entry.id)).toEqual([3, 4]);
    expect(inbox.list({ sinceMs: clock.now, limit: 10 }).map((entry) => entry.id)).toEqual([3, 4]);
    expect(inbox.list({ limit: 1 }).map((entry) => entry.id)).toEqual([1]);
    expect(inbox.clear(2)).toBe(2);
    expect(inbox.clear()).toBe(2);
    expect(inbox.stats()).toMatchObject({ messages: 0, bytes: 0, oldestAtMs: null });
  });

  it('pages a peek through a long inbox a turn at a time', async () => {
    const { inbox, receive } = await fixture();
    receive('p', 600);
    const { entries, listener } = collector();
    inbox.consume(undefined, listener);
    await handedOver();
    expect(entries).toHaveLength(256);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(entries.map((entry) => entry.id)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
  });
});
