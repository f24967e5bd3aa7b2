// How bulk transfer sizes its traffic: each attempt's chunks fit the link to the peer then (large on Wi-Fi,
// small after a fall back to BLE, and the receiver follows a re-OFFER's new size), the receiver's window
// shrinks so large chunks stay within its byte budget, chunk bytes queued for one transfer are bounded, and
// progress events are rate limited but always end on the last byte. LinkTransferChannel's limit by medium
// is checked against the same numbers the agent uses.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MAX_ROUTED_PAYLOAD_BYTES } from '../../../../agent/messaging/messenger.js';
import { MemoryChannelPair } from '../../../../agent/messaging/transfer/channel.js';
import { LinkTransferChannel, SLOW_LINK_WINDOW } from '../../../../agent/messaging/transfer/link-channel.js';
import { WIFI_CHUNK_BYTES } from '../../../../agent/messaging/transfer/manager.js';
import type { TransferReceiverOptions } from '../../../../agent/messaging/transfer/receiver-api.js';
import type { SendProgress, TransferSenderOptions } from '../../../../agent/messaging/transfer/sender.js';
import { TransferService } from '../../../../agent/messaging/transfer/service.js';
import {
  CHUNK_OVERHEAD_BYTES,
  decodeTransfer,
  encodeTransfer,
  type TransferMessage,
} from '../../../../agent/protocol/transfer.js';
import type { Medium } from '../../../../transports/transport.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** alice sends to bob over a memory pair whose per-peer limit the test moves; every message is recorded. */
async function setup(
  options: { sender?: Partial<TransferSenderOptions>; receiver?: Partial<TransferReceiverOptions> } = {},
) {
  const root = await mkdtemp(join(tmpdir(), 'nearmesh-sizing-'));
  const toBob: TransferMessage[] = [];
  const toAlice: TransferMessage[] = [];
  const pair = new MemoryChannelPair({
    a: 'alice',
    b: 'bob',
    maxPayloadBytes: 256 * KiB,
    tap: (_from, to, payload) => {
      const message = decodeTransfer(payload);
      if (!(message instanceof Error)) (to === 'bob' ? toBob : toAlice).push(message);
      return payload;
    },
  });
  const limit = { bytes: 256 * KiB, chunksInFlight: Number.POSITIVE_INFINITY };
  const aliceChannel = Object.assign(pair.a, { payloadLimit: () => limit.bytes });
  const bobChannel = Object.assign(pair.b, { windowLimit: () => limit.chunksInFlight });
  const alice = new TransferService(aliceChannel, {
    sender: { stateDir: join(root, 'alice-state'), ...options.sender },
    receiver: { inboxDir: join(root, 'alice-inbox') },
  });
  const bob = new TransferService(bobChannel, {
    sender: { stateDir: join(root, 'bob-state') },
    receiver: { inboxDir: join(root, 'inbox'), diskMarginBytes: 0, ...options.receiver },
  });
  pair.a.inbound = (from, payload) => alice.handle(from, payload);
  pair.b.inbound = (from, payload) => bob.handle(from, payload);
  cleanups.push(async () => {
    await alice.close();
    await bob.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, pair, alice, bob, limit, toBob, toAlice };
}

async function makeFile(root: string, size: number): Promise<{ path: string; sha256: string }> {
  const path = join(root, 'payload.bin');
  const data = randomBytes(size);
  await writeFile(path, data);
  return { path, sha256: createHash('sha256').update(data).digest('hex') };
}

describe('chunk size per attempt', () => {
  test('chunks fit the link at each attempt: large first, small after the link shrank, file intact', async () => {
    const s = await setup({ sender: { progressIntervalMs: 0 }, receiver: { persistEveryBytes: 256 * KiB } });
    const file = await makeFile(s.root, 3 * MiB);
    const cut = (progress: SendProgress): void => {
      if (progress.bytesAcked < MiB) return;
      s.alice.sender.off('progress', cut);
      s.pair.cut();
    };
    s.alice.sender.on('progress', cut);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toMatchObject({ resumable: true });

    // The peer is now reached over something smaller (BLE): the resume goes on in chunks that fit it.
    s.limit.bytes = 16 * KiB;
    s.pair.restore();
    const received = new Promise<string>((resolve) =>
      s.bob.receiver.once('received', (f) => resolve(f.path)),
    );
    const report = await (await s.alice.sender.resume(first.transferId)).done;

    const offers = s.toBob.filter((m) => m.kind === 'offer');
    expect(offers.map((m) => m.chunkSize)).toEqual([
      256 * KiB - CHUNK_OVERHEAD_BYTES,
      16 * KiB - CHUNK_OVERHEAD_BYTES,
    ]);
    const chunks = s.toBob.flatMap((m) => (m.kind === 'chunk' ? [m] : []));
    const resumed = chunks.filter((m) => m.offset >= report.resumedFrom);
    expect(report.resumedFrom).toBeGreaterThan(0);
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed.every((m) => m.bytes.length <= 16 * KiB - CHUNK_OVERHEAD_BYTES)).toBe(true);
    expect(chunks.some((m) => m.bytes.length === 256 * KiB - CHUNK_OVERHEAD_BYTES)).toBe(true);
    const arrived = await readFile(await received);
    expect(createHash('sha256').update(arrived).digest('hex')).toBe(file.sha256);
  });

  test('the configured chunk size is an upper bound, under the link limit', async () => {
    const s = await setup({ sender: { chunkSize: 10_000 } });
    const file = await makeFile(s.root, 50_000);
    await s.alice.sender.sendFile('bob', file.path);
    expect(s.toBob.find((m) => m.kind === 'offer')).toMatchObject({ chunkSize: 10_000 });
  });
});

