// Typed errors of the durable message queue, and the mapping from SQLite / file-system failures to them.
// Callers branch on the class (or `code`), never on message text; a reliable message is never dropped
// silently: the enqueue throws one of these instead.
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { NearmeshError } from '../../core/errors.js';

/** Which bound an enqueue would have crossed. */
export type QueueBound = 'peer-messages' | 'peer-bytes' | 'total-messages' | 'total-bytes';

/** The queue is at one of its configured bounds; the message was not queued (the app must retry later). */
export class QueueFullError extends NearmeshError {
  constructor(
    readonly peer: string,
    readonly bound: QueueBound,
    /** The bound's value (messages or bytes, system reserve included when it applied). */
    readonly limit: number,
    /** What is queued now against that bound. */
    readonly current: number,
  ) {
    super(
      'queue-full',
      `message queue for peer ${peer} is full: ${bound} ${current} + this message would exceed ${limit}`,
    );
  }
}

/** Why storage failed: disk full, file or file system read-only, locked by another process, unopenable, I/O. */
export type QueueStorageProblem = 'full' | 'read-only' | 'busy' | 'cannot-open' | 'io';

/** The queue's file cannot be written (or opened); nothing was queued by the failing call. */
export class QueueStorageError extends NearmeshError {
  constructor(
    readonly path: string,
    readonly problem: QueueStorageProblem,
    /** The SQLite (e.g. SQLITE_FULL) or errno (e.g. EROFS) code behind it. */
    readonly causeCode: string,
    operation: string,
    options?: { cause?: unknown },
  ) {
    super(
      'queue-storage',
      `message queue ${path}: ${operation} failed: ${describe(problem)} (${causeCode})`,
      options,
    );
  }
}

/** The queue's file is not a SQLite database or is damaged. */
export class QueueCorruptError extends NearmeshError {
  constructor(
    readonly path: string,
    readonly causeCode: string,
    options?: { cause?: unknown },
  ) {
    super(
      'queue-corrupt',
      `message queue ${path} is corrupt (${causeCode}): stop the agent and move the file aside together with ` +
        `its -wal and -shm files (e.g. mv ${path} ${path}.corrupt); a new empty queue is created on the next ` +
        'start, and reliable messages still queued in the old file are not sent',
      options,
    );
  }
}

/** Any other queue failure: closed queue, unknown (newer) schema, SQLite module missing. */
export class QueueError extends NearmeshError {}

function describe(problem: QueueStorageProblem): string {
  switch (problem) {
    case 'full':
      return 'no space left (disk full or the configured maxFileBytes reached)';
    case 'read-only':
      return 'the file or its directory is read-only (file permissions, or the file system is mounted read-only)';
    case 'busy':
      return 'the database is locked by another process';
    case 'cannot-open':
      return 'the database file cannot be opened (missing directory, permissions, or a read-only directory)';
    case 'io':
      return 'an I/O error on the storage device';
  }
}

/** Maps a thrown SQLite or file-system error to a typed queue error; other errors are returned unchanged. */
export function toQueueError(error: unknown, path: string, operation: string): unknown {
  if (error instanceof NearmeshError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const options = { cause: error };
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new QueueCorruptError(path, code, options);
  }
  let problem = storageProblem(code);
  if (problem === undefined) {
    if (!code.startsWith('SQLITE_')) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new QueueError(
      'queue-sqlite',
      `message queue ${path}: ${operation} failed: ${message} (${code})`,
      options,
    );
  }
  // SQLite reports a write refused by a read-only mount as an I/O or can't-open error: ask the file system.
  if (problem === 'io' || problem === 'cannot-open' || problem === 'read-only') {
    const osCode = writeProbe(path);
    if (osCode === 'EROFS' || osCode === 'EACCES' || osCode === 'EPERM') problem = 'read-only';
    if (osCode !== undefined && osCode !== code) {
      return new QueueStorageError(path, problem, `${code}, ${osCode}`, operation, options);
    }
  }
  return new QueueStorageError(path, problem, code, operation, options);
}

/** The errno code that writing the queue file (or creating it in its nearest existing directory) fails with. */
function writeProbe(path: string): string | undefined {
  const probe = (target: string, mode: number): string | undefined => {
    try {
      accessSync(target, mode);
      return undefined;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return typeof code === 'string' ? code : 'unknown';
    }
  };
  const file = probe(path, constants.W_OK);
  if (file !== 'ENOENT') return file;
  let dir = dirname(path);
  while (probe(dir, constants.F_OK) === 'ENOENT' && dirname(dir) !== dir) dir = dirname(dir);
  return probe(dir, constants.W_OK | constants.X_OK);
}

function storageProblem(code: string): QueueStorageProblem | undefined {
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return 'read-only';
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'ENOENT' || code === 'ENOTDIR') return 'cannot-open';
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'io';
  return undefined;
}
