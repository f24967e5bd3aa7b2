// The receiver's inbox on its own: part and sidecar names and format (a resume across versions reads what an
// older agent wrote), a reopened part cut back to what it holds and rehashed, a corrupt sidecar removed with
// its part, finished files named " (n)" when taken, and the sweep sparing transfers in use.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { Inbox, numbered, type Sidecar } from '../../../../agent/messaging/transfer/inbox-files.js';
import { MAX_FILE_NAME_BYTES } from '../../../../agent/protocol/transfer.js';
import { utf8Length } from '../../../../agent/protocol/utf8.js';

const ID = '0123456789abcdef0123456789abcdef';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function inboxIn(): Promise<{ dir: string; inbox: Inbox }> {
  const dir = await mkdtemp(join(tmpdir(), 'nearmesh-inbox-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { dir, inbox: new Inbox({ dir, fileMode: 0o644 }) };
}

const sidecar: Sidecar = {
  transferId: ID,
  from: 'alice',
  name: 'photo.jpg',
  size: 10,
  offset: 4,
};

test('a sidecar is `.<id>.state.json`, mode 0600, one JSON line in a fixed order, and reads back', async () => {
  const { dir, inbox } = await inboxIn();
  await inbox.writeSidecar(sidecar);
  const path = join(dir, `.${ID}.state.json`);
  expect(await readFile(path, 'utf8')).toBe(
    `{"version":1,"transferId":"${ID}","from":"alice","name":"photo.jpg","size":10,"offset":4}\n`,
  );
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  expect(await inbox.readSidecar(ID)).toMatchObject(sidecar);
  expect(await inbox.readSidecar('f'.repeat(32))).toBe('none');
});

test('a corrupt sidecar is reported and removed with its part', async () => {
  const { dir, inbox } = await inboxIn();
  await writeFile(join(dir, `.${ID}.part`), 'held');
  await writeFile(join(dir, `.${ID}.state.json`), JSON.stringify({ version: 1, ...sidecar, offset: 11 }));
  expect(await inbox.readSidecar(ID)).toBe('corrupt');
  expect(await readdir(dir)).toEqual([]);
});

test('a new part is empty and 0600; a reopened one is cut to what it holds and fed to the hash', async () => {
  const { dir, inbox } = await inboxIn();
  const fresh = await inbox.openPart(ID, 0, createHash('sha256'));
  expect(fresh.held).toBe(0);
  await fresh.part.write(new TextEncoder().encode('hello world'), 0);
  await fresh.part.close();
  const path = join(dir, `.${ID}.part`);
  expect((await stat(path)).mode & 0o777).toBe(0o600);

  const hash = createHash('sha256');
  const reopened = await inbox.openPart(ID, 5, hash);
  expect(reopened.held).toBe(5);
  await reopened.part.close();
  expect(await readFile(path, 'utf8')).toBe('hello');
  expect(hash.digest('hex')).toBe(createHash('sha256').update('hello').digest('hex'));

  // The sidecar may promise more than the part holds (a crash before the data reached the disk).
  const short = await inbox.openPart(ID, 100, createHash('sha256'));
  expect(short.held).toBe(5);
  await short.part.close();
});

test('a sealed part is placed under its name, then " (1)", " (2)" when taken, with the finished mode', async () => {
  const { dir, inbox } = await inboxIn();
  const paths: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { part } = await inbox.openPart(ID, 0, createHash('sha256'));
    await part.write(new TextEncoder().encode(`copy ${i}`), 0);
    await part.seal();
    paths.push(await inbox.place(ID, 'notes.txt'));
  }
  expect(paths).toEqual(['notes.txt', 'notes (1).txt', 'notes (2).txt'].map((name) => join(dir, name)));
  expect((await readdir(dir)).sort()).toEqual(['notes (1).txt', 'notes (2).txt', 'notes.txt']);
  expect(await readFile(join(dir, 'notes (2).txt'), 'utf8')).toBe('copy 2');
  expect((await stat(join(dir, 'notes.txt'))).mode & 0o777).toBe(0o644);
});

test('numbered names keep the extension and stay within the longest file name', () => {
  expect(numbered('photo.jpg', 2)).toBe('photo (2).jpg');
  expect(numbered('.profile', 1)).toBe('.profile (1)');
  const long = numbered(`${'é'.repeat(127)}.txt`, 12);
  expect(long.endsWith(' (12).txt')).toBe(true);
  expect(utf8Length(long)).toBeLessThanOrEqual(MAX_FILE_NAME_BYTES);
});

test('the sweep removes old parts and sidecars, not those in use, recent ones or other files', async () => {
  const { dir, inbox } = await inboxIn();
  const inUse = 'c'.repeat(32);
  const names = [`.${ID}.part`, `.${ID}.state.json`, `.${inUse}.part`, 'old.txt'];
  for (const name of names) await writeFile(join(dir, name), 'x');
  const now = Date.now();
  const longAgo = (now - 10_000) / 1000;
  for (const name of names) await utimes(join(dir, name), longAgo, longAgo);
  await writeFile(join(dir, `.${'d'.repeat(32)}.part`), 'recent');
  expect(await inbox.sweep(5_000, now, (id) => id === inUse)).toBe(2);
  expect((await readdir(dir)).sort()).toEqual([`.${inUse}.part`, `.${'d'.repeat(32)}.part`, 'old.txt']);
});
