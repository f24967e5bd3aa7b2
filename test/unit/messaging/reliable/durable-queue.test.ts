// Durable queue against real better-sqlite3 in temporary directories: per-peer seqs and order,
// cumulative and selective acks, persistence across close/reopen, bounds, corrupt files, receiver
// de-duplication state, lazy loading of the SQLite module. Throughput is measured in scripts/bench.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DurableQueue,
  type DurableQueueOptions,
} from '../../../../agent/messaging/reliable/durable-queue.js';
import { noInboxChanges } from '../../../../agent/messaging/reliable/inbox-changes.js';
import {
  QueueCorruptError,
  QueueError,
  QueueFullError,
  QueueStorageError,
} from '../../../../agent/messaging/reliable/queue-errors.js';
import { SCHEMA_VERSION } from '../../../../agent/messaging/reliable/queue-schema.js';

const directories: string[] = [];
afterAll(() => {
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

function tempPath(name = 'queue.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-queue-'));
  directories.push(dir);
  return join(dir, name);
}

const bytes = (...values: number[]) => new Uint8Array(values);

async function withQueue<T>(
  path: string,
  body: (queue: DurableQueue) => T,
  options?: DurableQueueOptions,
): Promise<T> {
  const queue = await DurableQueue.open(path, options);
  try {
    return body(queue);
  } finally {
    queue.close();
  }
}

