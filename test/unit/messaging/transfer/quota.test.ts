// One peer's share of the inbox: the files it pushed that are still there, plus its parts (in progress or
// parked, at their whole size), plus the offered file must fit `maxBytesPerPeer` (and `maxFilesPerPeer`),
// else the OFFER is refused disk-full with a "peer quota" message and counted; other peers are not
// affected, a resume is counted once, a file taken away frees its share, who pushed what survives a
// restart, and concurrent offers cannot slip past together. Names are cleaned or refused on the way in,
// and the sender refuses early what the receiver would refuse.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { TransferChannel } from '../../../../agent/messaging/transfer/channel.js';
import { TransferSourceError } from '../../../../agent/messaging/transfer/errors.js';
import { quotaRefusal } from '../../../../agent/messaging/transfer/inbox-quota.js';
import { TransferReceiver } from '../../../../agent/messaging/transfer/receiver.js';
import type {
  RejectCause,
  TransferReceiverOptions,
} from '../../../../agent/messaging/transfer/receiver-api.js';
import { TransferSender } from '../../../../agent/messaging/transfer/sender.js';
import {
  decodeTransfer,
  type TransferMessage,
  transferIdToHex,
} from '../../../../agent/protocol/transfer.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('the arithmetic', () => {
  const quota = { maxBytesPerPeer: 1000, maxFilesPerPeer: 3, maxInboxFiles: 10 };
  const none = { files: 0, bytes: 0 };

  test('files still there + parts of the peer + the offer must fit; other peers’ parts do not count', () => {
    const parts = [
      { from: 'alice', size: 300 },
      { from: 'carol', size: 900 },
    ];
    expect(quotaRefusal(quota, 'alice', 400, { files: 1, bytes: 300 }, 1, parts)).toBeUndefined();
    expect(quotaRefusal(quota, 'alice', 401, { files: 1, bytes: 300 }, 1, parts)).toMatchObject({
      cause: 'peer-quota',
      message: expect.stringMatching(
        /^peer quota: 600 bytes from you .*\(2 files and parts\).* 401 bytes.* 1000 bytes/,
      ),
    });
    expect(quotaRefusal(quota, 'carol', 100, none, 1, parts)).toBeUndefined();
    expect(quotaRefusal(quota, 'carol', 101, none, 1, parts)).toMatchObject({ cause: 'peer-quota' });
  });

  test('an empty file still counts as a file', () => {
    expect(quotaRefusal(quota, 'alice', 0, { files: 2, bytes: 0 }, 2, [])).toBeUndefined();
    expect(quotaRefusal(quota, 'alice', 0, { files: 2, bytes: 0 }, 2, [{ from: 'alice', size: 0 }])).toEqual({
      cause: 'peer-quota',
      message: expect.stringMatching(/3 files and parts from you/),
    });
  });

  test('the inbox as a whole holds at most maxInboxFiles files and parts', () => {
    const parts = [{ from: 'carol', size: 1 }];
    expect(quotaRefusal(quota, 'alice', 1, none, 8, parts)).toBeUndefined();
    expect(quotaRefusal(quota, 'alice', 1, none, 9, parts)).toMatchObject({ cause: 'inbox-full' });
  });
});

/** A channel that keeps what is sent on it, by peer. */
class RecordingChannel implements TransferChannel {
  readonly maxPayloadBytes = 64 * 1024;
  readonly sent: { to: string; message: TransferMessage }[] = [];

  async send(peer: string, payload: Uint8Array): Promise<void> {
    const message = decodeTransfer(payload);
    if (message instanceof Error) throw message;
    this.sent.push({ to: peer, message });
  }

