// Durable queue for reliable messages: one SQLite file (WAL) per agent holds the sender's
// outbox (per-peer sequence numbers that never repeat, kept until the peer acknowledges), the
// receiver's de-duplication state (highest seq received per sending peer) and the app inbox the received
// messages wait in (InboxStore), so neither a restart nor a kill -9 loses an acknowledged enqueue or a
// received message, or delivers one twice.
//
// Durability: `synchronous=FULL` (the default here) fsyncs the WAL on every commit, so a message whose
// enqueue() returned survives power loss, not only a process crash. `NORMAL` in WAL mode fsyncs only at
// checkpoints: it survives a crash of the process (the write is in the OS page cache) but the last
// commits may roll back on power loss or a kernel panic, which on a Pi (SD card, pulled plug) is the
// common failure; a message the app was told is queued must not vanish then. The price is one fsync per
// commit: on the development VM enqueue+ack of 1 KiB ran at ~600-2400/s with FULL against ~7000-16000/s
// with NORMAL (test/unit/messaging/reliable/durable-queue prints it); an SD card's fsync is slower still.
// A cumulative acknowledgement is the exception: it commits without an fsync (as with NORMAL), since losing
// one to a power cut only leaves messages queued that the receiver already recorded; they go again and it
// drops them as duplicates. It cannot cost an enqueue: the WAL is appended in order and synced whole.
//
// better-sqlite3 (~7.5 MB RSS) is imported lazily, only when a queue is opened.
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { mkdirDurable, syncDirectory } from '../../core/durable-fs.js';
import { type InboxChanges, type InboxLimits, InboxStore } from './inbox-store.js';
import { type QueueBound, QueueError, QueueFullError, toQueueError } from './queue-errors.js';
import { migrate } from './queue-schema.js';

export interface DurableQueueOptions {
  /** Queued (unacknowledged) messages per peer; default 10 000. */
  maxMessagesPerPeer?: number;
  /** Queued payload bytes per peer; default 16 MiB. */
  maxBytesPerPeer?: number;
  /** Queued messages over all peers; default 50 000. */
  maxMessages?: number;
  /** Queued payload bytes over all peers; default 64 MiB. */
  maxBytes?: number;
  /** Extra room beyond every bound for `system` messages, so a full app queue cannot block them; default 64. */
  systemReserveMessages?: number;
  /** Extra bytes beyond every bound for `system` messages; default 256 KiB. */
  systemReserveBytes?: number;
  /** 'full' (default): an acknowledged enqueue survives power loss. 'normal': survives a process crash only. */
  synchronous?: 'full' | 'normal';
  /** How long a write waits for another connection's lock before QueueStorageError 'busy'; default 5000. */
  busyTimeoutMs?: number;
  /** Cap on the database file size (SQLite max_page_count): reaching it is QueueStorageError 'full'. */
  maxFileBytes?: number;
  /** The app inbox's bounds; DEFAULT_INBOX_LIMITS where absent. */
  inbox?: Partial<InboxLimits>;
}

export interface EnqueueOptions {
  /** An agent-internal message: may use the system reserve beyond the bounds. */
  system?: boolean;
}

export interface QueuedMessage {
  peer: string;
  seq: number;
  payload: Uint8Array;
  system: boolean;
  /** Milliseconds since the epoch when enqueued. */
  enqueuedAt: number;
}

export interface PeerQueueStats {
  /** Queued (unacknowledged) messages. */
  messages: number;
  /** Their payload bytes. */
  bytes: number;
  /** The last seq assigned to this peer (0 if none ever). */
  lastSeq: number;
}

/** A receiver's record that messages up to `seq` from `peer` (sender queue `epoch`) were received. */
export interface DeliveredMark {
  peer: string;
  epoch: string;
  seq: number;
}

/** A reliable message received, for the app inbox. */
export interface ReceivedReliable {
  peer: string;
  epoch: string;
  seq: number;
  payload: Uint8Array;
  hops: number;
  receivedAtMs: number;
}

/** What a receiver should do with message `seq` from a peer: hand it over, drop it, or wait for earlier ones. */
export type IncomingVerdict = 'deliver' | 'duplicate' | 'gap';

