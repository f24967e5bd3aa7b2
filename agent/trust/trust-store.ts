// What an agent must remember across restarts to keep the mesh honest (PROTOCOL.md §2.1, §13.4-§13.6): the
// block of origin sequence numbers it has reserved, the highest sequence number it accepted from each
// origin (replay protection), the members it has met (their keys, and which id first announced each name),
// and the revocations it holds. One SQLite file in data_dir, in WAL mode. Writes are synchronous FULL (an fsync
// per commit: a reservation written is a reservation kept through a power cut), except the replay marks
// written in batches about once a second while traffic flows: those are NORMAL (no fsync on the event loop
// every second; a crash of the agent loses none, a power cut at most the last moments of them), and FULL
// when flushed before a message whose effect must not repeat. Members and names met are committed (FULL) at
// the end of the event-loop turn that met them, all of that turn's in one transaction: fifty peers meeting a
// hub at once cost it a few fsyncs, not a hundred. Every other write, and close(), commits them first, so
// the file takes writes in the order they were made.
// better-sqlite3 is imported lazily, as by the message queue.
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { syncDirectory } from '../core/durable-fs.js';
import { NearmeshError } from '../core/errors.js';
import { TurnBatch } from '../core/turn-batch.js';
import { MAX_MEMBERS } from '../identity/member-registry.js';

export const TRUST_STORE_FILE = 'trust.sqlite';
/** Origins whose replay mark is kept on disk; the longest unheard goes first. */
export const MAX_STORED_ORIGINS = 65_536;
/** Members (and name bindings) kept, as in memory (MemberRegistry); the first met goes first. */
export const MAX_STORED_MEMBERS = MAX_MEMBERS;
/** Member and name writes waiting for the end of the turn; the one that reaches this commits them at once. */
export const MAX_PENDING_MEMBER_WRITES = 256;
const SCHEMA_VERSION = 1;

export class TrustStoreError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('trust-store', message, options);
  }
}

export interface StoredMember {
  id: string;
  publicKey: Uint8Array | null;
  firstSeenMs: number;
  lastSeenMs: number;
}

export interface NameBinding {
  name: string;
  id: string;
  boundAtMs: number;
}

export interface TrustStoreOptions {
  /** A deferred write (members, names) that failed; its rows stay unwritten. Default: ignored. */
  onWriteError?: (error: unknown) => void;
}

type MemberWrite =
  | {
      readonly kind: 'member';
      readonly id: string;
      readonly publicKey: Uint8Array | null;
      readonly nowMs: number;
    }
  | { readonly kind: 'name'; readonly name: string; readonly id: string; readonly nowMs: number };

function prepareStatements(db: BetterSqlite3.Database) {
  return {
    meta: db.prepare<[string], number>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[string, number]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    replay: db.prepare<[string], number>('SELECT highest FROM replay WHERE origin = ?').pluck(),
    saveReplay: db.prepare<[string, number, number]>(
      `INSERT INTO replay (origin, highest, updated_ms) VALUES (?, ?, ?)
       ON CONFLICT (origin) DO UPDATE SET highest = max(highest, excluded.highest), updated_ms = excluded.updated_ms`,
    ),
    countReplay: db.prepare<[], number>('SELECT count(*) FROM replay').pluck(),
    pruneReplay: db.prepare<[number]>(
      'DELETE FROM replay WHERE origin IN (SELECT origin FROM replay ORDER BY updated_ms LIMIT ?)',
    ),
    members: db.prepare<
      [],
      { id: string; public_key: Buffer | null; first_seen_ms: number; last_seen_ms: number }
    >('SELECT id, public_key, first_seen_ms, last_seen_ms FROM members ORDER BY last_seen_ms'),
    saveMember: db.prepare<[string, Uint8Array | null, number, number]>(
      `INSERT INTO members (id, public_key, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET public_key = coalesce(members.public_key, excluded.public_key),
         last_seen_ms = max(members.last_seen_ms, excluded.last_seen_ms)`,
    ),
    countMembers: db.prepare<[], number>('SELECT count(*) FROM members').pluck(),
    pruneMembers: db.prepare<[number]>(
      'DELETE FROM members WHERE id IN (SELECT id FROM members ORDER BY last_seen_ms LIMIT ?)',
    ),
    names: db.prepare<[], { name: string; id: string; bound_ms: number }>(
      'SELECT name, id, bound_ms FROM names ORDER BY bound_ms',
    ),
    bindName: db.prepare<[string, string, number]>(
      'INSERT INTO names (name, id, bound_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
    ),
    unbindName: db.prepare<[string]>('DELETE FROM names WHERE name = ?'),
    countNames: db.prepare<[], number>('SELECT count(*) FROM names').pluck(),
    pruneNames: db.prepare<[number]>(
      'DELETE FROM names WHERE name IN (SELECT name FROM names ORDER BY bound_ms LIMIT ?)',
    ),
    revocations: db.prepare<[], Buffer>('SELECT entry FROM revocations ORDER BY added_ms').pluck(),
    addRevocation: db.prepare<[string, Uint8Array, number]>(
      'INSERT INTO revocations (revoked, entry, added_ms) VALUES (?, ?, ?) ON CONFLICT (revoked) DO NOTHING',
    ),
  };
}