  /** The last answer to `peer` about `transferId`. */
  last(peer: string, transferId: Uint8Array): TransferMessage | undefined {
    const hex = transferIdToHex(transferId);
    return this.sent
      .filter(({ to, message }) => to === peer && transferIdToHex(message.transferId) === hex)
      .at(-1)?.message;
  }
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nearmesh-quota-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(options: Partial<TransferReceiverOptions> = {}, dir?: string) {
  const root = dir ?? (await tempDir());
  const inbox = join(root, 'inbox');
  const channel = new RecordingChannel();
  const receiver = new TransferReceiver(channel, {
    inboxDir: inbox,
    diskMarginBytes: 0,
    maxBytesPerPeer: 3000,
    sendersFile: join(root, 'inbox-senders.json'),
    ...options,
  });
  cleanups.push(() => receiver.close());
  const refusals: RejectCause[] = [];
  receiver.on('rejected', (event) => refusals.push(event.cause));

  function offerOf(name: string, bytes: Uint8Array, transferId = newId()) {
    return { kind: 'offer', transferId, name, size: bytes.length, chunkSize: 4096 } as const;
  }

  /** Offers a file: what the receiver answered (accept or reject). */
  async function offer(from: string, name: string, bytes: Uint8Array, transferId = newId()) {
    await receiver.handle(from, offerOf(name, bytes, transferId));
    return channel.last(from, transferId);
  }

  /** Pushes a whole file: the receiver's last answer (a RESULT when it went through). */
  async function push(from: string, name: string, size: number) {
    const bytes = new Uint8Array(size).fill(size % 251);
    const transferId = newId();
    const answer = await offer(from, name, bytes, transferId);
    if (answer?.kind !== 'accept') return answer;
    if (size > 0) await receiver.handle(from, { kind: 'chunk', transferId, offset: 0, bytes });
    await receiver.handle(from, { kind: 'done', transferId, sha256: sha256Of(bytes) });
    return channel.last(from, transferId);
  }
  return { root, inbox, channel, receiver, refusals, offer, offerOf, push };
}

function newId(): Uint8Array {
  return new Uint8Array(crypto.getRandomValues(new Uint8Array(16)));
}

function sha256Of(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

const ok = { kind: 'transfer-result', outcome: { ok: true } };
const overQuota = { kind: 'reject', code: 'disk-full', message: expect.stringMatching(/^peer quota/) };

describe('a receiver', () => {
  test('takes a peer’s files up to its quota, then refuses it; another peer still pushes', async () => {
    const s = await setup();
    expect(await s.push('alice', 'one.bin', 1000)).toMatchObject(ok);
    expect(await s.push('alice', 'two.bin', 2000)).toMatchObject(ok);
    expect(await s.push('alice', 'three.bin', 1)).toMatchObject(overQuota);
    expect(s.refusals).toEqual(['peer-quota']);
    expect(s.receiver.counters.get('rejected-peer-quota')).toBe(1);
    expect(await s.push('carol', 'other.bin', 3000)).toMatchObject(ok);
    expect((await readdir(s.inbox)).sort()).toEqual(['one.bin', 'other.bin', 'two.bin']);
  });

  test('a file taken away (or replaced by another) frees its share', async () => {
    const s = await setup();
    expect(await s.push('alice', 'a.bin', 2000)).toMatchObject(ok);
    expect(await s.push('alice', 'b.bin', 1000)).toMatchObject(ok);
    expect(await s.push('alice', 'c.bin', 500)).toMatchObject(overQuota);
    await rename(join(s.inbox, 'a.bin'), join(s.root, 'kept-elsewhere.bin'));
    expect(await s.push('alice', 'c.bin', 500)).toMatchObject(ok);
    // b.bin replaced by a file of the user's own under the same name: no longer alice's.
    await rm(join(s.inbox, 'b.bin'));
    await writeFile(join(s.inbox, 'b.bin'), 'mine');
    expect(await s.push('alice', 'd.bin', 2500)).toMatchObject(ok);
  });

  test('parts in progress count at their whole size; a resume of one is counted once', async () => {
    const s = await setup();
    const big = new Uint8Array(2000).fill(7);
    const bigId = newId();
    expect(await s.offer('alice', 'big.bin', big, bigId)).toMatchObject({ kind: 'accept', resumeFrom: 0 });
    await s.receiver.handle('alice', {
      kind: 'chunk',
      transferId: bigId,
      offset: 0,
      bytes: big.subarray(0, 500),
    });
    // 2000 (the part) + 1500 > 3000, though only 500 bytes of the part are written.
    expect(await s.offer('alice', 'more.bin', new Uint8Array(1500))).toMatchObject(overQuota);
    expect(await s.offer('alice', 'fits.bin', new Uint8Array(1000))).toMatchObject({ kind: 'accept' });
    // The same transfer offered again resumes: its own part is not counted a second time.
    expect(await s.offer('alice', 'big.bin', big, bigId)).toMatchObject({ kind: 'accept', resumeFrom: 500 });
  });

  test('a part parked across a restart still counts, and still resumes', async () => {
    const dir = await tempDir();
    const first = await setup({}, dir);
    const big = new Uint8Array(2500).fill(3);
    const bigId = newId();
    await first.offer('alice', 'big.bin', big, bigId);
    await first.receiver.handle('alice', {
      kind: 'chunk',
      transferId: bigId,
      offset: 0,
      bytes: big.subarray(0, 1000),
    });
    await first.receiver.close();

    const second = await setup({}, dir);
    expect(await second.offer('alice', 'small.bin', new Uint8Array(600))).toMatchObject(overQuota);
    expect(await second.offer('alice', 'big.bin', big, bigId)).toMatchObject({
      kind: 'accept',
      resumeFrom: 1000,
    });
  });

  test('who pushed the files in the inbox survives a restart (the ledger)', async () => {
    const dir = await tempDir();
    const first = await setup({}, dir);
    expect(await first.push('alice', 'kept.bin', 2500)).toMatchObject(ok);
    await first.receiver.close();
    const second = await setup({}, dir);
    expect(await second.push('alice', 'next.bin', 600)).toMatchObject(overQuota);
    expect(await second.push('carol', 'next.bin', 600)).toMatchObject(ok);
  });

  test('concurrent offers from one peer cannot slip past its quota together', async () => {
    const s = await setup();
    // Six at once (fewer than the 8 transfers a receiver takes at a time): 2 × 1400 fit in 3000, no more.
    const ids = Array.from({ length: 6 }, newId);
    await Promise.all(
      ids.map((id, n) => s.receiver.handle('alice', s.offerOf(`c${n}.bin`, new Uint8Array(1400), id))),
    );
    const answers = ids.map((id) => s.channel.last('alice', id)?.kind);
    expect(answers.filter((kind) => kind === 'accept')).toHaveLength(2);
    expect(answers.filter((kind) => kind === 'reject')).toHaveLength(4);
  });

  test('a peer has at most maxFilesPerPeer files and parts; the inbox at most maxInboxFiles', async () => {
    const s = await setup({ maxFilesPerPeer: 2, maxInboxFiles: 3 });
    expect(await s.push('alice', 'a1', 1)).toMatchObject(ok);
    expect(await s.push('alice', 'a2', 0)).toMatchObject(ok);
    expect(await s.push('alice', 'a3', 1)).toMatchObject({
      ...overQuota,
      message: expect.stringMatching(/2 files/),
    });
    expect(await s.push('carol', 'c1', 1)).toMatchObject(ok);
    expect(await s.push('carol', 'c2', 1)).toMatchObject({
      kind: 'reject',
      code: 'disk-full',
      message: expect.stringMatching(/inbox holds 3/),
    });
    expect(s.refusals).toEqual(['peer-quota', 'inbox-full']);
    // Files people take away make room again (their entries go when the bound is reached).
    await rm(join(s.inbox, 'a1'));
    expect(await s.push('carol', 'c2', 1)).toMatchObject(ok);
  });
});

describe('names on the way in', () => {
  test.each([
    ['a right-to-left override', 'invoice\u202efdp.exe'],
    ['an isolate', 'a\u2067b.txt'],
    ['a C1 control', 'a\u009bb'],
    ['only spaces', '   '],
    ['only dots after trimming', ' .. '],
    ['hidden after cleaning', '\u200b.bashrc'],
  ])('%s is refused bad-name before anything is on disk', async (_what, name) => {
    const s = await setup();
    expect(await s.offer('alice', name, new Uint8Array(10))).toMatchObject({
      kind: 'reject',
      code: 'bad-name',
    });
    expect(s.refusals).toEqual(['bad-name']);
    expect(await readdir(s.root)).toEqual([]);
  });

  test('a name a person still recognises lands cleaned; a resume offers the original again', async () => {
    const s = await setup();
    const bytes = new Uint8Array(100).fill(1);
    const transferId = newId();
    const offered = '  pay\u200bslip\u00a0\u00a0 2024.pdf ';
    expect(await s.offer('alice', offered, bytes, transferId)).toMatchObject({ kind: 'accept' });
    expect(await s.offer('alice', offered, bytes, transferId)).toMatchObject({ kind: 'accept' });
    await s.receiver.handle('alice', { kind: 'chunk', transferId, offset: 0, bytes });
    await s.receiver.handle('alice', { kind: 'done', transferId, sha256: sha256Of(bytes) });
    expect(s.channel.last('alice', transferId)).toMatchObject(ok);
    expect(await readdir(s.inbox)).toEqual(['payslip 2024.pdf']);
  });

  test('the sender refuses such a name before sending anything, and offers a cleaned name cleaned', async () => {
    const root = await tempDir();
    const path = join(root, 'file.bin');
    await writeFile(path, 'data');
    const channel = new RecordingChannel();
    const sender = new TransferSender(channel, { stateDir: join(root, 'state') });
    cleanups.push(() => sender.close());
    const refused = sender.start('bob', path, { name: 'invoice\u202efdp.exe' });
    await expect(refused).rejects.toBeInstanceOf(TransferSourceError);
    await expect(refused).rejects.toThrow(/bidirectional override/);
    expect(channel.sent).toEqual([]);
    const started = await sender.start('bob', path, { name: ' pay\u200bslip  2024.pdf' });
    started.done.catch(() => {});
    expect(started.name).toBe('payslip 2024.pdf');
    expect(channel.sent).toEqual([
      { to: 'bob', message: expect.objectContaining({ kind: 'offer', name: 'payslip 2024.pdf' }) },
    ]);
  });
});
