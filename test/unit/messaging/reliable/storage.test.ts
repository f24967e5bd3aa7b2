// Storage failures of the durable queue become typed QueueStorageErrors, never crashes or silent drops:
// a read-only file system (a bind mount remounted read-only, as the kernel does to a failing SD card) and
// a really full disk (a small tmpfs). Both need a private mount namespace (root, as in CI: `unshare -m`):
// without one they skip loudly (and fail under CI=true). A read-only directory by permissions is checked
// everywhere: as root, in a child process that gave up root (setpriv), since root ignores permissions.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableQueue } from '../../../../agent/messaging/reliable/durable-queue.js';
import { describeWhenAvailable } from '../../../support/requirements.js';

const DIST_MODULE = pathToFileURL(
  resolve(import.meta.dirname, '../../../../dist/agent/messaging/reliable/durable-queue.js'),
);
const isRoot = process.getuid?.() === 0;

const directories: string[] = [];
afterAll(() => {
  for (const dir of directories) {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-queue-storage-'));
  directories.push(dir);
  return dir;
}

/** Whether `unshare -m` with a bind mount works here (root in a system that allows mount namespaces). */
const canUnshare = (() => {
  if (!isRoot) return false;
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-unshare-'));
  try {
    const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'mount', '--bind', dir, dir]);
    return probe.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

const CHILD_PRELUDE = `
import { execFileSync } from 'node:child_process';
import { DurableQueue } from ${JSON.stringify(DIST_MODULE.href)};
const dir = process.argv[2];
const results = {};
const describe = (error) => ({ name: error.name, code: error.code, problem: error.problem, causeCode: error.causeCode, message: error.message });
async function attempt(name, body) {
  try { results[name] = { ok: await body() }; } catch (error) { results[name] = describe(error); }
}
`;

interface Outcome {
  ok?: unknown;
  name?: string;
  code?: string;
  problem?: string;
  causeCode?: string;
  message?: string;
}

/** Runs `body` (module code using CHILD_PRELUDE) as root in a private mount namespace after `mountCommand`. */
function runInNamespace(dir: string, mountCommand: string, body: string): Record<string, Outcome> {
  const script = join(tempDir(), 'child.mjs');
  writeFileSync(script, `${CHILD_PRELUDE}\n${body}\nconsole.log(JSON.stringify(results));\n`);
  const result = spawnSync(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `${mountCommand} && exec "$0" "$@"`,
      process.execPath,
      script,
      dir,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as Record<string, Outcome>;
}

describeWhenAvailable(
  'durable queue: storage failures in a mount namespace',
  canUnshare ? undefined : 'needs root and a private mount namespace (unshare -m)',
  () => {
    it('a read-only file system: open fails with QueueStorageError, not a crash', async () => {
      const dir = tempDir();
      const queue = await DurableQueue.open(join(dir, 'existing.db'));
      queue.enqueue('a', new Uint8Array([1]));
      queue.close();
      // A queue left with its -wal and -shm by a kill -9.
      const crashed = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { DurableQueue } from ${JSON.stringify(DIST_MODULE.href)};
         const queue = await DurableQueue.open(${JSON.stringify(join(dir, 'crashed.db'))});
         queue.enqueue('a', new Uint8Array([1]));
         process.kill(process.pid, 'SIGKILL');`,
        ],
        { encoding: 'utf8' },
      );
      expect(crashed.signal).toBe('SIGKILL');
      // The kernel makes a failing SD card read-only the same way: every write gets EROFS. (A remount with
      // the queue open for writing is refused as busy, so the queue is opened after it.)
      const results = runInNamespace(
        dir,
        `mount --bind ${dir} ${dir} && mount -o remount,bind,ro ${dir}`,
        `
      await attempt('openExisting', async () => (await DurableQueue.open(dir + '/existing.db')).pending('a').length);
      await attempt('openCrashed', async () => (await DurableQueue.open(dir + '/crashed.db')).pending('a').length);
      await attempt('openNew', async () => (await DurableQueue.open(dir + '/new.db')).epoch);
      await attempt('openInNewDirectory', async () => (await DurableQueue.open(dir + '/sub/new.db')).epoch);
      `,
      );
      console.log(`[messaging] read-only mount outcomes: ${JSON.stringify(results, null, 1)}`);
      for (const name of ['openExisting', 'openCrashed', 'openNew', 'openInNewDirectory']) {
        expect(results[name], name).toMatchObject({
          name: 'QueueStorageError',
          code: 'queue-storage',
          problem: 'read-only',
        });
        expect(results[name]?.message).toContain('read-only');
      }
      // Nothing was lost: writable again, both queues still hold their message.
      for (const name of ['existing.db', 'crashed.db']) {
        const reopened = await DurableQueue.open(join(dir, name));
        expect(reopened.pending('a').map((m) => m.seq)).toEqual([1]);
        reopened.close();
      }
    });

    it('a full disk (small tmpfs): enqueue fails with QueueStorageError, nothing queued is lost', () => {
      const dir = join(tempDir(), 'mnt');
      mkdirSync(dir);
      const results = runInNamespace(
        dir,
        `mount -t tmpfs -o size=512k,mode=0700 tmpfs ${dir}`,
        `
      const queue = await DurableQueue.open(dir + '/queue.db');
      let queued = 0;
      await attempt('fill', () => { for (;;) { queue.enqueue('a', new Uint8Array(8192)); queued++; } });
      results.queued = { ok: queued };
      await attempt('pendingAfterFull', () => queue.pending('a', { limit: 10000 }).length);
      await attempt('statsAfterFull', () => queue.stats('a'));
      await attempt('closeAfterFull', () => queue.close());
      await attempt('reopen', async () => { const q = await DurableQueue.open(dir + '/queue.db'); const n = q.pending('a', { limit: 10000 }).length; q.close(); return n; });
      `,
      );
      console.log(`[messaging] full tmpfs outcomes: ${JSON.stringify(results, null, 1)}`);
      expect(results.fill).toMatchObject({
        name: 'QueueStorageError',
        code: 'queue-storage',
        problem: 'full',
      });
      expect(results.fill?.message).toContain('no space left');
      const queued = results.queued?.ok as number;
      expect(queued).toBeGreaterThan(10);
      expect(results.pendingAfterFull).toEqual({ ok: queued });
      expect(results.statsAfterFull).toEqual({
        ok: { messages: queued, bytes: queued * 8192, lastSeq: queued },
      });
      expect(results.reopen).toEqual({ ok: queued });
    });
  },
);

describe('durable queue: a read-only directory (permissions)', () => {
  it('open fails with QueueStorageError, for an existing file and a new one', async () => {
    const dir = tempDir();
    const path = join(dir, 'queue.db');
    const queue = await DurableQueue.open(path);
    queue.enqueue('a', new Uint8Array([1]));
    queue.close();
    chmodSync(path, 0o444);
    chmodSync(dir, 0o555);
    const script = join(tempDir(), 'child.mjs');
    writeFileSync(
      script,
      `${CHILD_PRELUDE}
      await attempt('existing', async () => (await DurableQueue.open(dir + '/queue.db')).epoch);
      await attempt('new', async () => (await DurableQueue.open(dir + '/new.db')).epoch);
      console.log(JSON.stringify(results));`,
    );
    chmodSync(join(script, '..'), 0o755);
    chmodSync(script, 0o644);
    // Root ignores permissions: the child gives up root first (nobody), as the agent's service user would be.
    const command = isRoot
      ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, dir]]
      : [process.execPath, [script, dir]];
    const result = spawnSync(command[0] as string, command[1] as string[], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const results = JSON.parse(result.stdout) as Record<string, Outcome>;
    for (const name of ['existing', 'new']) {
      expect(results[name], name).toMatchObject({ name: 'QueueStorageError', problem: 'read-only' });
    }
  });
});
