// Streams end to end over an in-memory channel pair (alice opens, bob listens): 5 MiB arrive identical; a
// slow consumer holds the opener to the window (measured on the wire); refusals, resets, a cut link, idle
// timeouts and close() end both sides with typed errors and nothing hangs; whatever a hostile peer sends
// (data beyond its credit, gaps, wrong lengths, someone else's stream id, floods of OPENs, garbage) is
// counted and bounded, never a crash.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, test } from 'vitest';
import {
  StreamClosedError,
  StreamError,
  StreamLinkError,
  StreamNameError,
  StreamProtocolError,
  StreamRefusedError,
  StreamResetError,
  StreamTimeoutError,
} from '../../../../agent/messaging/stream/errors.js';
import {
  type IncomingStream,
  type OutgoingStream,
  StreamService,
  type StreamServiceOptions,
} from '../../../../agent/messaging/stream/service.js';
import { MemoryChannelPair } from '../../../../agent/messaging/transfer/channel.js';
import {
  decodeStream,
  encodeStream,
  STREAM_DATA_OVERHEAD_BYTES,
  type StreamMessage,
} from '../../../../agent/protocol/stream.js';
import { until } from '../../../support/until.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Tap = (from: string, to: string, message: StreamMessage) => StreamMessage | null;

/** alice and bob, each a StreamService on one end of a memory channel; `tap` sees every decoded message. */
function setup(
  options: {
    service?: StreamServiceOptions;
    /** bob's options, when they differ from alice's */
    listener?: StreamServiceOptions;
    latencyMs?: number;
    maxPayloadBytes?: number;
  } = {},
) {
  let tap: Tap = (_from, _to, message) => message;
  const pair = new MemoryChannelPair({
    a: 'alice',
    b: 'bob',
    ...(options.latencyMs !== undefined && { latencyMs: options.latencyMs }),
    ...(options.maxPayloadBytes !== undefined && { maxPayloadBytes: options.maxPayloadBytes }),
    tap: (from, to, payload) => {
      const message = decodeStream(payload);
      if (message instanceof Error) return payload;
      const passed = tap(from, to, message);
      return passed === null ? null : encodeStream(passed);
    },
  });
  const alice = new StreamService(pair.a, options.service);
  const bob = new StreamService(pair.b, options.listener ?? options.service);
  pair.a.inbound = (from, payload) => alice.handle(from, payload);
  pair.b.inbound = (from, payload) => bob.handle(from, payload);
  cleanups.push(async () => {
    await alice.close();
    await bob.close();
  });
  return {
    pair,
    alice,
    bob,
    setTap: (next: Tap) => {
      tap = next;
    },
  };
}

/** alice opens `name` on bob, who listens for it once: both ends of the stream. */
async function connect(
  s: { alice: StreamService; bob: StreamService },
  name: string,
): Promise<{ outgoing: OutgoingStream; stream: IncomingStream }> {
  const incoming = new Promise<IncomingStream>((resolve) => {
    const stop = s.bob.listen(name, (stream) => {
      stop();
      resolve(stream);
    });
  });
  const outgoing = await s.alice.open('bob', name);
  return { outgoing, stream: await incoming };
}

/** Resolves when `stream` emits `event` or closes (unlike events.once, an 'error' is no rejection). */
function settled(stream: Readable | Writable, event: string): Promise<void> {
  return new Promise((resolve) => {
    stream.once(event, () => resolve());
    stream.once('close', () => resolve());
  });
}

function errorOf(stream: Readable | Writable): Promise<Error> {
  return once(stream, 'error').then(([error]) => error as Error);
}

