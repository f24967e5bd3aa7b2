// The power-cut file system itself (scripts/powercut): what a cut drops and what it keeps, as the audit of
// the agent's write paths relies on it. Unsynced data and an O_TRUNC go; fsynced data stays; a rename,
// create or unlink without an fsync of its directory is undone, one with it stays; held data is what readers
// see until the cut; a torn cut keeps a prefix of the writes, in order; a clean unmount writes everything.
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PowercutMount, whyPowercutUnavailable } from '../support/powercut.js';
import { describeWhenAvailable } from '../support/requirements.js';

/** Writes `text` to `path` and fsyncs the file (not its directory). */
function writeSynced(path: string, text: string, flags = 'w'): void {
  const fd = openSync(path, flags);
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
}

function syncDirectory(path: string): void {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

describeWhenAvailable('the power-cut file system', whyPowercutUnavailable(), () => {
  let mount: PowercutMount;
  beforeEach(async () => {
    mount = new PowercutMount();
    await mount.mount();
  }, 90_000);
  afterEach(() => mount.unmount());
  const at = (name: string) => join(mount.path, name);

  it('drops a write that was not fsynced and keeps one that was', () => {
    writeSynced(at('kept'), 'durable');
    syncDirectory(mount.path);
    writeFileSync(at('kept'), 'overwritten, never synced'); // O_TRUNC too
    writeFileSync(at('lost'), 'never synced');
    syncDirectory(mount.path); // the entry of `lost` is durable, its data is not
    expect(readFileSync(at('kept'), 'utf8')).toBe('overwritten, never synced');
    expect(mount.cut()).toMatch(/^ok kept 0 dropped \d+ undone 0$/);
    expect(readFileSync(at('kept'), 'utf8')).toBe('durable');
    expect(readFileSync(at('lost'), 'utf8')).toBe('');
  });

  it('undoes a rename, a create and an unlink whose directory was not fsynced', () => {
    writeSynced(at('a'), 'one');
    writeSynced(at('gone'), 'two');
    syncDirectory(mount.path);
    renameSync(at('a'), at('b'));
    unlinkSync(at('gone'));
    writeSynced(at('new'), 'fsynced, but its directory never was');
    expect(readdirSync(mount.path).sort()).toEqual(['b', 'new']);
    mount.cut();
    expect(readdirSync(mount.path).sort()).toEqual(['a', 'gone']);
    expect(readFileSync(at('a'), 'utf8')).toBe('one');
    expect(readFileSync(at('gone'), 'utf8')).toBe('two');
  });

  it('keeps the atomic-file pattern: write temp, fsync, rename, fsync the directory', () => {
    writeSynced(at('config'), 'old');
    syncDirectory(mount.path);
    writeSynced(at('config.tmp'), 'new');
    renameSync(at('config.tmp'), at('config'));
    syncDirectory(mount.path);
    mount.cut();
    expect(readdirSync(mount.path)).toEqual(['config']);
    expect(readFileSync(at('config'), 'utf8')).toBe('new');
  });

  it('restores a file a rename replaced when the rename is undone', () => {
    writeSynced(at('config'), 'old');
    writeSynced(at('config.tmp'), 'new');
    syncDirectory(mount.path);
    renameSync(at('config.tmp'), at('config'));
    mount.cut();
    expect(readFileSync(at('config'), 'utf8')).toBe('old');
    expect(readFileSync(at('config.tmp'), 'utf8')).toBe('new');
  });

  it('keeps a prefix of the unsynced writes, in order, on a torn cut', () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 12; seed++) {
      writeSynced(at('log'), '');
      syncDirectory(mount.path);
      const fd = openSync(at('log'), 'a');
      for (const part of ['a', 'b', 'c', 'd']) writeSync(fd, part);
      closeSync(fd);
      mount.cut(seed);
      const text = readFileSync(at('log'), 'utf8');
      expect(['', 'a', 'ab', 'abc', 'abcd']).toContain(text);
      outcomes.add(text);
    }
    expect(outcomes.size).toBeGreaterThan(1);
  });

  it('writes everything on a clean unmount', async () => {
    writeFileSync(at('kept'), 'never fsynced');
    const backing = join(mount.backing, 'kept');
    expect(readFileSync(backing, 'utf8')).toBe('');
    await mount.unmount({ keepFiles: true });
    expect(readFileSync(backing, 'utf8')).toBe('never fsynced');
  });
});