interface Limits {
  maxMessagesPerPeer: number;
  maxBytesPerPeer: number;
  maxMessages: number;
  maxBytes: number;
  systemReserveMessages: number;
  systemReserveBytes: number;
}

interface OutboxRow {
  seq: number;
  system: number;
  enqueued_at: number;
  payload: Buffer;
}

interface Totals {
  messages: number;
  bytes: number;
}

function prepareStatements(db: BetterSqlite3.Database) {
  return {
    peerStats: db.prepare<[string], PeerQueueStats>(
      'SELECT messages, bytes, last_seq AS lastSeq FROM sender_peer WHERE peer = ?',
    ),
    totals: db.prepare<[], Totals>(
      'SELECT total(messages) AS messages, total(bytes) AS bytes FROM sender_peer',
    ),
    /** Takes `count` seqs for a peer (`count` messages of `bytes` in all); returns the last of them. */
    takeSeqs: db.prepare<[{ peer: string; count: number; bytes: number }], { lastSeq: number }>(
      `INSERT INTO sender_peer (peer, last_seq, messages, bytes) VALUES (@peer, @count, @count, @bytes)
       ON CONFLICT (peer) DO UPDATE SET last_seq = last_seq + @count, messages = messages + @count,
         bytes = bytes + @bytes
       RETURNING last_seq AS lastSeq`,
    ),
    insert: db.prepare<[string, number, number, number, number, Uint8Array]>(
      'INSERT INTO outbox (peer, seq, system, enqueued_at, size, payload) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    pending: db.prepare<[string, number, number], OutboxRow>(
      'SELECT seq, system, enqueued_at, payload FROM outbox WHERE peer = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    ackRange: db.prepare<[string, number], Totals>(
      'SELECT count(*) AS messages, total(size) AS bytes FROM outbox WHERE peer = ? AND seq <= ?',
    ),
    deleteRange: db.prepare<[string, number]>('DELETE FROM outbox WHERE peer = ? AND seq <= ?'),
    deleteOne: db.prepare<[string, number], { size: number }>(
      'DELETE FROM outbox WHERE peer = ? AND seq = ? RETURNING size',
    ),
    subtract: db.prepare<[number, number, string]>(
      'UPDATE sender_peer SET messages = messages - ?, bytes = bytes - ? WHERE peer = ?',
    ),
    peersWithPending: db
      .prepare<[], string>('SELECT peer FROM sender_peer WHERE messages > 0 ORDER BY peer')
      .pluck(),
    lastDelivered: db.prepare<[string], { epoch: string; seq: number }>(
      'SELECT epoch, last_delivered AS seq FROM receiver_peer WHERE peer = ?',
    ),
    markDelivered: db.prepare<[string, string, number]>(
      `INSERT INTO receiver_peer (peer, epoch, last_delivered) VALUES (?, ?, ?)
       ON CONFLICT (peer) DO UPDATE SET epoch = excluded.epoch, last_delivered = excluded.last_delivered
       WHERE epoch <> excluded.epoch OR last_delivered < excluded.last_delivered`,
    ),
  };
}

