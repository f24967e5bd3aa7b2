// Bulk transfer at its limits and under attack: a too-large offer is refused with too-large, a full disk
// (up front, or mid-transfer on a real 1 MiB tmpfs and through an injected write) gives disk-full and
// leaves no file, a corrupted chunk gives hash-mismatch and no file, and whatever a hostile peer sends
// (unsafe names, offsets beyond the size, unknown ids, someone else's id, floods, garbage) is refused or
// counted, never a crash or a file outside the inbox.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MemoryChannelPair } from '../../../../agent/messaging/transfer/channel.js';
import {
  TransferFailedError,
  TransferProtocolError,
  TransferRejectedError,
} from '../../../../agent/messaging/transfer/errors.js';
import type { TransferReceiverOptions } from '../../../../agent/messaging/transfer/receiver-api.js';
import { TransferService } from '../../../../agent/messaging/transfer/service.js';
import {
  decodeTransfer,
  encodeTransfer,
  type TransferMessage,
  transferIdToHex,
} from '../../../../agent/protocol/transfer.js';
import { describeWhenAvailable } from '../../../support/requirements.js';

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'nearmesh-transfer-limits-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

async function makeFile(root: string, name: string, size: number): Promise<string> {
  await mkdir(join(root, 'outbox'), { recursive: true });
  const path = join(root, 'outbox', name);
  await writeFile(path, randomBytes(size));
  return path;
}

/** alice sends with a real TransferService, bob receives into `inbox`. */
async function pairOfServices(inbox: string, receiver: Partial<TransferReceiverOptions> = {}) {
  const root = await tempRoot();
  const pair = new MemoryChannelPair({ a: 'alice', b: 'bob' });
  const alice = new TransferService(pair.a, {
    sender: { stateDir: join(root, 'state') },
    receiver: { inboxDir: join(root, 'alice-inbox') },
  });
  const bob = new TransferService(pair.b, {
    sender: { stateDir: join(root, 'bob-state') },
    receiver: { inboxDir: inbox, diskMarginBytes: 0, ...receiver },
  });
  pair.a.inbound = (from, payload) => alice.handle(from, payload);
  pair.b.inbound = (from, payload) => bob.handle(from, payload);
  cleanups.push(async () => {
    await alice.close();
    await bob.close();
  });
  return { root, pair, alice, bob };
}