async function sha256Of(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

describe('streams', () => {
  test('5 MiB of random bytes piped through arrive identical, in DATA that fit the channel', async () => {
    const s = setup({ maxPayloadBytes: 16 * KiB });
    let largestData = 0;
    s.setTap((_from, _to, message) => {
      if (message.kind === 'data') largestData = Math.max(largestData, message.bytes.length);
      return message;
    });
    const data = randomBytes(5 * MiB);
    const { outgoing, stream } = await connect(s, 'camera');
    expect(stream).toMatchObject({ from: 'alice', name: 'camera', streamId: outgoing.streamId });

    // Writes of odd sizes, so DATA boundaries and write boundaries do not line up.
    const pieces = function* () {
      for (let at = 0; at < data.length; at += 77_777) yield data.subarray(at, at + 77_777);
    };
    const [received] = await Promise.all([sha256Of(stream), pipeline(Readable.from(pieces()), outgoing)]);

    expect(received.bytes).toBe(data.length);
    expect(received.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(outgoing.bytesSent).toBe(data.length);
    expect(stream.bytesReceived).toBe(data.length);
    expect(largestData).toBeGreaterThan(0);
    expect(largestData).toBeLessThanOrEqual(16 * KiB - STREAM_DATA_OVERHEAD_BYTES);
    expect(s.alice.active).toEqual({ incoming: 0, outgoing: 0 });
    expect(s.bob.active).toEqual({ incoming: 0, outgoing: 0 });
  });

  test('a consumer that does not read holds the sender to exactly the window; write() says so', async () => {
    const window = 64 * KiB;
    const s = setup({ service: { windowBytes: window, highWaterMark: 16 * KiB } });
    const { outgoing, stream } = await connect(s, 'logs');
    const accepted: boolean[] = [];
    for (let i = 0; i < 20; i++) accepted.push(outgoing.write(randomBytes(8 * KiB)));
    await until('the window buffered at the receiver', () => stream.readableLength >= window);
    // A stream opened and accepted after that: any CREDIT bob sent for what it holds has reached alice.
    await connect(s, 'after-the-window');

    // Every byte beyond the credit waits at the sender; the receiver buffers exactly what it granted.
    expect(outgoing.bytesSent).toBe(window);
    expect(outgoing.credit).toBe(0);
    expect(stream.readableLength).toBe(window);
    expect(accepted.at(-1)).toBe(false);
    expect(accepted.indexOf(false) * 8 * KiB).toBeGreaterThanOrEqual(window);

    // Reading makes room: credit comes back, 'drain' follows, the rest arrives.
    const received = sha256Of(stream);
    await once(outgoing, 'drain');
    outgoing.end();
    const { bytes } = await received;
    expect(bytes).toBe(20 * 8 * KiB);
  });

  test('with a slow consumer, bytes in flight plus buffered never exceed the window (measured)', async () => {
    const window = 48 * KiB;
    const s = setup({ service: { windowBytes: window }, latencyMs: 1, maxPayloadBytes: 8 * KiB });
    let consumed = 0;
    let worst = 0;
    // Every DATA that reaches bob: everything up to its end is sent, and the consumer has taken `consumed`.
    s.setTap((_from, to, message) => {
      if (to === 'bob' && message.kind === 'data') {
        worst = Math.max(worst, message.offset + message.bytes.length - consumed);
      }
      return message;
    });
    const { outgoing, stream } = await connect(s, 'slow');
    let drains = 0;
    outgoing.on('drain', () => {
      drains += 1;
    });
    const total = 400 * KiB;
    const consumer = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _encoding, callback) {
        consumed += chunk.length;
        setTimeout(callback, 2);
      },
    });
    await Promise.all([
      pipeline(stream, consumer),
      pipeline(
        Readable.from(Array.from({ length: total / (4 * KiB) }, () => randomBytes(4 * KiB))),
        outgoing,
      ),
    ]);

    expect(consumed).toBe(total);
    expect(worst).toBeLessThanOrEqual(window);
    // The window was used, so the bound above is the flow control's doing, not an idle sender's.
    expect(worst).toBeGreaterThan(window / 2);
    expect(drains).toBeGreaterThan(0);
  });

  test('many streams at once to different names all arrive intact', async () => {
    const s = setup({ latencyMs: 1, service: { windowBytes: 32 * KiB } });
    const names = Array.from({ length: 12 }, (_, i) => `sensor-${i}`);
    const data = new Map(names.map((name) => [name, randomBytes(100 * KiB + names.indexOf(name))]));
    const results = new Map<string, Promise<{ sha256: string; bytes: number }>>();
    s.bob.listenAny((stream) => {
      results.set(stream.name, sha256Of(stream));
    });
    await Promise.all(
      names.map(async (name) => {
        const outgoing = await s.alice.open('bob', name);
        await pipeline(Readable.from([data.get(name) as Buffer]), outgoing);
      }),
    );
    expect([...results.keys()].sort()).toEqual([...names].sort());
    for (const name of names) {
      const expected = createHash('sha256')
        .update(data.get(name) as Buffer)
        .digest('hex');
      expect((await results.get(name))?.sha256, name).toBe(expected);
    }
  });

  test('an OPEN for a name nothing listens on is refused no-listener', async () => {
    const s = setup();
    const error = await s.alice.open('bob', 'nobody-home').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamRefusedError);
    expect(error).toMatchObject({ reason: 'no-listener', code: 'stream-refused' });
    expect(s.bob.counters.get('refused-no-listener')).toBe(1);
    expect(s.alice.active.outgoing).toBe(0);
  });

  test('the listener decides who may open, and a name no listener could have is refused before sending', async () => {
    const s = setup();
    s.bob.listen('door', () => {}, { accept: ({ from }) => from === 'carol' });
    await expect(s.alice.open('bob', 'door')).rejects.toMatchObject({ reason: 'refused' });
    await expect(s.alice.open('bob', 'bad\nname')).rejects.toBeInstanceOf(StreamNameError);
    await expect(s.alice.open('bob', '')).rejects.toBeInstanceOf(StreamNameError);
    expect(() => s.bob.listen('door', () => {})).toThrow(StreamNameError);
    expect(() => s.bob.listen(' door', () => {})).toThrow(StreamNameError);
  });

  test('more streams than a peer may have open are refused busy, and a closed one frees its slot', async () => {
    const s = setup({ service: { maxStreamsPerPeer: 2 } });
    const held: IncomingStream[] = [];
    s.bob.listen('hold', (stream) => {
      held.push(stream);
    });
    const first = await s.alice.open('bob', 'hold');
    await s.alice.open('bob', 'hold');
    await expect(s.alice.open('bob', 'hold')).rejects.toMatchObject({ reason: 'busy' });
    expect(s.bob.active.incoming).toBe(2);

    first.end();
    await once(first, 'finish');
    await until('the ended stream gone at bob', () => s.bob.active.incoming === 1);
    await expect(s.alice.open('bob', 'hold')).resolves.toBeDefined();
  });

  test('a reader that closes early errors the writer (EPIPE), which stops sending', async () => {
    const s = setup({ service: { windowBytes: 16 * KiB } });
    const { outgoing, stream } = await connect(s, 'video');
    const writerError = errorOf(outgoing);
    const readerErrors: Error[] = [];
    stream.on('error', (error) => readerErrors.push(error));
    stream.once('data', () => stream.destroy());
    outgoing.write(randomBytes(200 * KiB));

    const error = await writerError;
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({ reason: 'closed', streamId: outgoing.streamId });
    // 'close' is the last event a stream emits: past it, nothing more is sent and no error can follow.
    await until('both ends closed', () => outgoing.closed && stream.closed);
    expect(outgoing.bytesSent).toBeLessThanOrEqual(32 * KiB);
    expect(outgoing.destroyed).toBe(true);
    // The reader's own destroy is no error on its side.
    expect(readerErrors).toEqual([]);
  });

  test("a writer that destroys with an error resets the reader's stream (aborted)", async () => {
    const s = setup();
    const { outgoing, stream } = await connect(s, 'audio');
    const readerError = errorOf(stream);
    stream.resume();
    outgoing.write(randomBytes(10 * KiB));
    outgoing.destroy(new Error('microphone unplugged'));

    const error = await readerError;
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({ reason: 'aborted' });
    expect(error.message).toContain('microphone unplugged');
  });

  test('a cut link mid-stream errors both sides with typed errors; nothing hangs', async () => {
    const s = setup({ service: { idleTimeoutMs: 300 }, latencyMs: 1 });
    const { outgoing, stream } = await connect(s, 'telemetry');
    const writerError = errorOf(outgoing);
    const readerError = errorOf(stream);
    stream.resume();
    let writing = true;
    const writer = (async () => {
      while (writing && !outgoing.destroyed) {
        if (!outgoing.write(randomBytes(4 * KiB))) await settled(outgoing, 'drain');
      }
    })();
    await until('100 KiB at the reader', () => stream.bytesReceived > 100 * KiB);
    s.pair.cut();

    expect(await writerError).toBeInstanceOf(StreamLinkError);
    const error = await readerError;
    // The reader hears of the cut when its next CREDIT fails, or at the latest by its idle timeout.
    expect(error).toBeInstanceOf(StreamError);
    expect(['stream-link', 'stream-timeout']).toContain((error as StreamError).code);
    writing = false;
    await writer;
    expect(s.alice.active.outgoing).toBe(0);
    expect(s.bob.active.incoming).toBe(0);
  });

  test('linkDown ends every stream with the peer at once with StreamLinkError', async () => {
    const s = setup({ service: { idleTimeoutMs: 0 } });
    const { outgoing, stream } = await connect(s, 'x');
    const writerError = errorOf(outgoing);
    const readerError = errorOf(stream);
    s.pair.cut();
    s.alice.linkDown('bob');
    s.bob.linkDown('alice');
    expect(await writerError).toBeInstanceOf(StreamLinkError);
    expect(await readerError).toBeInstanceOf(StreamLinkError);
  });

  test('a stream on which nothing moves times out on both sides', async () => {
    const s = setup({ service: { idleTimeoutMs: 100 } });
    const { outgoing, stream } = await connect(s, 'quiet');
    const [writerError, readerError] = await Promise.all([errorOf(outgoing), errorOf(stream)]);
    for (const error of [writerError, readerError]) {
      expect(error).toBeInstanceOf(StreamTimeoutError);
      expect(error).toMatchObject({ waitingFor: 'activity', timeoutMs: 100 });
    }
  });

  test("the peer's END timeout is a timeout here too, not a reset", async () => {
    const s = setup({ service: { idleTimeoutMs: 100 }, listener: { idleTimeoutMs: 60_000 } });
    const { outgoing, stream } = await connect(s, 'quiet');
    const [writerError, readerError] = await Promise.all([errorOf(outgoing), errorOf(stream)]);
    expect(writerError).toBeInstanceOf(StreamTimeoutError);
    expect(writerError).toMatchObject({ noticedBy: 'here', timeoutMs: 100 });
    expect(readerError).toBeInstanceOf(StreamTimeoutError);
    expect(readerError).toMatchObject({ noticedBy: 'peer', waitingFor: 'activity', timeoutMs: 60_000 });
    expect(readerError.message).toContain('within 100 ms');
  });

  test('an OPEN nobody answers times out waiting for the accept', async () => {
    const s = setup({ service: { idleTimeoutMs: 100 } });
    s.setTap((_from, _to, message) => (message.kind === 'open' ? null : message));
    await expect(s.alice.open('bob', 'void')).rejects.toMatchObject({ waitingFor: 'accept' });
    expect(s.alice.active.outgoing).toBe(0);
  });

  test('close() ends every stream: StreamClosedError here, a shutdown reset at the peer', async () => {
    const s = setup();
    const { outgoing, stream } = await connect(s, 'long');
    const writerError = errorOf(outgoing);
    const readerError = errorOf(stream);
    await s.alice.close();
    expect(await writerError).toBeInstanceOf(StreamClosedError);
    expect(await readerError).toMatchObject({ reason: 'shutdown' });
    await expect(s.alice.open('bob', 'long')).rejects.toBeInstanceOf(StreamClosedError);
  });

  test('an application error in the listener resets the stream, and the service reports both ends', async () => {
    const s = setup();
    const closed: { direction: string; error: Error | null }[] = [];
    s.alice.on('closed', (info) => closed.push(info));
    s.bob.on('closed', (info) => closed.push(info));
    s.bob.listen('crash', () => {
      throw new Error('handler bug');
    });
    const outgoing = await s.alice.open('bob', 'crash');
    const error = await errorOf(outgoing);
    expect(error).toMatchObject({ reason: 'closed' });
    expect(error.message).toContain('handler bug');
    expect(s.bob.counters.get('handler-error')).toBe(1);
    await until('both ends closed', () => closed.length === 2);
    expect(closed.map((c) => c.direction).sort()).toEqual(['in', 'out']);
    expect(closed.every((c) => c.error instanceof Error)).toBe(true);
  });
});

