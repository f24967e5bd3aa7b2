// Bulk transfer end to end over an in-memory channel pair (alice sends, bob receives): a 5 MiB file arrives
// intact with monotonic progress; a cut link, a receiver restart and a sender restart each resume from what
// the receiver holds (not from 0) and the hash at DONE still covers the whole file; a file changed while it
// is sent is cancelled, not delivered; a silent peer times out resumably; name clashes get " (1)".
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MemoryChannelPair } from '../../../../agent/messaging/transfer/channel.js';
import {
  TransferFailedError,
  TransferLinkError,
  TransferSourceError,
  TransferTimeoutError,
} from '../../../../agent/messaging/transfer/errors.js';
import type {
  ReceivedFile,
  TransferReceiverOptions,
} from '../../../../agent/messaging/transfer/receiver-api.js';
import type { SendProgress, TransferSenderOptions } from '../../../../agent/messaging/transfer/sender.js';
import { TransferService } from '../../../../agent/messaging/transfer/service.js';
import { decodeItem } from '../../../../agent/protocol/index.js';
import { decodeTransfer, encodeTransfer } from '../../../../agent/protocol/transfer.js';

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  root: string;
  pair: MemoryChannelPair;
  alice: TransferService;
  bob: TransferService;
  inbox: string;
  aliceState: string;
  /** CHUNK data bytes delivered to bob. */
  chunkBytes: () => number;
  newAlice: (sender?: Partial<TransferSenderOptions>) => TransferService;
  newBob: (receiver?: Partial<TransferReceiverOptions>) => TransferService;
}

