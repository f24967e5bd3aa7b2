// Reliable delivery between two ReliableDelivery engines on real SQLite queue files, joined by
// an in-memory channel standing in for the messenger (a direct link or the mesh): the window, the probe
// that goes when no link or route is known, rewinds after lost sends, and a sender restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counters } from '../../../../agent/core/counters.js';
import { silentLogger } from '../../../../agent/core/logger.js';
import { DurableQueue } from '../../../../agent/messaging/reliable/durable-queue.js';
import {
  ReliableDelivery,
  type ReliableMessage,
  WINDOW_BYTES,
  WINDOW_MESSAGES,
} from '../../../../agent/messaging/reliable/reliable-delivery.js';
import { decodeQueued } from '../../../../agent/protocol/queued.js';
import { until } from '../../../support/until.js';

const ALICE = 'a'.repeat(16);
const BOB = 'b'.repeat(16);

/** What the channel between the two does with a QUEUED from alice; RECEIVED always goes through. */
type Verdict = 'deliver' | 'fail';

class Pair {
  readonly dirs = [
    mkdtempSync(join(tmpdir(), 'nearmesh-rd-a-')),
    mkdtempSync(join(tmpdir(), 'nearmesh-rd-b-')),
  ];
  readonly counters = { alice: new Counters(), bob: new Counters() };
  readonly received: ReliableMessage[] = [];
  /** Whether alice has a link or route to bob; the channel reaches bob either way (a flood does). */
  reachable = true;
  verdict: (seq: number) => Verdict = () => 'deliver';
  inFlight = 0;
  maxInFlight = 0;
  inFlightBytes = 0;
  maxInFlightBytes = 0;
  maxInFlightUnreachable = 0;
  alice!: ReliableDelivery;
  bob!: ReliableDelivery;
  #queues: DurableQueue[] = [];

  constructor(private readonly maxPayloadBytes = 1_000) {}

  async start(): Promise<this> {
    this.alice = await this.#engine('alice', this.dirs[0]!, () => this.bob);
    this.bob = await this.#engine('bob', this.dirs[1]!, () => this.alice);
    this.bob.on('message', (message) => this.received.push(message));
    return this;
  }

  /** A new alice on the same queue file, as after a restart. */
  async restartAlice(): Promise<void> {
    this.alice.stop();
    this.#queues.shift()?.close();
    const alice = await this.#engine('alice', this.dirs[0]!, () => this.bob);
    this.alice = alice;
  }

  stop(): void {
    this.alice.stop();
    this.bob.stop();
    for (const queue of this.#queues) queue.close();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }

  async #engine(who: 'alice' | 'bob', dir: string, other: () => ReliableDelivery): Promise<ReliableDelivery> {
    const queue = await DurableQueue.open(join(dir, 'messages.sqlite'));
    if (who === 'alice') this.#queues.unshift(queue);
    else this.#queues.push(queue);
    const self = who === 'alice' ? ALICE : BOB;
    const engine = new ReliableDelivery({
      queue,
      send: (_peer, payload) => this.#carry(self, payload, other()),
      isReachable: () => this.reachable,
      nameOf: (peer) => peer,
      maxPayloadBytes: this.maxPayloadBytes,
      counters: this.counters[who],
      log: silentLogger(),
    });
    engine.start();
    return engine;
  }

  /** Hands a payload to the other engine on a later turn, as a link would, and resolves as its ack. */
  async #carry(from: string, payload: Uint8Array, to: ReliableDelivery): Promise<void> {
    const message = decodeQueued(payload);
    const seq = message instanceof Error || message.kind !== 'queued' ? undefined : message.seq;
    if (seq === undefined) {
      setImmediate(() => to.handle(from, payload));
      return;
    }
    const bytes = message instanceof Error || message.kind !== 'queued' ? 0 : message.payload.length;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.inFlightBytes += bytes;
    this.maxInFlightBytes = Math.max(this.maxInFlightBytes, this.inFlightBytes);
    if (!this.reachable) this.maxInFlightUnreachable = Math.max(this.maxInFlightUnreachable, this.inFlight);
    try {
      // Kept: the link's latency, so that sends overlap as they do on a real link (and fake timers drive it).
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (this.verdict(seq) === 'fail') throw new Error(`lost #${seq}`);
      to.handle(from, payload, this.reachable ? 1 : 3);
    } finally {
      this.inFlight -= 1;
      this.inFlightBytes -= bytes;
    }
  }
}

const numbered = (count: number, from = 1): Uint8Array[] =>
  Array.from({ length: count }, (_, index) => new TextEncoder().encode(`#${from + index}`));
const texts = (messages: readonly ReliableMessage[]): string[] =>
  messages.map((message) => new TextDecoder().decode(message.payload));