/** bob receives; "alice" is the test itself, seeing every reply bob sends. */
async function hostileSetup(receiver: Partial<TransferReceiverOptions> = {}) {
  const root = await tempRoot();
  const inbox = join(root, 'inbox');
  const pair = new MemoryChannelPair({ a: 'alice', b: 'bob' });
  const bob = new TransferService(pair.b, {
    sender: { stateDir: join(root, 'bob-state') },
    receiver: { inboxDir: inbox, diskMarginBytes: 0, ...receiver },
  });
  const replies: TransferMessage[] = [];
  pair.a.inbound = (_from, payload) => {
    const message = decodeTransfer(payload);
    if (!(message instanceof Error)) replies.push(message);
  };
  cleanups.push(() => bob.close());
  const send = (message: TransferMessage, from = 'alice') => bob.handle(from, encodeTransfer(message));
  /** Lets bob's replies (sent without waiting) arrive. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
  return { root, inbox, bob, replies, send, settle };
}

function newId(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

function offer(overrides: Partial<Extract<TransferMessage, { kind: 'offer' }>> = {}): TransferMessage {
  return {
    kind: 'offer',
    transferId: newId(),
    name: 'file.bin',
    size: 1000,
    chunkSize: 100,
    ...overrides,
  };
}

/** Mounts a tmpfs of `size` at a new directory (root only); undefined when that is not possible here. */
/** A tmpfs of `size` (root only; a failed mount fails the test). */
async function tinyTmpfs(size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nearmesh-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  cleanups.push(async () => {
    execFileSync('umount', [dir], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

describe('limits', () => {
  test('an offer above maxBytes is refused with too-large before any file exists', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    const { alice } = await pairOfServices(inbox, { maxBytes: MiB });
    const path = await makeFile(root, 'big.bin', MiB + 1);
    const error = await alice.sender.sendFile('bob', path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferRejectedError);
    expect(error).toMatchObject({ reason: 'too-large', resumable: false });
    expect(await readdir(inbox).catch(() => [])).toEqual([]);
    expect(await readdir(join(root, 'state')).catch(() => [])).toEqual([]);
  });

  test('too little free space (statfs) is refused with disk-full up front', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    const { alice } = await pairOfServices(inbox, {
      diskMarginBytes: 1024,
      fs: { statfs: async () => ({ bavail: 256, bsize: 4096 }) },
    });
    const path = await makeFile(root, 'big.bin', MiB);
    await expect(alice.sender.sendFile('bob', path)).rejects.toMatchObject({ reason: 'disk-full' });
    expect(await readdir(inbox)).toEqual([]);
  });

  test('ENOSPC from an injected write mid-transfer gives disk-full and no half file', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    let written = 0;
    const { alice } = await pairOfServices(inbox, {
      fs: {
        write: async (handle, bytes, position) => {
          if (written + bytes.length > MiB) {
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          }
          written += bytes.length;
          await handle.write(bytes, 0, bytes.length, position);
        },
      },
    });
    const path = await makeFile(root, 'big.bin', 3 * MiB);
    await expect(alice.sender.sendFile('bob', path)).rejects.toMatchObject({
      code: 'transfer-failed',
      reason: 'disk-full',
    });
    expect(await readdir(inbox)).toEqual([]);
  });

  test('a corrupted chunk gives hash-mismatch and no final file', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    const { alice, bob, pair } = await pairOfServices(inbox);
    let chunks = 0;
    pair.tap = (_from, _to, payload) => {
      const message = decodeTransfer(payload);
      if (!(message instanceof Error) && message.kind === 'chunk' && ++chunks === 7) {
        const copy = payload.slice();
        copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0xff;
        return copy;
      }
      return payload;
    };
    const path = await makeFile(root, 'data.bin', MiB);
    const failed = new Promise<string>((resolve) => bob.receiver.once('failed', (f) => resolve(f.code)));
    await expect(alice.sender.sendFile('bob', path)).rejects.toMatchObject({ reason: 'hash-mismatch' });
    expect(await failed).toBe('hash-mismatch');
    expect(await readdir(inbox)).toEqual([]);
  });
});

describe('hostile peers', () => {
  test.each([['../x'], ['..'], ['a/b'], ['/etc/passwd'], ['.hidden'], ['nul\u0000byte'], ['.abcdef.part']])(
    'name %j is refused with bad-name and nothing is created',
    async (name) => {
      const h = await hostileSetup();
      await h.send(offer({ name }));
      await h.settle();
      expect(h.replies).toEqual([expect.objectContaining({ kind: 'reject', code: 'bad-name' })]);
      expect(await readdir(h.root)).toEqual([]);
    },
  );

  test('a huge size is refused with too-large', async () => {
    const h = await hostileSetup();
    await h.send(offer({ size: Number.MAX_SAFE_INTEGER }));
    await h.settle();
    expect(h.replies).toEqual([expect.objectContaining({ kind: 'reject', code: 'too-large' })]);
  });

  test('bad offsets, unknown ids, wrong peers, gaps and duplicates are counted drops', async () => {
    const h = await hostileSetup({ window: 4 });
    const transferId = newId();
    const data = randomBytes(1000);
    const sha256 = new Uint8Array(createHash('sha256').update(data).digest());
    await h.send(offer({ transferId, size: 1000, chunkSize: 100 }));
    const chunk = (offset: number, length = 100, from = 'alice') =>
      h.send(
        { kind: 'chunk', transferId, offset, bytes: new Uint8Array(data.subarray(offset, offset + length)) },
        from,
      );
    await chunk(0);
    await h.send({ kind: 'chunk', transferId, offset: 5000, bytes: new Uint8Array(10) });
    await h.send({ kind: 'chunk', transferId, offset: 950, bytes: new Uint8Array(100) });
    await h.send({ kind: 'chunk', transferId: newId(), offset: 0, bytes: new Uint8Array(10) });
    await h.send({ kind: 'done', transferId: newId(), sha256 });
    await h.send({ kind: 'chunk', transferId, offset: 100, bytes: new Uint8Array(200) });
    await chunk(100, 100, 'mallory');
    await chunk(300);
    await chunk(900);
    await chunk(0);
    await h.bob.handle('alice', new Uint8Array([0x83, 0x10, 0x01]));
    await h.bob.handle('alice', randomBytes(64));
    const counters = h.bob.receiver.counters;
    expect(counters.get('bad-offset')).toBe(2);
    expect(counters.get('unknown-transfer')).toBe(2);
    expect(counters.get('bad-chunk')).toBe(1);
    expect(counters.get('wrong-peer')).toBe(1);
    expect(counters.get('out-of-order')).toBe(1);
    expect(counters.get('beyond-window')).toBe(1);
    expect(counters.get('duplicate')).toBe(1);
    expect(Object.keys(h.bob.counters.snapshot()).every((k) => k.startsWith('decode-'))).toBe(true);
    expect(Object.values(h.bob.counters.snapshot()).reduce((a, b) => a + b, 0)).toBe(2);

    // The real transfer is unharmed by all that: it still completes.
    for (let offset = 100; offset < 1000; offset += 100) await chunk(offset);
    await h.send({ kind: 'done', transferId, sha256 });
    await h.settle();
    expect(h.replies.at(-1)).toMatchObject({ kind: 'transfer-result', outcome: { ok: true } });
    expect(await readdir(h.inbox)).toEqual(['file.bin']);
  });

  test('a DONE repeated after the file arrived is answered true only with the same hash', async () => {
    const h = await hostileSetup();
    const transferId = newId();
    const data = new Uint8Array(randomBytes(1000));
    const sha256 = new Uint8Array(createHash('sha256').update(data).digest());
    await h.send(offer({ transferId, size: 1000, chunkSize: 1000 }));
    await h.send({ kind: 'chunk', transferId, offset: 0, bytes: data });
    await h.send({ kind: 'done', transferId, sha256 });
    await h.send({ kind: 'done', transferId, sha256 });
    await h.send({ kind: 'done', transferId, sha256: new Uint8Array(32).fill(7) });
    await h.settle();
    const results = h.replies.filter((r) => r.kind === 'transfer-result');
    expect(results.map((r) => r.outcome)).toEqual([
      { ok: true },
      { ok: true },
      expect.objectContaining({ ok: false, code: 'hash-mismatch' }),
    ]);
    expect(await readdir(h.inbox)).toEqual(['file.bin']);
  });

  test('DONE before every byte arrived gives incomplete and no file', async () => {
    const h = await hostileSetup();
    const transferId = newId();
    await h.send(offer({ transferId }));
    await h.send({ kind: 'chunk', transferId, offset: 0, bytes: new Uint8Array(100) });
    await h.send({ kind: 'done', transferId, sha256: new Uint8Array(32) });
    await h.settle();
    expect(h.replies.at(-1)).toMatchObject({
      kind: 'transfer-result',
      outcome: { ok: false, code: 'incomplete' },
    });
    expect(await readdir(h.inbox)).toEqual([]);
  });

  test('floods: offers beyond maxActive are refused, chunks beyond the queue bound are dropped', async () => {
    const h = await hostileSetup({ maxActive: 3, window: 2 });
    await Promise.all(Array.from({ length: 20 }, () => h.send(offer())));
    await h.settle();
    expect(h.replies.filter((r) => r.kind === 'accept')).toHaveLength(3);
    expect(h.replies.filter((r) => r.kind === 'reject' && r.code === 'refused')).toHaveLength(17);
    expect(h.bob.receiver.active).toBe(3);

    const accepted = h.replies.find((r) => r.kind === 'accept')!;
    const flood = Array.from({ length: 2000 }, () =>
      h.send({ kind: 'chunk', transferId: accepted.transferId, offset: 0, bytes: new Uint8Array(100) }),
    );
    await Promise.all(flood);
    expect(h.bob.receiver.counters.get('flood')).toBeGreaterThan(1000);
    const files = await readdir(h.inbox);
    expect(files.every((n) => /^\.[0-9a-f]{32}\.(part|state\.json)$/.test(n))).toBe(true);
  });

  test('the same transfer id from another peer cannot take over or cancel it', async () => {
    const h = await hostileSetup();
    const transferId = newId();
    await h.send(offer({ transferId }));
    await h.send(offer({ transferId }), 'mallory');
    await h.send({ kind: 'cancel', transferId, reason: 'mine now' }, 'mallory');
    await h.send({ kind: 'done', transferId, sha256: new Uint8Array(32) }, 'mallory');
    expect(h.bob.receiver.counters.get('wrong-peer')).toBe(3);
    expect(h.bob.receiver.active).toBe(1);
    expect((await readdir(h.inbox)).some((n) => n === `.${transferIdToHex(transferId)}.part`)).toBe(true);
  });

  test('a receiver that answers ACCEPT beyond the size gets a protocol error, not a crash', async () => {
    const root = await tempRoot();
    const pair = new MemoryChannelPair({ a: 'alice', b: 'bob' });
    const alice = new TransferService(pair.a, {
      sender: { stateDir: join(root, 'state') },
      receiver: { inboxDir: join(root, 'alice-inbox') },
    });
    cleanups.push(() => alice.close());
    pair.a.inbound = (from, payload) => alice.handle(from, payload);
    pair.b.inbound = (_from, payload) => {
      const message = decodeTransfer(payload);
      if (!(message instanceof Error) && message.kind === 'offer') {
        const accept = {
          kind: 'accept',
          transferId: message.transferId,
          resumeFrom: message.size + 1,
          window: 4,
        };
        void pair.b.send('alice', encodeTransfer(accept as TransferMessage));
      }
    };
    const path = await makeFile(root, 'x.bin', 1000);
    await expect(alice.sender.sendFile('bob', path)).rejects.toBeInstanceOf(TransferProtocolError);
    // Stray replies for unknown transfers are counted by the sender.
    await alice.handle('bob', encodeTransfer({ kind: 'chunk-ack', transferId: newId(), upTo: 5 }));
    expect(alice.sender.counters.get('unknown-transfer')).toBe(1);
  });

  test('the application can refuse an offer; a receiver cancel reaches the sender', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    let allow = false;
    const { alice, bob } = await pairOfServices(inbox, { accept: (o) => allow && o.from === 'alice' });
    const path = await makeFile(root, 'maybe.bin', 2 * MiB);
    await expect(alice.sender.sendFile('bob', path)).rejects.toMatchObject({ reason: 'refused' });

    allow = true;
    bob.receiver.on('progress', (p) => {
      if (p.bytesReceived >= MiB / 2) void bob.receiver.cancel(p.transferId, 'no thanks');
    });
    await expect(alice.sender.sendFile('bob', path)).rejects.toMatchObject({
      code: 'transfer-cancelled',
      by: 'peer',
      reason: 'no thanks',
    });
    expect(await readdir(inbox)).toEqual([]);
  });

  test('a file that cannot be read, or is no regular file, is refused before the peer hears of it', async () => {
    const root = await tempRoot();
    const inbox = join(root, 'inbox');
    const services = await pairOfServices(inbox);
    const { alice, bob } = services;
    const offers: string[] = [];
    bob.receiver.on('offer', (offer) => offers.push(offer.name));
    for (const path of [join(root, 'missing.bin'), root]) {
      await expect(alice.sender.start('bob', path)).rejects.toMatchObject({ code: 'transfer-source' });
    }
    expect(offers).toEqual([]);
    expect(await readdir(join(services.root, 'state')).catch(() => [])).toEqual([]);
  });

  test('an unsafe local name is refused before anything is sent', async () => {
    const root = await tempRoot();
    const { alice } = await pairOfServices(join(root, 'inbox'));
    const path = await makeFile(root, 'ok.bin', 10);
    await expect(alice.sender.start('bob', path, { name: '../escape' })).rejects.toMatchObject({
      code: 'transfer-source',
    });
  });
});

describeWhenAvailable(
  'limits on a real full disk',
  process.getuid?.() === 0 ? undefined : 'needs root to mount a small tmpfs',
  () => {
    test('on a real 1 MiB tmpfs: refused up front, and disk-full mid-transfer leaves nothing', async () => {
      const mount = await tinyTmpfs('1m');
      const root = await tempRoot();
      const path = await makeFile(root, 'big.bin', 2 * MiB);

      const upFront = join(mount, 'a');
      const first = await pairOfServices(upFront);
      await expect(first.alice.sender.sendFile('bob', path)).rejects.toMatchObject({ reason: 'disk-full' });
      expect(await readdir(upFront)).toEqual([]);

      // statfs lies (as it may when others write meanwhile): the writes themselves hit ENOSPC.
      const midway = join(mount, 'b');
      const second = await pairOfServices(midway, {
        fs: { statfs: async () => ({ bavail: 1e9, bsize: 4096 }) },
      });
      const error = await second.alice.sender.sendFile('bob', path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransferFailedError);
      expect(error).toMatchObject({ reason: 'disk-full' });
      expect(await readdir(midway)).toEqual([]);
      expect(second.bob.receiver.counters.get('failed-disk-full')).toBe(1);
    });
  },
);
