// The queue's SQLite schema, versioned: `schema_version` holds one row; each migration moves the file
// from version N-1 to N inside the opening write transaction, so a crash mid-migration leaves version N-1.
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { QueueError } from './queue-errors.js';

type Migration = (db: BetterSqlite3.Database) => void;

const MIGRATIONS: readonly Migration[] = [
  // 1: sender outbox with per-peer sequence numbers and counters, receiver de-duplication state.
  (db) => {
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      -- One row per peer ever sent to: last_seq survives acknowledgements (seqs never repeat),
      -- messages/bytes count what is still queued (kept in step with outbox in the same transaction).
      CREATE TABLE sender_peer (
        peer TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        bytes INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE outbox (
        peer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        system INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL,
        size INTEGER NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (peer, seq)
      ) STRICT;
      -- Receiver side: the highest seq handed to the app per sending peer (and that sender's epoch).
      CREATE TABLE receiver_peer (
        peer TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        last_delivered INTEGER NOT NULL
      ) STRICT;
    `);
    db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?)").run(randomBytes(8).toString('hex'));
  },
  // 2: the app inbox (reliable messages received, until every consumer has taken them) and its consumers.
  (db) => {
    db.exec(`
      CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        hops INTEGER NOT NULL,
        size INTEGER NOT NULL,
        payload BLOB NOT NULL
      ) STRICT;
      CREATE INDEX inbox_received_at ON inbox (received_at);
      -- A consumer's cursor: the id of the last message it took.
      CREATE TABLE inbox_consumer (
        name TEXT PRIMARY KEY,
        taken_up_to INTEGER NOT NULL,
        seen_at INTEGER NOT NULL
      ) STRICT;
    `);
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; refuses a file written by a newer nearmesh. */
export function migrate(db: BetterSqlite3.Database, path: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
    const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new QueueError(
        'queue-schema-newer',
        `message queue ${path} has schema version ${current}, newer than this nearmesh understands ` +
          `(${SCHEMA_VERSION}); upgrade nearmesh or move the file aside`,
      );
    }
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
      MIGRATIONS[version - 1]?.(db);
    }
    // Always a write, even when nothing changes: a read-only file (SQLite falls back to a read-only
    // connection, which can read a WAL file with its -shm) fails here, at open, not at the first enqueue.
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    else db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  }).immediate();
}
