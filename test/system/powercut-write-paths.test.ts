// Each thing the agent keeps on disk, written on the power-cut file system and the power cut right after it
// was acknowledged: what was promised is there after the cut. The identity above all: a device whose
// identity.pem vanished would make a new one and silently become a stranger to its mesh.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { loadMeshKey, saveMeshKey } from '../../agent/config/mesh-key.js';
import { writeFileAtomic } from '../../agent/core/atomic-file.js';
import { mkdirDurable, syncDirectory } from '../../agent/core/durable-fs.js';
import { loadOrCreateIdentity } from '../../agent/identity/identity.js';
import { DurableQueue } from '../../agent/messaging/reliable/durable-queue.js';
import { loadMembership, saveMembership } from '../../agent/trust/membership.js';
import { TrustStore } from '../../agent/trust/trust-store.js';
import { PowercutMount, whyPowercutUnavailable } from '../support/powercut.js';
import { describeWhenAvailable } from '../support/requirements.js';

describeWhenAvailable('what the agent writes survives a power cut', whyPowercutUnavailable(), () => {
  let mount: PowercutMount;
  let dataDir: string;
  beforeEach(async () => {
    mount = new PowercutMount();
    await mount.mount();
    // A data_dir that exists durably, as the agent's first start leaves it (that part is tested below).
    dataDir = join(mount.path, 'state');
    mkdirSync(dataDir);
    await syncDirectory(mount.path);
  }, 90_000);
  afterEach(() => mount.unmount());

  it('makes a data_dir whose whole path survives', async () => {
    const deep = join(mount.path, 'var', 'lib', 'nearmesh');
    await mkdirDurable(deep);
    mount.cut();
    expect(readdirSync(join(mount.path, 'var', 'lib'))).toEqual(['nearmesh']);
  });

  it('leaves an atomic file old or new after a cut, never none, never the temporary', async () => {
    const path = join(dataDir, 'state.json');
    await writeFileAtomic(path, 'first', 0o600);
    mount.cut();
    expect(readFileSync(path, 'utf8')).toBe('first');
    await writeFileAtomic(path, 'second', 0o600);
    mount.cut();
    expect(readFileSync(path, 'utf8')).toBe('second');
    expect(readdirSync(dataDir)).toEqual(['state.json']);
  });

  it('keeps the identity it made: the same peer id after a cut, never a new one', async () => {
    const made = await loadOrCreateIdentity(dataDir);
    mount.cut();
    expect((await loadOrCreateIdentity(dataDir)).peerId).toBe(made.peerId);
  });

  it('keeps a saved mesh key and mesh membership', async () => {
    const key = new Uint8Array(32).fill(7);
    await saveMeshKey(dataDir, key);
    await saveMembership(dataDir, { name: 'greenhouse', admins: [], addresses: ['10.0.0.2:7450'] });
    mount.cut();
    expect(await loadMeshKey(dataDir)).toEqual(key);
    expect(await loadMembership(dataDir)).toMatchObject({ name: 'greenhouse', addresses: ['10.0.0.2:7450'] });
  });

  it('keeps every message the durable queue acknowledged, in order, in a queue made just before', async () => {
    const path = join(dataDir, 'messages.sqlite');
    const queue = await DurableQueue.open(path);
    const seqs = Array.from(
      { length: 40 },
      (_, i) => queue.enqueue('0123456789abcdef', Buffer.from(`m${i}`)).seq,
    );
    mount.cut(); // no close: the process died with the power
    const reopened = await DurableQueue.open(path);
    const pending = reopened.pending('0123456789abcdef');
    expect(pending.map((message) => message.seq)).toEqual(seqs);
    expect(Buffer.from(pending.at(-1)?.payload ?? []).toString()).toBe('m39');
    reopened.close();
    queue.close();
  });

  it('loses no queued message to an acknowledgement a cut takes back; an enqueue keeps both', async () => {
    const path = join(dataDir, 'messages.sqlite');
    // In a process that dies with the power (SIGKILL, no close): one still holding the file would keep
    // its wal-index, which no process has after a real cut.
    diesWithThePower(
      path,
      `queue.enqueueMany(PEER, Array.from({ length: 40 }, (_, i) => Buffer.from('m' + (i + 1))));
      queue.acknowledge(PEER, 20); // committed without an fsync of its own`,
    );
    mount.cut();
    const reopened = await DurableQueue.open(path);
    // Taken back, those go again (their receiver drops what it already has); none of the 40 is lost.
    expect(reopened.pending(PEER, { limit: 100 }).map((message) => message.seq)).toEqual(seqs(1, 40));
    reopened.close();
    diesWithThePower(path, `queue.acknowledge(PEER, 30); queue.enqueue(PEER, Buffer.from('m41'));`);
    mount.cut();
    const again = await DurableQueue.open(path);
    expect(again.pending(PEER, { limit: 100 }).map((message) => message.seq)).toEqual(seqs(31, 41));
    expect(again.stats(PEER)).toMatchObject({ messages: 11, lastSeq: 41 });
    again.close();
  });

  it('keeps a revocation the trust store recorded', async () => {
    const path = join(dataDir, 'trust.sqlite');
    const store = await TrustStore.open(path);
    store.addRevocation('fedcba9876543210', new Uint8Array([1, 2, 3]));
    mount.cut();
    const reopened = await TrustStore.open(path);
    expect(reopened.revocations()).toEqual([new Uint8Array([1, 2, 3])]);
    reopened.close();
    store.close();
  });

  it('keeps the members and names met, once the turn that met them has ended', async () => {
    const path = join(dataDir, 'trust.sqlite');
    const store = await TrustStore.open(path);
    const key = new Uint8Array(32).fill(9);
    for (const id of ['fedcba9876543210', '0123456789abcdef']) store.saveMember(id, key);
    store.bindName('door', 'fedcba9876543210');
    await new Promise((resolve) => setImmediate(resolve));
    mount.cut();
    const reopened = await TrustStore.open(path);
    expect(
      reopened
        .members()
        .map((member) => [member.id, member.publicKey])
        .sort(),
    ).toEqual([
      ['0123456789abcdef', key],
      ['fedcba9876543210', key],
    ]);
    expect(reopened.nameBindings().map(({ name, id }) => [name, id])).toEqual([['door', 'fedcba9876543210']]);
    reopened.close();
    store.close();
  });
});

const DIST_QUEUE = pathToFileURL(
  resolve(import.meta.dirname, '../../dist/agent/messaging/reliable/durable-queue.js'),
).href;

const PEER = '0123456789abcdef';

/** Runs `body` on the queue at `path` in a child process (the built module, as the agent runs it), killed. */
function diesWithThePower(path: string, body: string): void {
  const script = `import { DurableQueue } from ${JSON.stringify(DIST_QUEUE)};
    const PEER = ${JSON.stringify(PEER)};
    const queue = await DurableQueue.open(${JSON.stringify(path)});
    ${body}
    process.kill(process.pid, 'SIGKILL');`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (result.signal !== 'SIGKILL') throw new Error(`queue child: ${result.status} ${result.stderr}`);
}

function seqs(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}