describe('durable queue: sender side', () => {
  it('numbers messages per peer from 1 and returns them in seq order', async () => {
    await withQueue(tempPath(), (queue) => {
      expect(queue.enqueue('alice', bytes(1))).toEqual({ seq: 1 });
      expect(queue.enqueue('bob', bytes(2))).toEqual({ seq: 1 });
      expect(queue.enqueue('alice', bytes(3), { system: true })).toEqual({ seq: 2 });
      expect(queue.enqueue('alice', bytes(4, 5))).toEqual({ seq: 3 });
      const pending = queue.pending('alice');
      expect(pending.map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(pending.map((m) => [...m.payload])).toEqual([[1], [3], [4, 5]]);
      expect(pending.map((m) => m.system)).toEqual([false, true, false]);
      expect(pending[0]!.payload).toBeInstanceOf(Uint8Array);
      expect(queue.pending('alice', { afterSeq: 1, limit: 1 }).map((m) => m.seq)).toEqual([2]);
      expect(queue.pending('carol')).toEqual([]);
      expect(queue.peersWithPending()).toEqual(['alice', 'bob']);
      expect(queue.stats('alice')).toEqual({ messages: 3, bytes: 4, lastSeq: 3 });
      expect(queue.stats('nobody')).toEqual({ messages: 0, bytes: 0, lastSeq: 0 });
      expect(queue.totals()).toEqual({ messages: 4, bytes: 5 });
    });
  });

  it('cumulative ack removes everything up to a seq, selective ack one; seqs are never reused', async () => {
    await withQueue(tempPath(), (queue) => {
      for (let i = 1; i <= 6; i++) queue.enqueue('p', bytes(i, i));
      expect(queue.acknowledgeOne('p', 5)).toBe(true);
      expect(queue.acknowledgeOne('p', 5)).toBe(false);
      expect(queue.acknowledge('p', 3)).toBe(3);
      expect(queue.acknowledge('p', 3)).toBe(0);
      expect(queue.pending('p').map((m) => m.seq)).toEqual([4, 6]);
      expect(queue.stats('p')).toEqual({ messages: 2, bytes: 4, lastSeq: 6 });
      expect(queue.acknowledge('p', 100)).toBe(2);
      expect(queue.peersWithPending()).toEqual([]);
      expect(queue.totals()).toEqual({ messages: 0, bytes: 0 });
      // Everything acknowledged: the next message still gets a new seq.
      expect(queue.enqueue('p', bytes(7)).seq).toBe(7);
      expect(queue.acknowledge('unknown', 10)).toBe(0);
    });
  });

  it('keeps messages, seqs, counters and the epoch across close and reopen (file mode 0600)', async () => {
    const path = tempPath();
    const epoch = await withQueue(path, (queue) => {
      queue.enqueue('a', bytes(1));
      queue.enqueue('a', bytes(2));
      queue.enqueue('b', bytes(3));
      queue.acknowledge('a', 1);
      expect(queue.epoch).toMatch(/^[0-9a-f]{16}$/);
      return queue.epoch;
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await withQueue(path, (queue) => {
      expect(queue.epoch).toBe(epoch);
      expect(queue.pending('a').map((m) => [m.seq, ...m.payload])).toEqual([[2, 2]]);
      expect(queue.stats('a')).toEqual({ messages: 1, bytes: 1, lastSeq: 2 });
      expect(queue.enqueue('a', bytes(4)).seq).toBe(3);
      expect(queue.enqueue('b', bytes(5)).seq).toBe(2);
    });
    // A fresh file is a fresh epoch.
    await withQueue(tempPath(), (queue) => expect(queue.epoch).not.toBe(epoch));
  });

  it('uses WAL with the requested synchronous level; -wal and -shm get mode 0600 too', async () => {
    const path = tempPath();
    await withQueue(path, (queue) => {
      queue.enqueue('a', bytes(1));
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-shm`).mode & 0o777).toBe(0o600);
    });
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const version = db.prepare('SELECT version FROM schema_version').pluck().get();
      expect(version).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('refuses a message at every bound with QueueFullError and keeps what was queued', async () => {
    await withQueue(
      tempPath(),
      (queue) => {
        queue.enqueue('a', new Uint8Array(10));
        queue.enqueue('a', new Uint8Array(10));
        queue.enqueue('a', new Uint8Array(10));
        const full = catchError(() => queue.enqueue('a', new Uint8Array(1)));
        expect(full).toBeInstanceOf(QueueFullError);
        expect(full).toMatchObject({
          code: 'queue-full',
          peer: 'a',
          bound: 'peer-messages',
          limit: 3,
          current: 3,
        });
        // System messages may use the reserve.
        expect(queue.enqueue('a', new Uint8Array(1), { system: true }).seq).toBe(4);
        expect(catchError(() => queue.enqueue('b', new Uint8Array(41)))).toMatchObject({
          bound: 'peer-bytes',
        });
        queue.enqueue('b', new Uint8Array(20));
        expect(catchError(() => queue.enqueue('c', new Uint8Array(20)))).toMatchObject({
          bound: 'total-bytes',
          limit: 60,
          current: 51,
        });
        queue.enqueue('c', new Uint8Array(5));
        queue.enqueue('d', new Uint8Array(1));
        expect(catchError(() => queue.enqueue('e', new Uint8Array(1)))).toMatchObject({
          bound: 'total-messages',
        });
        expect(queue.totals()).toEqual({ messages: 7, bytes: 57 });
        // Acknowledging frees room; the refused messages did not consume seqs.
        queue.acknowledge('a', 4);
        expect(queue.enqueue('a', new Uint8Array(1)).seq).toBe(5);
        expect(queue.enqueue('e', new Uint8Array(1)).seq).toBe(1);
      },
      {
        maxMessagesPerPeer: 3,
        maxBytesPerPeer: 40,
        maxMessages: 7,
        maxBytes: 60,
        systemReserveMessages: 1,
        systemReserveBytes: 1,
      },
    );
  });

  it('reaching maxFileBytes (SQLITE_FULL) is a QueueStorageError, and the queue keeps working', async () => {
    const path = tempPath();
    await withQueue(
      path,
      (queue) => {
        let error: unknown;
        let queued = 0;
        for (let i = 0; i < 1000 && error === undefined; i++) {
          try {
            queue.enqueue('a', new Uint8Array(4096));
            queued++;
          } catch (caught) {
            error = caught;
          }
        }
        expect(error).toBeInstanceOf(QueueStorageError);
        expect(error).toMatchObject({
          code: 'queue-storage',
          problem: 'full',
          causeCode: 'SQLITE_FULL',
          path,
        });
        expect((error as Error).message).toContain('no space left');
        expect(queue.stats('a')).toEqual({ messages: queued, bytes: queued * 4096, lastSeq: queued });
        queue.acknowledge('a', queued);
        expect(queue.enqueue('a', new Uint8Array(4096)).seq).toBe(queued + 1);
      },
      { maxFileBytes: 256 * 1024 },
    );
  });

  it('rejects bad arguments and use after close', async () => {
    const queue = await DurableQueue.open(tempPath());
    expect(() => queue.enqueue('', bytes(1))).toThrow(TypeError);
    expect(() => queue.enqueue('a', 'text' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => queue.acknowledge('a', -1)).toThrow(RangeError);
    expect(() => queue.acknowledgeOne('a', 0)).toThrow(RangeError);
    expect(() => queue.pending('a', { limit: 0 })).toThrow(RangeError);
    queue.close();
    queue.close();
    expect(catchError(() => queue.enqueue('a', bytes(1)))).toMatchObject({ code: 'queue-closed' });
    expect(catchError(() => queue.pending('a'))).toBeInstanceOf(QueueError);
  });
});

describe('durable queue: receiver side', () => {
  it('de-duplicates in order, persisted across reopen, per sender epoch', async () => {
    const path = tempPath();
    await withQueue(path, (queue) => {
      expect(queue.lastDelivered('s1', 'e1')).toBe(0);
      expect(queue.incoming('s1', 1, 'e1')).toBe('deliver');
      expect(queue.incoming('s1', 2, 'e1')).toBe('gap');
      expect(queue.markDelivered('s1', 1, 'e1')).toBe(true);
      expect(queue.markDelivered('s1', 2, 'e1')).toBe(true);
      expect(queue.markDelivered('s1', 2, 'e1')).toBe(false);
      expect(queue.markDelivered('s1', 1, 'e1')).toBe(false);
      expect(queue.markDelivered('s2', 5)).toBe(true);
    });
    await withQueue(path, (queue) => {
      expect(queue.lastDelivered('s1', 'e1')).toBe(2);
      expect(queue.incoming('s1', 1, 'e1')).toBe('duplicate');
      expect(queue.incoming('s1', 2, 'e1')).toBe('duplicate');
      expect(queue.incoming('s1', 3, 'e1')).toBe('deliver');
      expect(queue.lastDelivered('s2')).toBe(5);
      // The sender's queue was replaced (new epoch): its seqs start at 1 again and are delivered.
      expect(queue.lastDelivered('s1', 'e2')).toBe(0);
      expect(queue.incoming('s1', 1, 'e2')).toBe('deliver');
      expect(queue.markDelivered('s1', 1, 'e2')).toBe(true);
      expect(queue.lastDelivered('s1', 'e2')).toBe(1);
      expect(queue.lastDelivered('s1', 'e1')).toBe(0);
    });
  });

  it('stores a turn of messages from several senders at once and records them received, all or none', async () => {
    const path = tempPath();
    const received = (peer: string, epoch: string, seq: number) => ({
      peer,
      epoch,
      seq,
      payload: Buffer.from(`${peer} #${seq}`),
      hops: 1,
      receivedAtMs: Date.now(),
    });
    await withQueue(path, (queue) => {
      const ids = queue.receiveMany([received('s1', 'e1', 40), received('s2', 'e9', 3)], noInboxChanges());
      expect(ids).toEqual([1, 2]);
      // A bad one refuses the whole batch: nothing of it is stored or recorded.
      expect(() =>
        queue.receiveMany([received('s1', 'e1', 41), received('s3', 'e1', 0)], noInboxChanges()),
      ).toThrow(RangeError);
      expect(queue.lastDelivered('s1', 'e1')).toBe(40);
      expect(queue.lastDelivered('s3', 'e1')).toBe(0);
      expect(queue.inbox.stats().messages).toBe(2);
    });
    await withQueue(path, (queue) => {
      expect(queue.lastDelivered('s1', 'e1')).toBe(40);
      expect(queue.lastDelivered('s2', 'e9')).toBe(3);
      expect(queue.inbox.after(0, 10).map((entry) => Buffer.from(entry.payload).toString())).toEqual([
        's1 #40',
        's2 #3',
      ]);
    });
  });

  it("records only what the full inbox took: a refused message is not received, nor its sender's later ones", async () => {
    const path = tempPath();
    const message = (peer: string, seq: number, bytes: number) => ({
      peer,
      epoch: 'e',
      seq,
      payload: Buffer.alloc(bytes),
      hops: 1,
      receivedAtMs: Date.now(),
    });
    await withQueue(
      path,
      (queue) => {
        const changes = noInboxChanges();
        const ids = queue.receiveMany(
          [message('s1', 1, 600), message('s1', 2, 600), message('s2', 1, 100), message('s1', 3, 10)],
          changes,
        );
        expect(ids.map((id) => id !== undefined)).toEqual([true, false, true, false]);
        expect(changes.refused).toBe(2);
        expect(queue.lastDelivered('s1', 'e')).toBe(1);
        expect(queue.lastDelivered('s2', 'e')).toBe(1);
      },
      { inbox: { maxBytes: 1000 } },
    );
  });

  it('end to end: a sender queue and a receiver queue deliver each message once, in order, across restarts', async () => {
    const senderPath = tempPath('sender.db');
    const receiverPath = tempPath('receiver.db');
    const delivered: number[] = [];
    // The link duplicates and re-sends everything pending each round; each side restarts every round.
    for (let round = 0; round < 4; round++) {
      const sender = await DurableQueue.open(senderPath);
      const receiver = await DurableQueue.open(receiverPath);
      for (let i = 0; i < 3; i++) sender.enqueue('rx', bytes(round * 3 + i));
      const wire = sender.pending('rx', { limit: 1000 });
      for (const message of [...wire, ...wire]) {
        if (receiver.incoming('tx', message.seq, sender.epoch) !== 'deliver') continue;
        delivered.push(message.payload[0]!);
        receiver.markDelivered('tx', message.seq, sender.epoch);
      }
      // Only the first two of each round are acknowledged back: the third is re-sent next round.
      sender.acknowledge('rx', receiver.lastDelivered('tx', sender.epoch) - 1);
      sender.close();
      receiver.close();
    }
    expect(delivered).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
});

describe('durable queue: damaged files', () => {
  it('a file that is not a database is a QueueCorruptError naming the path and what to do', async () => {
    const path = tempPath();
    writeFileSync(path, Buffer.alloc(8192, 'not a database '));
    const error = await DurableQueue.open(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QueueCorruptError);
    expect(error).toMatchObject({ code: 'queue-corrupt', causeCode: 'SQLITE_NOTADB', path });
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain('move the file aside');
  });

  it('a damaged page in a real queue is a QueueCorruptError when it is read', async () => {
    const path = tempPath();
    await withQueue(path, (queue) => {
      for (let i = 0; i < 200; i++) queue.enqueue(`peer-${i % 4}`, new Uint8Array(900).fill(i));
    });
    // Overwrite every page after the schema pages with garbage (headers included).
    const size = statSync(path).size;
    const garbage = Buffer.alloc(size - 4096 * 3, 0xa5);
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(path, 'r+');
    writeSync(fd, garbage, 0, garbage.length, 4096 * 3);
    closeSync(fd);
    const error = await (async () => {
      const queue = await DurableQueue.open(path);
      try {
        for (let i = 0; i < 4; i++) queue.pending(`peer-${i}`, { limit: 1000 });
        queue.enqueue('peer-0', bytes(1));
        queue.acknowledge('peer-1', 1000);
      } finally {
        queue.close();
      }
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QueueCorruptError);
    expect((error as QueueCorruptError).causeCode).toMatch(/^SQLITE_(CORRUPT|NOTADB)/);
  });

  it('a file with a newer schema version is refused, not migrated down', async () => {
    const path = tempPath();
    await withQueue(path, () => undefined);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path);
    db.prepare('UPDATE schema_version SET version = 99').run();
    db.close();
    const error = await DurableQueue.open(path).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'queue-schema-newer' });
  });
});

describe('durable queue: costs', () => {
  it('loads better-sqlite3 only when a queue is opened', () => {
    const moduleUrl = pathToFileURL(
      resolve(import.meta.dirname, '../../../../agent/messaging/reliable/durable-queue.ts'),
    );
    // The built module: run by plain node (the test itself runs under vitest's transform).
    const distUrl = pathToFileURL(
      resolve(import.meta.dirname, '../../../../dist/agent/messaging/reliable/durable-queue.js'),
    );
    expect(moduleUrl.href).toContain('durable-queue');
    const script = `
      import Module from 'node:module';
      const loaded = () => Object.keys(Module._cache).some((key) => key.includes('better-sqlite3'));
      globalThis.gc?.();
      const before = process.memoryUsage().rss;
      const { DurableQueue } = await import(${JSON.stringify(distUrl.href)});
      const afterImport = loaded();
      const queue = await DurableQueue.open(${JSON.stringify(tempPath())});
      queue.enqueue('a', new Uint8Array(1));
      globalThis.gc?.();
      const rssDelta = process.memoryUsage().rss - before;
      queue.close();
      console.log(JSON.stringify({ afterImport, afterOpen: loaded(), rssDelta }));
    `;
    const output = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const result = JSON.parse(output) as { afterImport: boolean; afterOpen: boolean; rssDelta: number };
    expect(result).toMatchObject({ afterImport: false, afterOpen: true });
    console.log(`[messaging] RSS after opening a queue: +${(result.rssDelta / 1024 / 1024).toFixed(1)} MB`);
  });
});

function catchError(body: () => unknown): unknown {
  try {
    body();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
