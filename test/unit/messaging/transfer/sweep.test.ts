// The agent's transfer manager clears the inbox of parts abandoned by their senders: at start (and hourly),
// a part and sidecar untouched for 24 h go, a recent one stays for its resume, and so do finished files.
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { Counters } from '../../../../agent/core/counters.js';
import { silentLogger } from '../../../../agent/core/logger.js';
import { ABANDONED_PART_AGE_MS, TransferManager } from '../../../../agent/messaging/transfer/manager.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

test('removes parts and sidecars untouched for 24 h at start, and keeps recent ones and received files', async () => {
  const root = await mkdtemp(join(tmpdir(), 'nearmesh-sweep-'));
  const inboxDir = join(root, 'inbox');
  await mkdir(inboxDir);
  const old = 'a'.repeat(32);
  const recent = 'b'.repeat(32);
  const files = [
    `.${old}.part`,
    `.${old}.state.json`,
    `.${recent}.part`,
    `.${recent}.state.json`,
    'photo.jpg',
  ];
  for (const name of files) await writeFile(join(inboxDir, name), 'x');
  const longAgo = (Date.now() - ABANDONED_PART_AGE_MS - 60_000) / 1000;
  for (const name of [`.${old}.part`, `.${old}.state.json`, 'photo.jpg'])
    await utimes(join(inboxDir, name), longAgo, longAgo);
  const counters = new Counters();
  const manager = new TransferManager({
    dataDir: root,
    inboxDir,
    maxBytes: 1024 * 1024,
    maxBytesPerPeer: 1024 * 1024,
    accept: true,
    send: async () => {},
    mediumOf: () => 'wifi',
    isReachable: () => true,
    routedPayloadBytes: 60 * 1024,
    counters,
    log: silentLogger(),
  });
  cleanups.push(async () => {
    await manager.close();
    await rm(root, { recursive: true, force: true });
  });
  await manager.start();
  expect((await readdir(inboxDir)).sort()).toEqual([`.${recent}.part`, `.${recent}.state.json`, 'photo.jpg']);
  expect(counters.get('transfers.parts_swept')).toBe(2);
});
