// The app inbox: reliable messages this agent received, kept in the queue's SQLite file until every
// consumer registered with it has taken them (or they expire). A consumer is a named cursor (`listen`'s,
// an MQTT persistent session's): it takes messages in arrival order and moves its cursor when it has
// them. With no consumer registered, messages wait for the first one. Bounded in messages and bytes; when
// full it refuses new ones (their senders keep them queued: back-pressure across the mesh) or, when told
// to, drops the oldest. Messages are stored in the same transaction that records them as received, so a
// sender's RECEIVED means "stored here".

import type BetterSqlite3 from 'better-sqlite3';

export type InboxFullPolicy = 'refuse' | 'drop-oldest';

export interface InboxLimits {
  maxMessages: number;
  maxBytes: number;
  /** Messages older than this go, taken or not. */
  maxAgeMs: number;
  whenFull: InboxFullPolicy;
  /** A consumer not seen for this long is forgotten (its cursor no longer holds messages). */
  consumerExpiryMs: number;
}

export const DEFAULT_INBOX_LIMITS: InboxLimits = {
  maxMessages: 10_000,
  maxBytes: 16 * 1024 * 1024,
  maxAgeMs: 7 * 24 * 3_600_000,
  whenFull: 'refuse',
  consumerExpiryMs: 7 * 24 * 3_600_000,
};

/** A message for this agent's apps as the inbox holds it. */
export interface InboxEntry {
  /** Its place in the inbox: increasing in arrival order, never reused. */
  id: number;
  from: string;
  receivedAtMs: number;
  hops: number;
  payload: Uint8Array;
}

export type NewInboxEntry = Omit<InboxEntry, 'id'>;

export interface InboxConsumerInfo {
  name: string;
  /** The id of the last message it took (0: none yet). */
  takenUpTo: number;
  /** Messages waiting for it. */
  waiting: number;
  seenAtMs: number;
}

export interface InboxStats {
  messages: number;
  bytes: number;
  /** When the oldest waiting message arrived; null when none waits. */
  oldestAtMs: number | null;
  consumers: number;
}

/** What one store() or sweep() removed or turned away, for the counters. */
export interface InboxChanges {
  refused: number;
  droppedOldest: number;
  expired: number;
  consumersForgotten: number;
}

interface EntryRow {
  id: number;
  sender: string;
  received_at: number;
  hops: number;
  payload: Buffer;
}

function prepareStatements(db: BetterSqlite3.Database) {
  return {
    totals: db.prepare<[], { messages: number; bytes: number }>(
      'SELECT count(*) AS messages, total(size) AS bytes FROM inbox',
    ),
    insert: db.prepare<[string, number, number, number, Uint8Array], { id: number }>(
      'INSERT INTO inbox (sender, received_at, hops, size, payload) VALUES (?, ?, ?, ?, ?) RETURNING id',
    ),
    oldest: db.prepare<[], { id: number; size: number; received_at: number }>(
      'SELECT id, size, received_at FROM inbox ORDER BY id LIMIT 1',
    ),
    deleteOne: db.prepare<[number]>('DELETE FROM inbox WHERE id = ?'),
    deleteUpTo: db.prepare<[number], { size: number }>('DELETE FROM inbox WHERE id <= ? RETURNING size'),
    deleteBefore: db.prepare<[number], { size: number }>(
      'DELETE FROM inbox WHERE received_at < ? RETURNING size',
    ),
    after: db.prepare<[number, number], EntryRow>(
      'SELECT id, sender, received_at, hops, payload FROM inbox WHERE id > ? ORDER BY id LIMIT ?',
    ),
    countAfter: db.prepare<[number], number>('SELECT count(*) FROM inbox WHERE id > ?').pluck(),
    lastId: db
      .prepare<[], number>("SELECT ifnull(max(seq), 0) FROM sqlite_sequence WHERE name = 'inbox'")
      .pluck(),
    register: db.prepare<[string, number, number]>(
      'INSERT INTO inbox_consumer (name, taken_up_to, seen_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
    ),
    touch: db.prepare<[number, string]>('UPDATE inbox_consumer SET seen_at = ? WHERE name = ?'),
    advance: db.prepare<[number, number, string]>(
      'UPDATE inbox_consumer SET taken_up_to = max(taken_up_to, ?), seen_at = ? WHERE name = ?',
    ),
    consumer: db.prepare<[string], { name: string; taken_up_to: number; seen_at: number }>(
      'SELECT name, taken_up_to, seen_at FROM inbox_consumer WHERE name = ?',
    ),
    consumerCount: db.prepare<[], number>('SELECT count(*) FROM inbox_consumer').pluck(),
    consumers: db.prepare<[], { name: string; taken_up_to: number; seen_at: number }>(
      'SELECT name, taken_up_to, seen_at FROM inbox_consumer ORDER BY name',
    ),
    slowest: db.prepare<[], number | null>('SELECT min(taken_up_to) FROM inbox_consumer').pluck(),
    forget: db.prepare<[string]>('DELETE FROM inbox_consumer WHERE name = ?'),
    forgetUnseen: db.prepare<[number]>('DELETE FROM inbox_consumer WHERE seen_at < ?'),
  };
}

export class InboxStore {
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #limits: InboxLimits;
  #messages = 0;
  #bytes = 0;

  /** On the queue's database, migrated (schema 2 has the inbox tables). */
  constructor(
    private readonly db: BetterSqlite3.Database,
    limits: Partial<InboxLimits> = {},
  ) {
    this.#s = prepareStatements(db);
    this.#limits = { ...DEFAULT_INBOX_LIMITS, ...limits };
    this.#reloadTotals();
  }

