// The sender's resume state on its own: one `<id>.json` per transfer in a fixed format (a restart of a newer
// agent resumes what an older one wrote), invalid or foreign files ignored, removal idempotent.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { type PersistedSend, SenderStore } from '../../../../agent/messaging/transfer/sender-store.js';

const ID = '0123456789abcdef0123456789abcdef';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function storeIn(): Promise<{ dir: string; store: SenderStore }> {
  const root = await mkdtemp(join(tmpdir(), 'nearmesh-sender-store-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'transfers');
  return { dir, store: new SenderStore(dir) };
}

const state: PersistedSend = {
  version: 1,
  transferId: ID,
  peer: 'bob',
  path: '/home/pi/photo.jpg',
  name: 'photo.jpg',
  size: 1234,
  mtimeMs: 1700000000000.5,
};

test('save creates the directory and writes `<id>.json` (0600, one JSON line); load reads it back', async () => {
  const { dir, store } = await storeIn();
  await store.save(state);
  const path = join(dir, `${ID}.json`);
  expect(await readFile(path, 'utf8')).toBe(`${JSON.stringify(state)}\n`);
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  expect(await store.load(ID)).toEqual(state);
  expect(await store.list()).toEqual([state]);
});

test('invalid states, foreign files and ids that are not transfer ids are ignored', async () => {
  const { dir, store } = await storeIn();
  await store.save(state);
  const other = 'c'.repeat(32);
  await writeFile(join(dir, `${other}.json`), JSON.stringify({ ...state, transferId: other, name: '../x' }));
  await writeFile(join(dir, 'notes.json'), '{}');
  await writeFile(join(dir, `${'d'.repeat(32)}.json`), 'not json');
  expect(await store.load(other)).toBeUndefined();
  expect(await store.load('../etc/passwd')).toBeUndefined();
  expect(await store.list()).toEqual([state]);
});

test('delete removes the state, and is quiet when there is none', async () => {
  const { dir, store } = await storeIn();
  await store.save(state);
  await store.delete(ID);
  await store.delete(ID);
  expect(await readdir(dir)).toEqual([]);
  expect(await store.list()).toEqual([]);
  expect(await new SenderStore(join(dir, 'missing')).list()).toEqual([]);
});