describe('a hostile opener', () => {
  /** bob listens; the test plays alice by hand and sees every reply bob sends. */
  function hostile(service: StreamServiceOptions = {}) {
    const pair = new MemoryChannelPair({ a: 'alice', b: 'bob' });
    const bob = new StreamService(pair.b, service);
    pair.b.inbound = (from, payload) => bob.handle(from, payload);
    const replies: StreamMessage[] = [];
    pair.a.inbound = (_from, payload) => {
      const message = decodeStream(payload);
      if (!(message instanceof Error)) replies.push(message);
    };
    const streams: IncomingStream[] = [];
    const errors: Error[] = [];
    bob.listen('sink', (stream) => {
      streams.push(stream);
      stream.on('error', (error) => errors.push(error));
    });
    cleanups.push(() => bob.close());
    const send = (message: StreamMessage) => pair.a.send('bob', encodeStream(message));
    const streamId = (n: number) => new Uint8Array(16).fill(n);
    return { pair, bob, replies, streams, errors, send, streamId };
  }

  test('DATA beyond the credit is dropped, counted, and resets the stream (protocol)', async () => {
    const window = 8 * KiB;
    const h = hostile({ windowBytes: window });
    const id = h.streamId(1);
    await h.send({ kind: 'open', streamId: id, name: 'sink' });
    await until('the accept', () => h.replies.length === 1);
    expect(h.replies).toEqual([{ kind: 'accept', streamId: id, credit: window }]);
    await h.send({ kind: 'data', streamId: id, offset: 0, bytes: new Uint8Array(window - 10) });
    await h.send({ kind: 'data', streamId: id, offset: window - 10, bytes: new Uint8Array(11) });
    await until('the stream reset', () => h.errors.length > 0);

    expect(h.bob.counters.get('beyond-credit')).toBe(1);
    const [stream] = h.streams;
    expect(stream?.bytesReceived).toBe(window - 10);
    expect(stream?.readableLength).toBe(window - 10);
    expect(h.errors[0]).toBeInstanceOf(StreamProtocolError);
    await until('the end', () => h.replies.length === 2);
    expect(h.replies.at(-1)).toMatchObject({ kind: 'end', outcome: { ok: false, code: 'protocol' } });
    expect(h.bob.active.incoming).toBe(0);
    // Whatever follows for the reset stream is an unknown stream now.
    await h.send({ kind: 'data', streamId: id, offset: window - 10, bytes: new Uint8Array(1) });
    expect(h.bob.counters.get('unknown-stream')).toBe(1);
  });

  test('a gap in the offsets and an END with the wrong length are protocol errors', async () => {
    const h = hostile();
    const [gap, short] = [h.streamId(2), h.streamId(3)];
    await h.send({ kind: 'open', streamId: gap, name: 'sink' });
    await h.send({ kind: 'data', streamId: gap, offset: 5, bytes: new Uint8Array(5) });
    await h.send({ kind: 'open', streamId: short, name: 'sink' });
    await h.send({ kind: 'data', streamId: short, offset: 0, bytes: new Uint8Array(5) });
    await h.send({ kind: 'end', streamId: short, outcome: { ok: true, length: 6 } });
    await until('both streams reset', () => h.errors.length >= 2);
    expect(h.bob.counters.get('bad-offset')).toBe(1);
    expect(h.bob.counters.get('bad-length')).toBe(1);
    expect(h.errors).toHaveLength(2);
    expect(h.errors.every((e) => e instanceof StreamProtocolError)).toBe(true);
  });

  test("another peer cannot touch a stream: someone else's id is dropped as wrong-peer", async () => {
    const h = hostile();
    const id = h.streamId(4);
    await h.send({ kind: 'open', streamId: id, name: 'sink' });
    h.bob.handle(
      'mallory',
      encodeStream({ kind: 'end', streamId: id, outcome: { ok: false, code: 'aborted', message: 'x' } }),
    );
    h.bob.handle(
      'mallory',
      encodeStream({ kind: 'data', streamId: id, offset: 0, bytes: new Uint8Array(1) }),
    );
    h.bob.handle('mallory', encodeStream({ kind: 'open', streamId: id, name: 'sink' }));
    expect(h.bob.counters.get('wrong-peer')).toBe(2);
    expect(h.bob.counters.get('duplicate-id')).toBe(1);
    expect(h.errors).toEqual([]);
    expect(h.bob.active.incoming).toBe(1);
  });

  test('a flood of OPENs is bounded by the per-peer and total limits', async () => {
    const h = hostile({ maxStreamsPerPeer: 4, maxStreams: 6 });
    for (let i = 0; i < 50; i++) await h.send({ kind: 'open', streamId: h.streamId(i + 10), name: 'sink' });
    for (let i = 0; i < 10; i++) {
      h.bob.handle('carol', encodeStream({ kind: 'open', streamId: h.streamId(100 + i), name: 'sink' }));
    }
    expect(h.bob.active.incoming).toBe(6);
    expect(h.streams).toHaveLength(6);
    expect(h.bob.counters.get('refused-busy')).toBe(46 + 8);
    await until('50 replies', () => h.replies.length === 50);
    expect(h.replies.filter((r) => r.kind === 'refuse')).toHaveLength(46);
  });

  test('garbage, unknown ids and messages of the wrong direction are counted, never thrown', async () => {
    const h = hostile();
    const id = h.streamId(5);
    for (const bytes of [new Uint8Array(0), Uint8Array.of(0xff), Uint8Array.of(0x82, 0x18, 0x1b, 0x00)]) {
      expect(() => h.bob.handle('alice', bytes)).not.toThrow();
    }
    await h.send({ kind: 'credit', streamId: id, upTo: 5 });
    await h.send({ kind: 'open', streamId: id, name: 'sink' });
    // CREDIT and ACCEPT go to an opener; bob is the listener of this stream.
    await h.send({ kind: 'credit', streamId: id, upTo: 5 });
    await h.send({ kind: 'accept', streamId: id, credit: 5 });
    const decodeDrops = Object.entries(h.bob.counters.snapshot())
      .filter(([name]) => name.startsWith('decode-'))
      .reduce((sum, [, n]) => sum + n, 0);
    expect(decodeDrops).toBe(3);
    expect(h.bob.counters.get('unknown-stream')).toBe(1);
    expect(h.bob.counters.get('unexpected')).toBe(2);
    expect(h.errors).toEqual([]);
  });

  test('an OPEN with an unacceptable name is refused bad-name', async () => {
    const h = hostile();
    h.bob.listenAny(() => {});
    await h.send({ kind: 'open', streamId: h.streamId(6), name: 'a\u202eb' });
    await until('the refusal', () => h.replies.length === 1);
    expect(h.replies).toContainEqual(expect.objectContaining({ kind: 'refuse', code: 'bad-name' }));
    expect(h.bob.active.incoming).toBe(0);
  });
});