  get limits(): InboxLimits {
    return this.#limits;
  }

  /**
   * Stores what fits of `entries`, in order, inside the caller's transaction: the id of each one stored,
   * undefined for each one refused. Once one of a sender's messages is refused, its later ones are too
   * (they must come in order). The caller reloads the totals with `rollback()` when its transaction fails.
   */
  store(entries: readonly NewInboxEntry[], changes: InboxChanges): Array<number | undefined> {
    const refusedSenders = new Set<string>();
    return entries.map((entry) => {
      const size = entry.payload.byteLength;
      if (refusedSenders.has(entry.from) || !this.#makeRoom(size, changes)) {
        refusedSenders.add(entry.from);
        changes.refused++;
        return undefined;
      }
      const row = this.#s.insert.get(entry.from, entry.receivedAtMs, entry.hops, size, entry.payload);
      this.#messages++;
      this.#bytes += size;
      return row?.id;
    });
  }

  /** Reads the totals again after a transaction that changed them was rolled back. */
  rollback(): void {
    this.#reloadTotals();
  }

  /** Up to `limit` messages after `afterId`, oldest first. */
  after(afterId: number, limit: number): InboxEntry[] {
    return this.#s.after.all(afterId, limit).map((row) => ({
      id: row.id,
      from: row.sender,
      receivedAtMs: row.received_at,
      hops: row.hops,
      payload: new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
    }));
  }

  /**
   * Registers a consumer (or finds it again) and returns where it stands: a new one starts before the
   * oldest message waiting, so it gets everything still here.
   */
  register(name: string, nowMs: number): InboxConsumerInfo {
    const oldest = this.#s.oldest.get();
    const start = oldest === undefined ? (this.#s.lastId.get() ?? 0) : oldest.id - 1;
    this.#s.register.run(name, start, nowMs);
    this.#s.touch.run(nowMs, name);
    return this.consumer(name) as InboxConsumerInfo;
  }

  consumer(name: string): InboxConsumerInfo | undefined {
    const row = this.#s.consumer.get(name);
    return row === undefined ? undefined : this.#infoOf(row);
  }

  consumers(): InboxConsumerInfo[] {
    return this.#s.consumers.all().map((row) => this.#infoOf(row));
  }

  /** The consumer took every message up to `upTo`: moves its cursor and removes what all have taken. */
  take(name: string, upTo: number, nowMs: number): void {
    this.db
      .transaction(() => {
        this.#s.advance.run(upTo, nowMs, name);
        this.#prune();
      })
      .immediate();
  }

  /** Forgets a consumer; messages only it still waited for go. False when there was none. */
  forget(name: string): boolean {
    return this.db
      .transaction(() => {
        const forgotten = this.#s.forget.run(name).changes === 1;
        if (forgotten) this.#prune();
        return forgotten;
      })
      .immediate();
  }

  /** Removes every message up to `upTo` (all of them without it), taken or not; returns how many. */
  clear(upTo?: number): number {
    const removed = this.db
      .transaction(() => this.#s.deleteUpTo.all(upTo ?? Number.MAX_SAFE_INTEGER))
      .immediate();
    this.#removed(removed);
    return removed.length;
  }

  /** Removes messages past max_age and forgets consumers not seen for consumer_expiry. */
  sweep(nowMs: number, changes: InboxChanges): void {
    this.db
      .transaction(() => {
        const expired = this.#s.deleteBefore.all(nowMs - this.#limits.maxAgeMs);
        this.#removed(expired);
        changes.expired += expired.length;
        changes.consumersForgotten += this.#s.forgetUnseen.run(nowMs - this.#limits.consumerExpiryMs).changes;
        this.#prune();
      })
      .immediate();
  }

  stats(): InboxStats {
    return {
      messages: this.#messages,
      bytes: this.#bytes,
      oldestAtMs: this.#s.oldest.get()?.received_at ?? null,
      consumers: this.#s.consumerCount.get() ?? 0,
    };
  }

  /** Whether a message of `size` bytes fits, dropping the oldest to make room when the policy says so. */
  #makeRoom(size: number, changes: InboxChanges): boolean {
    const { maxMessages, maxBytes, whenFull } = this.#limits;
    if (size > maxBytes) return false;
    const fits = (): boolean => this.#messages + 1 <= maxMessages && this.#bytes + size <= maxBytes;
    if (whenFull === 'refuse') return fits();
    while (!fits()) {
      const oldest = this.#s.oldest.get();
      if (oldest === undefined) return false;
      this.#s.deleteOne.run(oldest.id);
      this.#messages--;
      this.#bytes -= oldest.size;
      changes.droppedOldest++;
    }
    return true;
  }

  /** Removes the messages every registered consumer has taken (none while no consumer is registered). */
  #prune(): void {
    const slowest = this.#s.slowest.get();
    if (slowest === null || slowest === undefined) return;
    this.#removed(this.#s.deleteUpTo.all(slowest));
  }

  #removed(rows: readonly { size: number }[]): void {
    this.#messages -= rows.length;
    for (const row of rows) this.#bytes -= row.size;
  }

  #reloadTotals(): void {
    const totals = this.#s.totals.get() ?? { messages: 0, bytes: 0 };
    this.#messages = totals.messages;
    this.#bytes = totals.bytes;
  }

  #infoOf(row: { name: string; taken_up_to: number; seen_at: number }): InboxConsumerInfo {
    return {
      name: row.name,
      takenUpTo: row.taken_up_to,
      waiting: this.#s.countAfter.get(row.taken_up_to) ?? 0,
      seenAtMs: row.seen_at,
    };
  }
}