export class TrustStore {
  readonly #db: BetterSqlite3.Database;
  readonly #s: ReturnType<typeof prepareStatements>;
  readonly #isFile: boolean;
  readonly #saveReplays: (marks: readonly (readonly [string, number])[], nowMs: number) => void;
  readonly #memberWrites: TurnBatch<MemberWrite>;

  /** Opens (creating with mode 0600) the store at `path`, or an in-memory one for ':memory:'. */
  static async open(path: string, options: TrustStoreOptions = {}): Promise<TrustStore> {
    let Database: typeof BetterSqlite3;
    try {
      Database = (await import('better-sqlite3')).default;
    } catch (error) {
      throw new TrustStoreError(`trust store ${path}: better-sqlite3 cannot be loaded: ${String(error)}`, {
        cause: error,
      });
    }
    let db: BetterSqlite3.Database | undefined;
    try {
      if (path !== ':memory:' && !existsSync(path)) {
        closeSync(openSync(path, 'wx', 0o600));
        await syncDirectory(dirname(path));
      }
      db = new Database(path, { timeout: 5000 });
      if (path !== ':memory:') {
        db.pragma('journal_mode = WAL');
        // Set after journal_mode, always: a reopened WAL file starts on NORMAL in better-sqlite3's build.
        db.pragma('synchronous = FULL');
      }
      migrate(db, path);
      return new TrustStore(db, path !== ':memory:', options);
    } catch (error) {
      db?.close();
      if (error instanceof TrustStoreError) throw error;
      throw new TrustStoreError(
        `trust store ${path}: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  private constructor(
    db: BetterSqlite3.Database,
    /** On disk (WAL, synchronous levels apply), not ':memory:'. */
    isFile: boolean,
    options: TrustStoreOptions,
  ) {
    this.#db = db;
    this.#isFile = isFile;
    const s = prepareStatements(db);
    this.#s = s;
    this.#saveReplays = db.transaction((marks: readonly (readonly [string, number])[], nowMs: number) => {
      for (const [origin, highest] of marks) s.saveReplay.run(origin, highest, nowMs);
      const excess = (s.countReplay.get() ?? 0) - MAX_STORED_ORIGINS;
      if (excess > 0) s.pruneReplay.run(excess);
    });
    const commitMemberWrites = db.transaction((writes: readonly MemberWrite[]) => {
      for (const write of writes) {
        if (write.kind === 'member') s.saveMember.run(write.id, write.publicKey, write.nowMs, write.nowMs);
        else s.bindName.run(write.name, write.id, write.nowMs);
      }
      const excessMembers = (s.countMembers.get() ?? 0) - MAX_STORED_MEMBERS;
      if (excessMembers > 0) s.pruneMembers.run(excessMembers);
      const excessNames = (s.countNames.get() ?? 0) - MAX_STORED_MEMBERS;
      if (excessNames > 0) s.pruneNames.run(excessNames);
    });
    this.#memberWrites = new TurnBatch({
      max: MAX_PENDING_MEMBER_WRITES,
      write: commitMemberWrites,
      onError: options.onWriteError ?? (() => undefined),
    });
  }

  /** Commits the members and names still waiting, then closes the file. */
  close(): void {
    this.#memberWrites.flush();
    this.#db.close();
  }

  /** The first origin sequence number not yet reserved (0 on a new store). */
  get reservedSequence(): number {
    return this.#s.meta.get('sequence_reserved') ?? 0;
  }

  /** Reserves sequence numbers below `limit` (durably, before any of them is used). */
  reserveSequence(limit: number): void {
    this.#memberWrites.flush();
    this.#s.setMeta.run('sequence_reserved', limit);
  }

  /** The highest sequence number accepted from `origin` before, if any is on disk. */
  replayMark(origin: string): number | undefined {
    return this.#s.replay.get(origin);
  }

  /** Records the highest accepted sequence numbers of several origins in one transaction (see the top). */
  saveReplayMarks(marks: readonly (readonly [string, number])[], durable = true, nowMs = Date.now()): void {
    if (marks.length === 0) return;
    this.#memberWrites.flush();
    if (durable || !this.#isFile) {
      this.#saveReplays(marks, nowMs);
      return;
    }
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#saveReplays(marks, nowMs);
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }

  members(): StoredMember[] {
    this.#memberWrites.flush();
    return this.#s.members.all().map((row) => ({
      id: row.id,
      publicKey: row.public_key === null ? null : Uint8Array.from(row.public_key),
      firstSeenMs: row.first_seen_ms,
      lastSeenMs: row.last_seen_ms,
    }));
  }

  /** Records a member met (with its key, once known); committed at the end of this turn (see the top). */
  saveMember(id: string, publicKey: Uint8Array | null, nowMs = Date.now()): void {
    // A copy: the caller's buffer may be reused before the end of the turn.
    const key = publicKey === null ? null : Uint8Array.from(publicKey);
    this.#memberWrites.add({ kind: 'member', id, publicKey: key, nowMs });
  }

  nameBindings(): NameBinding[] {
    this.#memberWrites.flush();
    return this.#s.names.all().map((row) => ({ name: row.name, id: row.id, boundAtMs: row.bound_ms }));
  }

  /**
   * Binds `name` to `id` unless it is bound already (the first id to announce a name keeps it); committed at
   * the end of this turn (see the top).
   */
  bindName(name: string, id: string, nowMs = Date.now()): void {
    this.#memberWrites.add({ kind: 'name', name, id, nowMs });
  }

  unbindName(name: string): boolean {
    this.#memberWrites.flush();
    return this.#s.unbindName.run(name).changes > 0;
  }

  /** Revocation entries as received (each verifies on its own), oldest first. */
  revocations(): Uint8Array[] {
    return this.#s.revocations.all().map((entry) => Uint8Array.from(entry));
  }

  addRevocation(revoked: string, entry: Uint8Array, nowMs = Date.now()): void {
    this.#memberWrites.flush();
    this.#s.addRevocation.run(revoked, entry, nowMs);
  }
}

function migrate(db: BetterSqlite3.Database, path: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
    const version = db.prepare<[], number>('SELECT version FROM schema_version').pluck().get();
    if (version !== undefined && version > SCHEMA_VERSION) {
      throw new TrustStoreError(
        `trust store ${path} has schema version ${version}, newer than this nearmesh understands (${SCHEMA_VERSION})`,
      );
    }
    if (version === SCHEMA_VERSION) return;
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      CREATE TABLE replay (origin TEXT PRIMARY KEY, highest INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
      CREATE TABLE members (
        id TEXT PRIMARY KEY,
        public_key BLOB,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE names (name TEXT PRIMARY KEY, id TEXT NOT NULL, bound_ms INTEGER NOT NULL) STRICT;
      CREATE TABLE revocations (revoked TEXT PRIMARY KEY, entry BLOB NOT NULL, added_ms INTEGER NOT NULL) STRICT;
      INSERT INTO schema_version (version) VALUES (${SCHEMA_VERSION});
    `);
  }).immediate();
}