async function setup(
  options: { sender?: Partial<TransferSenderOptions>; receiver?: Partial<TransferReceiverOptions> } = {},
): Promise<Setup> {
  const root = await mkdtemp(join(tmpdir(), 'nearmesh-transfer-'));
  let chunkBytes = 0;
  const pair = new MemoryChannelPair({
    a: 'alice',
    b: 'bob',
    tap: (_from, to, payload) => {
      const message = decodeTransfer(payload);
      if (to === 'bob' && !(message instanceof Error) && message.kind === 'chunk')
        chunkBytes += message.bytes.length;
      return payload;
    },
  });
  const inbox = join(root, 'inbox');
  const aliceState = join(root, 'alice-state');
  const services: TransferService[] = [];
  const newAlice = (sender: Partial<TransferSenderOptions> = {}) => {
    const service = new TransferService(pair.a, {
      // Every progress event: the cuts below are placed by them.
      sender: { stateDir: aliceState, progressIntervalMs: 0, ...options.sender, ...sender },
      receiver: { inboxDir: join(root, 'alice-inbox') },
    });
    pair.a.inbound = (from, payload) => service.handle(from, payload);
    services.push(service);
    return service;
  };
  const newBob = (receiver: Partial<TransferReceiverOptions> = {}) => {
    const service = new TransferService(pair.b, {
      sender: { stateDir: join(root, 'bob-state') },
      receiver: { inboxDir: inbox, diskMarginBytes: 0, ...options.receiver, ...receiver },
    });
    pair.b.inbound = (from, payload) => service.handle(from, payload);
    services.push(service);
    return service;
  };
  const alice = newAlice();
  const bob = newBob();
  cleanups.push(async () => {
    for (const service of services) await service.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, pair, alice, bob, inbox, aliceState, chunkBytes: () => chunkBytes, newAlice, newBob };
}

async function makeFile(root: string, name: string, size: number): Promise<{ path: string; sha256: string }> {
  const dir = join(root, 'outbox');
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const data = randomBytes(size);
  await writeFile(path, data);
  return { path, sha256: createHash('sha256').update(data).digest('hex') };
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

function nextReceived(service: TransferService): Promise<ReceivedFile> {
  return new Promise((resolve) => service.receiver.once('received', resolve));
}

/** Cuts the link once alice has `fraction` of the file acknowledged. */
function cutAt(s: Setup, fraction: number): void {
  const listener = (progress: SendProgress) => {
    if (progress.bytesAcked >= progress.total * fraction) {
      s.alice.sender.off('progress', listener);
      s.pair.cut();
    }
  };
  s.alice.sender.on('progress', listener);
}

describe('bulk transfer', () => {
  test('a 5 MiB file arrives with the right hash, progress is monotonic, no temporary file is left', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'big.bin', 5 * MiB);
    const sent: SendProgress[] = [];
    const got: number[] = [];
    s.alice.sender.on('progress', (p) => sent.push(p));
    s.bob.receiver.on('progress', (p) => got.push(p.bytesReceived));
    const received = nextReceived(s.bob);

    const report = await s.alice.sender.sendFile('bob', file.path);
    const arrived = await received;

    expect(report).toMatchObject({
      peer: 'bob',
      name: 'big.bin',
      size: 5 * MiB,
      sha256: file.sha256,
      resumedFrom: 0,
    });
    expect(arrived).toMatchObject({
      from: 'alice',
      name: 'big.bin',
      size: 5 * MiB,
      path: join(s.inbox, 'big.bin'),
    });
    expect(await sha256Of(arrived.path)).toBe(file.sha256);
    expect(await readdir(s.inbox)).toEqual(['big.bin']);
    expect(await readdir(s.aliceState)).toEqual([]);

    for (let i = 1; i < sent.length; i++) {
      const [before, after] = [sent[i - 1]!, sent[i]!];
      expect(after.bytesSent).toBeGreaterThanOrEqual(before.bytesSent);
      expect(after.bytesAcked).toBeGreaterThanOrEqual(before.bytesAcked);
      expect(after.bytesAcked).toBeLessThanOrEqual(after.bytesSent);
      expect(after.total).toBe(5 * MiB);
    }
    expect(sent.at(-1)?.bytesAcked).toBe(5 * MiB);
    expect(sent.some((p) => p.rateBps > 0)).toBe(true);
    for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThan(got[i - 1]!);
    expect(got.at(-1)).toBe(5 * MiB);
    expect(s.chunkBytes()).toBe(5 * MiB);
  });

  test('a cut in the middle, then resume, continues from the held offset', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'cut.bin', 3 * MiB);
    cutAt(s, 0.5);
    const first = await s.alice.sender.start('bob', file.path);
    const failure = await first.done.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransferLinkError);
    expect((failure as TransferLinkError).resumable).toBe(true);
    expect(await readdir(s.inbox)).not.toContain('cut.bin');
    // What `nearmesh transfers` lists meanwhile: the push waiting, the part half written at bob.
    const [out] = s.alice.sender.inProgress();
    expect(out).toMatchObject({
      transferId: first.transferId,
      peer: 'bob',
      name: 'cut.bin',
      size: 3 * MiB,
      phase: 'idle',
    });
    expect(out?.bytesAcked).toBeGreaterThanOrEqual(1.5 * MiB);
    const [incoming] = s.bob.receiver.inProgress();
    expect(incoming).toMatchObject({
      transferId: first.transferId,
      from: 'alice',
      name: 'cut.bin',
      size: 3 * MiB,
    });
    expect(incoming?.bytesReceived).toBeGreaterThanOrEqual(out?.bytesAcked ?? Number.POSITIVE_INFINITY);

    s.pair.restore();
    const accepted = new Promise<number>((resolve) =>
      s.alice.sender.once('accepted', (e) => resolve(e.resumeFrom)),
    );
    const received = nextReceived(s.bob);
    const again = await s.alice.sender.resume(first.transferId);
    expect(again.transferId).toBe(first.transferId);
    const resumeFrom = await accepted;
    const report = await again.done;

    expect(resumeFrom).toBeGreaterThanOrEqual(1.5 * MiB);
    expect(report.resumedFrom).toBe(resumeFrom);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
    // Not sent again from 0: at most the window in flight at the cut went twice.
    expect(s.chunkBytes()).toBeLessThan(3 * MiB + MiB);
    expect(await readdir(s.inbox)).toEqual(['cut.bin']);
    expect(s.alice.sender.inProgress()).toEqual([]);
    expect(s.bob.receiver.inProgress()).toEqual([]);
  });

  test('a receiver restart (a new receiver on the same inbox) resumes from its sidecar', async () => {
    const s = await setup({ receiver: { persistEveryBytes: 256 * 1024 } });
    const file = await makeFile(s.root, 'restart.bin', 4 * MiB);
    cutAt(s, 0.5);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toBeInstanceOf(TransferLinkError);
    await s.bob.close();
    const names = await readdir(s.inbox);
    expect(names.filter((n) => n.endsWith('.part'))).toHaveLength(1);
    expect(names.filter((n) => n.endsWith('.state.json'))).toHaveLength(1);

    const bob2 = s.newBob({ persistEveryBytes: 256 * 1024 });
    s.pair.restore();
    const accepted = new Promise<number>((resolve) =>
      s.alice.sender.once('accepted', (e) => resolve(e.resumeFrom)),
    );
    const received = nextReceived(bob2);
    const report = await (await s.alice.sender.resume(first.transferId)).done;

    expect(await accepted).toBeGreaterThanOrEqual(2 * MiB);
    expect(report.resumedFrom).toBeGreaterThanOrEqual(2 * MiB);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
    expect(await readdir(s.inbox)).toEqual(['restart.bin']);
  });

  test('after a crash the part may hold more than the sidecar says: it is cut back and rehashed', async () => {
    const s = await setup({ receiver: { persistEveryBytes: 512 * 1024 } });
    const file = await makeFile(s.root, 'crash.bin', 3 * MiB);
    cutAt(s, 0.6);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toBeInstanceOf(TransferLinkError);
    await s.bob.close();
    // Pretend the agent died right after the sidecar said 1 MiB, with more already in the part.
    const sidecarName = (await readdir(s.inbox)).find((n) => n.endsWith('.state.json'))!;
    const sidecarPath = join(s.inbox, sidecarName);
    const sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as { offset: number };
    expect(sidecar.offset).toBeGreaterThan(MiB);
    await writeFile(sidecarPath, JSON.stringify({ ...sidecar, offset: MiB }));

    const bob2 = s.newBob();
    s.pair.restore();
    const accepted = new Promise<number>((resolve) =>
      s.alice.sender.once('accepted', (e) => resolve(e.resumeFrom)),
    );
    const received = nextReceived(bob2);
    await (await s.alice.sender.resume(first.transferId)).done;
    expect(await accepted).toBe(MiB);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
  });

  test('a receiver parks a silent transfer (memory freed, part kept) and a later resume picks it up', async () => {
    const s = await setup({ receiver: { idleTimeoutMs: 100 } });
    const file = await makeFile(s.root, 'parked.bin', 2 * MiB);
    cutAt(s, 0.5);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toBeInstanceOf(TransferLinkError);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(s.bob.receiver.active).toBe(0);
    expect(s.bob.receiver.counters.get('parked')).toBe(1);

    s.pair.restore();
    const received = nextReceived(s.bob);
    const report = await (await s.alice.sender.resume(first.transferId)).done;
    expect(report.resumedFrom).toBeGreaterThanOrEqual(MiB);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
  });

  test('sweep removes parts abandoned long ago and keeps recent ones', async () => {
    const s = await setup();
    await mkdir(s.inbox, { recursive: true });
    await writeFile(join(s.inbox, `.${'a'.repeat(32)}.part`), 'old');
    await writeFile(join(s.inbox, `.${'a'.repeat(32)}.state.json`), '{}');
    await writeFile(join(s.inbox, 'keep.txt'), 'a finished file');
    expect(await s.bob.receiver.sweep(60_000)).toBe(0);
    expect(await s.bob.receiver.sweep(60_000, Date.now() + 120_000)).toBe(2);
    expect(await readdir(s.inbox)).toEqual(['keep.txt']);
  });

  test('a sender restart resumes from its state file: the held prefix is hashed again, the file verifies', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'sender.bin', 2 * MiB);
    cutAt(s, 0.5);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toBeInstanceOf(TransferLinkError);
    await s.alice.close();

    const alice2 = s.newAlice();
    const pending = await alice2.sender.pending();
    expect(pending).toEqual([
      expect.objectContaining({ transferId: first.transferId, peer: 'bob', path: file.path, size: 2 * MiB }),
    ]);
    s.pair.restore();
    const received = nextReceived(s.bob);
    const report = await (await alice2.sender.resume(first.transferId)).done;
    expect(report.resumedFrom).toBeGreaterThan(0);
    // Only the rest went again, yet the hash at DONE (checked by bob) is the whole file's.
    expect(s.chunkBytes()).toBeLessThan(3 * MiB);
    expect(report.sha256).toBe(file.sha256);
    expect((await received).sha256).toBe(file.sha256);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
    expect(await alice2.sender.pending()).toEqual([]);
  });

  test('the hash comes with DONE, not the OFFER; a DONE whose hash is not the bytes written leaves no file', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'tampered.bin', MiB);
    const seen: string[] = [];
    s.pair.tap = (_from, _to, payload) => {
      const message = decodeTransfer(payload);
      if (message instanceof Error) return payload;
      seen.push(message.kind);
      // On the wire the OFFER is [kind, id, name, size, chunkSize]: no 32-byte hash field.
      if (message.kind === 'offer') {
        const wire = decodeItem(payload);
        expect(wire.ok && Array.isArray(wire.value) ? wire.value.length : undefined).toBe(5);
      }
      if (message.kind !== 'done') return payload;
      expect(Buffer.from(message.sha256).toString('hex')).toBe(file.sha256);
      return encodeTransfer({ ...message, sha256: new Uint8Array(32).fill(1) });
    };
    const failure = await s.alice.sender.sendFile('bob', file.path).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransferFailedError);
    expect(failure).toMatchObject({ reason: 'hash-mismatch', resumable: false });
    expect(seen).toContain('done');
    expect(await readdir(s.inbox)).toEqual([]);
  });

  test('a file changed while it is being sent is cancelled, not delivered', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'growing.log', 2 * MiB);
    const bobFailed = new Promise<string>((resolve) => s.bob.receiver.once('failed', (f) => resolve(f.code)));
    const listener = (progress: SendProgress) => {
      if (progress.bytesAcked < MiB) return;
      s.alice.sender.off('progress', listener);
      // Rewritten in place, same size, in the part not read yet: what went would hash true yet be a mix.
      const fd = openSync(file.path, 'r+');
      writeSync(fd, randomBytes(1000), 0, 1000, 2 * MiB - 1000);
      closeSync(fd);
    };
    s.alice.sender.on('progress', listener);
    const failure = await s.alice.sender.sendFile('bob', file.path).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransferSourceError);
    expect(failure).toMatchObject({ resumable: false, message: /changed while it was being sent/ });
    expect(await bobFailed).toBe('cancelled');
    expect(await readdir(s.inbox)).toEqual([]);
    expect(await readdir(s.aliceState)).toEqual([]);
  });

  test('a chunk handed to the channel is not overwritten before its send settles', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'reused.bin', 3 * MiB);
    const send = s.pair.a.send.bind(s.pair.a);
    let checked = 0;
    let sends = 0;
    s.pair.a.send = async (peer, payload) => {
      sends += 1;
      const copy = Buffer.from(payload);
      await send(peer, payload);
      if (copy.equals(payload)) checked += 1;
    };
    await s.alice.sender.sendFile('bob', file.path);
    // Every message the channel took (50 or more chunks) was as it was sent until its send settled.
    expect(sends).toBeGreaterThan(50);
    expect(checked).toBe(sends);
    expect(await sha256Of(join(s.inbox, 'reused.bin'))).toBe(file.sha256);
  });

  test('a source file changed before a resume is refused, not sent half old half new', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'changing.bin', 2 * MiB);
    cutAt(s, 0.5);
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toBeInstanceOf(TransferLinkError);
    await writeFile(file.path, randomBytes(2 * MiB + 1));
    s.pair.restore();
    await expect(s.alice.sender.resume(first.transferId)).rejects.toMatchObject({ code: 'transfer-source' });
  });

  test('a silent peer gives a resumable timeout; resume then finishes', async () => {
    const s = await setup({ sender: { idleTimeoutMs: 150 } });
    const file = await makeFile(s.root, 'quiet.bin', 256 * 1024);
    s.pair.tap = (from, _to, payload) => (from === 'bob' ? null : payload);
    const first = await s.alice.sender.start('bob', file.path);
    const failure = await first.done.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TransferTimeoutError);
    expect(failure).toMatchObject({ waitingFor: 'accept', resumable: true });

    s.pair.tap = undefined;
    const received = nextReceived(s.bob);
    await (await s.alice.sender.resume(first.transferId)).done;
    expect(await sha256Of((await received).path)).toBe(file.sha256);
  });

  test('a peer out of reach ends the attempt at once, resumably, not at the idle timeout', async () => {
    const s = await setup({ sender: { idleTimeoutMs: 60_000 } });
    const file = await makeFile(s.root, 'gone.bin', 3 * MiB);
    // Bob goes silent after the first CHUNK-ACK, as a receiver that restarted would.
    let acks = 0;
    s.pair.tap = (from, _to, payload) => {
      const message = decodeTransfer(payload);
      if (from === 'bob' && !(message instanceof Error) && message.kind === 'chunk-ack') acks += 1;
      return from === 'bob' && acks > 1 ? null : payload;
    };
    const first = await s.alice.sender.start('bob', file.path);
    const failure = first.done.catch((error: unknown) => error);
    while (acks < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    s.alice.sender.interrupt('carol');
    s.alice.sender.interrupt('bob');
    expect(await failure).toBeInstanceOf(TransferLinkError);
    expect(await failure).toMatchObject({ resumable: true, message: /link to bob is down/ });

    s.pair.tap = undefined;
    const received = nextReceived(s.bob);
    const report = await (await s.alice.sender.resume(first.transferId)).done;
    expect(report.resumedFrom).toBeGreaterThan(0);
    expect(await sha256Of((await received).path)).toBe(file.sha256);
  });

  test('a name already taken gets " (1)", and an empty file arrives too', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'same.txt', 10_000);
    await s.alice.sender.sendFile('bob', file.path);
    const second = nextReceived(s.bob);
    await s.alice.sender.sendFile('bob', file.path);
    expect((await second).path).toBe(join(s.inbox, 'same (1).txt'));
    const empty = await makeFile(s.root, 'empty', 0);
    await s.alice.sender.sendFile('bob', empty.path);
    expect((await readdir(s.inbox)).sort()).toEqual(['empty', 'same (1).txt', 'same.txt']);
    expect(await sha256Of(join(s.inbox, 'same (1).txt'))).toBe(file.sha256);
  });

  test('a repeated OFFER after the RESULT was lost is answered from memory, not received twice', async () => {
    const s = await setup({ sender: { idleTimeoutMs: 200 } });
    const file = await makeFile(s.root, 'once.bin', 100_000);
    s.pair.tap = (_from, _to, payload) => {
      const message = decodeTransfer(payload);
      return !(message instanceof Error) && message.kind === 'transfer-result' ? null : payload;
    };
    const first = await s.alice.sender.start('bob', file.path);
    await expect(first.done).rejects.toMatchObject({ waitingFor: 'result' });
    s.pair.tap = undefined;
    await (await s.alice.sender.resume(first.transferId)).done;
    expect(await readdir(s.inbox)).toEqual(['once.bin']);
  });

  test('cancel by the sender removes the part at the receiver', async () => {
    const s = await setup();
    const file = await makeFile(s.root, 'cancel.bin', 2 * MiB);
    const cancelled = new Promise<string>((resolve) => s.bob.receiver.once('failed', (f) => resolve(f.code)));
    const started = await s.alice.sender.start('bob', file.path);
    const listener = (p: SendProgress) => {
      if (p.bytesAcked > MiB / 2) {
        s.alice.sender.off('progress', listener);
        void s.alice.sender.cancel(started.transferId, 'user changed their mind');
      }
    };
    s.alice.sender.on('progress', listener);
    await expect(started.done).rejects.toMatchObject({ code: 'transfer-cancelled', by: 'local' });
    expect(await cancelled).toBe('cancelled');
    expect(await readdir(s.inbox)).toEqual([]);
    expect(await readdir(s.aliceState)).toEqual([]);
  });
});