export class DurableQueue {
  /** Random id of this queue file, made with it: seqs start again at 1 only under a new epoch. */
  readonly epoch: string;
  readonly #db: BetterSqlite3.Database;
  readonly #limits: Limits;
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #enqueueMany: (peer: string, payloads: readonly Uint8Array[], system: boolean) => number[];
  readonly #acknowledge: (peer: string, uptoSeq: number) => number;
  readonly #acknowledgeOne: (peer: string, seq: number) => boolean;
  readonly #receiveMany: (
    messages: readonly ReceivedReliable[],
    changes: InboxChanges,
  ) => Array<number | undefined>;
  /** The app inbox, in the same file: what was received waits there for the apps. */
  readonly inbox: InboxStore;

  /** Opens (creating with mode 0600) the queue at `path`; fails with QueueStorageError / QueueCorruptError. */
  static async open(path: string, options: DurableQueueOptions = {}): Promise<DurableQueue> {
    let Database: typeof BetterSqlite3;
    try {
      Database = (await import('better-sqlite3')).default;
    } catch (error) {
      throw new QueueError(
        'queue-sqlite-unavailable',
        `message queue ${path}: better-sqlite3 cannot be loaded (npm rebuild better-sqlite3): ${String(error)}`,
        { cause: error },
      );
    }
    let db: BetterSqlite3.Database | undefined;
    try {
      await mkdirDurable(dirname(path));
      // Created here so the mode is 0600 from the start; SQLite gives -wal and -shm the same mode. SQLite
      // fsyncs the directory for its journals, never for the database file: we do, once.
      if (!existsSync(path)) {
        closeSync(openSync(path, 'wx', 0o600));
        await syncDirectory(dirname(path));
      }
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      configure(db, options);
      migrate(db, path);
      return new DurableQueue(db, path, options);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // Already failing: the original error is the one to report.
      }
      throw toQueueError(error, path, 'open');
    }
  }

  private constructor(
    db: BetterSqlite3.Database,
    readonly path: string,
    options: DurableQueueOptions,
  ) {
    this.#db = db;
    this.#limits = {
      maxMessagesPerPeer: options.maxMessagesPerPeer ?? 10_000,
      maxBytesPerPeer: options.maxBytesPerPeer ?? 16 * 1024 * 1024,
      maxMessages: options.maxMessages ?? 50_000,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
      systemReserveMessages: options.systemReserveMessages ?? 64,
      systemReserveBytes: options.systemReserveBytes ?? 256 * 1024,
    };
    const s = prepareStatements(db);
    this.#s = s;
    this.epoch = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'epoch'").pluck().get() ?? '';

    // BEGIN IMMEDIATE: take the write lock up front (no deadlock-prone read-to-write upgrade). One
    // transaction (one fsync) for a batch: all of it is queued or none of it. The bounds are checked
    // message by message against running sums, then the batch takes its seqs in one statement.
    this.#enqueueMany = db.transaction((peer: string, payloads: readonly Uint8Array[], system: boolean) => {
      const queued = { ...(s.peerStats.get(peer) ?? { messages: 0, bytes: 0 }) };
      const totals = { ...(s.totals.get() ?? { messages: 0, bytes: 0 }) };
      let batchBytes = 0;
      for (const payload of payloads) {
        const size = payload.byteLength;
        this.#checkBounds(peer, size, system, queued, totals);
        queued.messages += 1;
        queued.bytes += size;
        totals.messages += 1;
        totals.bytes += size;
        batchBytes += size;
      }
      const lastSeq = s.takeSeqs.get({ peer, count: payloads.length, bytes: batchBytes })?.lastSeq;
      if (lastSeq === undefined) throw new Error('sequence upsert returned no row');
      const firstSeq = lastSeq - payloads.length + 1;
      const enqueuedAt = Date.now();
      return payloads.map((payload, i) => {
        s.insert.run(peer, firstSeq + i, system ? 1 : 0, enqueuedAt, payload.byteLength, payload);
        return firstSeq + i;
      });
    }).immediate;
    const acknowledge = db.transaction((peer: string, uptoSeq: number) => {
      const range = s.ackRange.get(peer, uptoSeq);
      if (range === undefined || range.messages === 0) return 0;
      s.deleteRange.run(peer, uptoSeq);
      s.subtract.run(range.messages, range.bytes, peer);
      return range.messages;
    }).immediate;
    // Committed without an fsync of its own (see the top of this file); the next synced commit or
    // checkpoint makes it durable, as the WAL is synced whole. Not a prepared statement: SQLite applies
    // `PRAGMA synchronous` when it compiles one, so one prepared ahead would never change the level.
    this.#acknowledge =
      (options.synchronous ?? 'full') === 'normal'
        ? acknowledge
        : (peer, uptoSeq) => {
            db.pragma('synchronous = NORMAL');
            try {
              return acknowledge(peer, uptoSeq);
            } finally {
              db.pragma('synchronous = FULL');
            }
          };
    this.inbox = new InboxStore(db, options.inbox);
    // A receiver's whole turn of messages in one transaction (one fsync however many came): those the
    // inbox takes are stored and recorded as received; a refused one is neither, so its sender sends it
    // again later.
    this.#receiveMany = db.transaction((messages: readonly ReceivedReliable[], changes: InboxChanges) => {
      const ids = this.inbox.store(
        messages.map((m) => ({
          from: m.peer,
          receivedAtMs: m.receivedAtMs,
          hops: m.hops,
          payload: m.payload,
        })),
        changes,
      );
      const upTo = new Map<string, DeliveredMark>();
      messages.forEach((m, i) => {
        if (ids[i] !== undefined)
          upTo.set(`${m.peer}/${m.epoch}`, { peer: m.peer, epoch: m.epoch, seq: m.seq });
      });
      for (const mark of upTo.values()) s.markDelivered.run(mark.peer, mark.epoch, mark.seq);
      return ids;
    }).immediate;
    this.#acknowledgeOne = db.transaction((peer: string, seq: number) => {
      const row = s.deleteOne.get(peer, seq);
      if (row === undefined) return false;
      s.subtract.run(1, row.size, peer);
      return true;
    }).immediate;
  }

  // ---- sender side ----

  /**
   * Queues `payload` for `peer` durably and returns its seq (1, 2, 3, ... per peer, never reused).
   * When this returns the message survives a crash (and power loss with synchronous 'full').
   * Throws QueueFullError at a bound, QueueStorageError / QueueCorruptError when the file fails.
   */
  enqueue(peer: string, payload: Uint8Array, options: EnqueueOptions = {}): { seq: number } {
    checkPeer(peer);
    if (!(payload instanceof Uint8Array)) throw new TypeError('payload must be a Uint8Array');
    const seqs = this.#run('enqueue', () => this.#enqueueMany(peer, [payload], options.system === true));
    return { seq: seqs[0] as number };
  }

  /** Queues several messages for `peer` in one transaction (all or none); returns their seqs, in order. */
  enqueueMany(peer: string, payloads: readonly Uint8Array[], options: EnqueueOptions = {}): number[] {
    checkPeer(peer);
    if (!payloads.every((payload) => payload instanceof Uint8Array)) {
      throw new TypeError('payloads must be Uint8Arrays');
    }
    if (payloads.length === 0) return [];
    return this.#run('enqueue', () => this.#enqueueMany(peer, payloads, options.system === true));
  }

  /** Queued messages for `peer` with seq > afterSeq (default 0), in seq order, at most `limit` (default 100). */
  pending(peer: string, options: { afterSeq?: number; limit?: number } = {}): QueuedMessage[] {
    checkPeer(peer);
    const afterSeq = options.afterSeq ?? 0;
    const limit = options.limit ?? 100;
    checkSeq(afterSeq, 'afterSeq', true);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    const rows = this.#run('read', () => this.#s.pending.all(peer, afterSeq, limit));
    return rows.map((row) => ({
      peer,
      seq: row.seq,
      payload: new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
      system: row.system === 1,
      enqueuedAt: row.enqueued_at,
    }));
  }

  /** Cumulative acknowledgement: removes every queued message for `peer` with seq <= uptoSeq; returns how many. */
  acknowledge(peer: string, uptoSeq: number): number {
    checkPeer(peer);
    checkSeq(uptoSeq, 'uptoSeq', true);
    return this.#run('acknowledge', () => this.#acknowledge(peer, uptoSeq));
  }

  /** Selective acknowledgement of one message; false when it was not queued (already acknowledged). */
  acknowledgeOne(peer: string, seq: number): boolean {
    checkPeer(peer);
    checkSeq(seq, 'seq', false);
    return this.#run('acknowledge', () => this.#acknowledgeOne(peer, seq));
  }

  /** Peers that have queued messages, sorted. */
  peersWithPending(): string[] {
    return this.#run('read', () => this.#s.peersWithPending.all());
  }

  /** Queued messages and bytes for one peer, and its last assigned seq. */
  stats(peer: string): PeerQueueStats {
    checkPeer(peer);
    return this.#run('read', () => this.#s.peerStats.get(peer)) ?? { messages: 0, bytes: 0, lastSeq: 0 };
  }

  /** Queued messages and bytes over all peers. */
  totals(): Totals {
    return this.#run('read', () => this.#s.totals.get()) ?? { messages: 0, bytes: 0 };
  }

  // ---- receiver side ----

  /** The highest seq from `peer` (sender queue `epoch`) handed to the app; 0 if none (or another epoch). */
  lastDelivered(peer: string, epoch = ''): number {
    checkPeer(peer);
    const row = this.#run('read', () => this.#s.lastDelivered.get(peer));
    return row !== undefined && row.epoch === epoch ? row.seq : 0;
  }

  /** 'deliver' for the next seq in order, 'duplicate' for one already delivered, 'gap' if earlier ones are missing. */
  incoming(peer: string, seq: number, epoch = ''): IncomingVerdict {
    checkSeq(seq, 'seq', false);
    const last = this.lastDelivered(peer, epoch);
    if (seq <= last) return 'duplicate';
    return seq === last + 1 ? 'deliver' : 'gap';
  }

  /**
   * Records durably that messages up to `seq` from `peer` were handed to the app. Never moves backwards
   * within an epoch; a new epoch (the sender's queue file was replaced) starts over. True if it advanced.
   */
  markDelivered(peer: string, seq: number, epoch = ''): boolean {
    checkPeer(peer);
    checkSeq(seq, 'seq', false);
    return this.#run('markDelivered', () => this.#s.markDelivered.run(peer, epoch, seq).changes === 1);
  }

  /**
   * Stores received messages in the app inbox and records them as received, in one transaction: the
   * inbox id of each one stored, undefined for each the full inbox refused (not recorded either).
   * Messages from one sender must come in seq order.
   */
  receiveMany(messages: readonly ReceivedReliable[], changes: InboxChanges): Array<number | undefined> {
    for (const message of messages) {
      checkPeer(message.peer);
      checkSeq(message.seq, 'seq', false);
    }
    if (messages.length === 0) return [];
    try {
      return this.#run('receive', () => this.#receiveMany(messages, changes));
    } catch (error) {
      this.inbox.rollback();
      throw error;
    }
  }

  /** Closes the file (checkpointing the WAL); later calls throw QueueError 'queue-closed'. Idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #checkBounds(
    peer: string,
    size: number,
    system: boolean,
    queued: { messages: number; bytes: number },
    totals: Totals,
  ): void {
    const l = this.#limits;
    const extraMessages = system ? l.systemReserveMessages : 0;
    const extraBytes = system ? l.systemReserveBytes : 0;
    const checks: [QueueBound, number, number, number][] = [
      ['peer-messages', queued.messages, 1, l.maxMessagesPerPeer + extraMessages],
      ['peer-bytes', queued.bytes, size, l.maxBytesPerPeer + extraBytes],
      ['total-messages', totals.messages, 1, l.maxMessages + extraMessages],
      ['total-bytes', totals.bytes, size, l.maxBytes + extraBytes],
    ];
    for (const [bound, current, adding, limit] of checks) {
      if (current + adding > limit) throw new QueueFullError(peer, bound, limit, current);
    }
  }

  #run<T>(operation: string, body: () => T): T {
    if (!this.#db.open) throw new QueueError('queue-closed', `message queue ${this.path} is closed`);
    try {
      return body();
    } catch (error) {
      throw toQueueError(error, this.path, operation);
    }
  }
}

function configure(db: BetterSqlite3.Database, options: DurableQueueOptions): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') {
    throw new QueueError(
      'queue-no-wal',
      `message queue ${db.name}: cannot use WAL (journal mode is ${mode})`,
    );
  }
  // Set after journal_mode, always: better-sqlite3 builds SQLite with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1,
  // so a connection opening a file that is already in WAL mode starts on NORMAL (measured: a fresh file
  // starts on FULL, the same file reopened on NORMAL). Without this every restart would weaken durability.
  const wanted = (options.synchronous ?? 'full') === 'full' ? 2 : 1;
  db.pragma(`synchronous = ${wanted}`);
  const actual = db.pragma('synchronous', { simple: true });
  if (actual !== wanted) {
    throw new QueueError('queue-pragma', `message queue ${db.name}: synchronous is ${actual}, not ${wanted}`);
  }
  if (options.maxFileBytes !== undefined) {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxFileBytes / pageSize))}`);
  }
}

function checkPeer(peer: string): void {
  if (typeof peer !== 'string' || peer.length === 0) throw new TypeError('peer must be a non-empty string');
}

function checkSeq(seq: number, name: string, zeroAllowed: boolean): void {
  if (!Number.isSafeInteger(seq) || seq < (zeroAllowed ? 0 : 1)) {
    throw new RangeError(`${name} must be an integer >= ${zeroAllowed ? 0 : 1}`);
  }
}