describe('receiver window', () => {
  test('the window shrinks to the byte budget for large chunks, and stays whole for small ones', async () => {
    const s = await setup({ receiver: { window: 16, windowBytes: MiB } });
    const large = await makeFile(s.root, 600 * KiB);
    await s.alice.sender.sendFile('bob', large.path);
    s.limit.bytes = 32 * KiB;
    await s.alice.sender.sendFile('bob', large.path, { name: 'small-chunks.bin' });

    const windows = s.toAlice.flatMap((m) => (m.kind === 'accept' ? [m.window] : []));
    // 1 MiB / (256 KiB - overhead) = 4 chunks; 1 MiB / (32 KiB - overhead) = 32, capped by the window of 16.
    expect(windows).toEqual([4, 16]);
  });

  test('chunk bytes queued for one transfer are bounded even when the message count is not reached', async () => {
    const s = await setup({
      receiver: { window: 1000, windowBytes: 64 * KiB, maxQueuedPerTransfer: 10_000 },
    });
    const transferId = new Uint8Array(randomBytes(16));
    const bob = s.bob;
    const send = (message: TransferMessage) => bob.handle('alice', encodeTransfer(message));
    await send({
      kind: 'offer',
      transferId,
      name: 'flood.bin',
      size: 100 * MiB,
      chunkSize: 64 * KiB,
    });
    // 200 chunks of 64 KiB at once: 12.5 MiB, far beyond 2 × 64 KiB + one chunk of slack.
    const bytes = new Uint8Array(64 * KiB);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        send({ kind: 'chunk', transferId, offset: i * bytes.length, bytes }),
      ),
    );
    const flood = bob.receiver.counters.get('flood');
    expect(flood).toBeGreaterThan(150);
    expect(flood).toBeLessThan(200);
  });
});

describe('progress events', () => {
  test('at most one per interval, monotonic, and the last one says every byte is acknowledged', async () => {
    const s = await setup({ sender: { progressIntervalMs: 60_000 } });
    const file = await makeFile(s.root, 4 * MiB);
    const events: SendProgress[] = [];
    s.alice.sender.on('progress', (p) => events.push(p));
    await s.alice.sender.sendFile('bob', file.path);
    // 16 chunks went out and 8 acks came back, but within one interval: the first event and the last.
    expect(events).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ bytesAcked: 4 * MiB, total: 4 * MiB });
  });
});

describe('window over a slow link', () => {
  test('a receiver whose link to the sender carries one chunk in time grants one, and acks each', async () => {
    const s = await setup({ receiver: { window: 16 } });
    s.limit.bytes = 16 * KiB;
    s.limit.chunksInFlight = SLOW_LINK_WINDOW;
    const file = await makeFile(s.root, 200 * KiB);
    let unacked = 0;
    let mostUnacked = 0;
    const windows: number[] = [];
    s.pair.tap = (_from, _to, payload) => {
      const message = decodeTransfer(payload);
      if (message instanceof Error) return payload;
      if (message.kind === 'chunk') mostUnacked = Math.max(mostUnacked, ++unacked);
      if (message.kind === 'chunk-ack') unacked = 0;
      if (message.kind === 'accept') windows.push(message.window);
      return payload;
    };
    const received = new Promise<string>((resolve) =>
      s.bob.receiver.once('received', (f) => resolve(f.path)),
    );
    await s.alice.sender.sendFile('bob', file.path);
    expect(windows).toEqual([1]);
    expect(mostUnacked).toBe(1);
    const arrived = await readFile(await received);
    expect(createHash('sha256').update(arrived).digest('hex')).toBe(file.sha256);
  });
});

describe('LinkTransferChannel', () => {
  test('takes Wi-Fi-sized chunks and a full window only while the peer is on Wi-Fi', () => {
    const media = new Map<string, Medium | undefined>([
      ['wifi-peer', 'wifi'],
      ['ble-peer', 'ble'],
      ['routed-peer', undefined],
    ]);
    const channel = new LinkTransferChannel({
      send: async () => {},
      mediumOf: (peer) => media.get(peer),
      allowsSlowMedia: () => true,
      maxPayloadBytes: WIFI_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES,
      routedPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
    });
    expect(channel.payloadLimit('wifi-peer')).toBe(WIFI_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES);
    expect(channel.payloadLimit('ble-peer')).toBe(MAX_ROUTED_PAYLOAD_BYTES);
    expect(channel.payloadLimit('routed-peer')).toBe(MAX_ROUTED_PAYLOAD_BYTES);
    expect(channel.windowLimit('wifi-peer')).toBe(Number.POSITIVE_INFINITY);
    expect(channel.windowLimit('ble-peer')).toBe(SLOW_LINK_WINDOW);
    expect(channel.windowLimit('routed-peer')).toBe(SLOW_LINK_WINDOW);
  });
});