let pair: Pair | undefined;
afterEach(() => {
  pair?.stop();
  pair = undefined;
});

describe('reliable delivery between two queue files', () => {
  it('delivers 500 messages once and in order, never more than the window unconfirmed', async () => {
    pair = await new Pair().start();
    await pair.alice.send(BOB, numbered(500), 10_000);
    expect(texts(pair.received)).toEqual(texts(numbered(500).map(asMessage)));
    expect(pair.maxInFlight).toBeLessThanOrEqual(WINDOW_MESSAGES);
    expect(pair.maxInFlight).toBeGreaterThan(1);
    expect(pair.alice.queued().messages).toBe(0);
    expect(pair.counters.alice.get('messages.delivered')).toBe(500);
  });

  it('keeps large messages within the window in bytes', async () => {
    pair = await new Pair(60_000).start();
    const size = pair.alice.maxMessageBytes;
    const large = Array.from({ length: 120 }, (_, index) => new Uint8Array(size).fill(index));
    await pair.alice.send(BOB, large, 20_000);
    expect(pair.received.map((message) => message.payload[0])).toEqual(large.map((_, index) => index));
    expect(pair.maxInFlightBytes).toBeLessThanOrEqual(WINDOW_BYTES);
    expect(pair.maxInFlight).toBe(Math.floor(WINDOW_BYTES / size));
  });

  it('with no link or route known, sends one message at a time (a probe) and the rest once a route is', async () => {
    pair = await new Pair().start();
    pair.reachable = false;
    await pair.alice.send(BOB, numbered(3), 10_000);
    expect(texts(pair.received)).toEqual(['#1', '#2', '#3']);
    expect(pair.maxInFlightUnreachable).toBe(1);
    expect(pair.received[0]?.hops).toBe(3);
    pair.reachable = true;
    await pair.alice.send(BOB, numbered(200, 4), 10_000);
    expect(pair.received).toHaveLength(203);
    expect(pair.maxInFlight).toBeGreaterThan(1);
  });

  it('probes a peer nothing reaches ever more rarely (at most every 2 min), and sends once it is back', async () => {
    vi.useFakeTimers();
    try {
      pair = await new Pair().start();
      pair.reachable = false;
      pair.verdict = () => 'fail';
      const waited = pair.alice.send(BOB, numbered(1), 1_000).catch((error: Error) => error.message);
      await vi.advanceTimersByTimeAsync(30 * 60_000);
      expect(await waited).toMatch(/queued but not yet delivered/);
      // Pauses doubling from 0.5 s to 2 min: 10 probes in the first ~4 min, then one per 2 min: ~23 in
      // 30 min. With the 8 s cap of a reachable peer it would be ~225 floods.
      const probes = pair.counters.alice.get('messages.queued_sent');
      expect(probes).toBeGreaterThanOrEqual(15);
      expect(probes).toBeLessThanOrEqual(26);
      expect(pair.received).toHaveLength(0);
      // A route is heard: the message goes at the next look (1 s), not at the end of the 2 min pause.
      pair.reachable = true;
      pair.verdict = () => 'deliver';
      await vi.advanceTimersByTimeAsync(1_500);
      expect(texts(pair.received)).toEqual(['#1']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('sends lost messages again after a pause; the receiver drops the copies it already holds', async () => {
    pair = await new Pair().start();
    const lost = new Set([5, 40]);
    pair.verdict = (seq) => (lost.delete(seq) ? 'fail' : 'deliver');
    await pair.alice.send(BOB, numbered(100), 10_000);
    expect(texts(pair.received)).toEqual(texts(numbered(100).map(asMessage)));
    expect(pair.counters.alice.get('messages.queued_rewinds')).toBeGreaterThanOrEqual(1);
    expect(pair.counters.bob.get('messages.gaps_dropped')).toBeGreaterThan(0);
  });

  it('a restarted sender sends what was queued and not confirmed, and nothing twice', async () => {
    pair = await new Pair().start();
    pair.verdict = () => 'fail';
    await expect(pair.alice.send(BOB, numbered(50), 300)).rejects.toThrow(/queued but not yet delivered/);
    expect(pair.received).toHaveLength(0);
    await pair.restartAlice();
    pair.verdict = () => 'deliver';
    const current = pair;
    await until('50 messages at bob', () => current.received.length >= 50, { timeoutMs: 5_000 });
    await pair.alice.send(BOB, numbered(1, 51), 5_000);
    expect(texts(pair.received)).toEqual(texts(numbered(51).map(asMessage)));
  });
});

function asMessage(payload: Uint8Array): ReliableMessage {
  return { from: ALICE, fromName: ALICE, payload, receivedAtMs: 0, hops: 1, inboxId: 0 };
}
