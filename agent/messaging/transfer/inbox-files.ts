// The receiver's inbox on disk. While a file comes in, its bytes go to `<dir>/.<id>.part` and a sidecar
// `<dir>/.<id>.state.json` (who, what, how far) says how much of the part is safely held, so a link drop or
// an agent restart resumes from there. A verified part gets its name in the inbox (" (1)" style when taken)
// without ever replacing a file; parts no transfer has touched for long are swept. The protocol is not known
// here: the receiver says what to write, keep or remove, and when.
import type { Hash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  type FileHandle,
  link,
  open,
  readdir,
  readFile,
  rename,
  stat,
  statfs,
  unlink,
} from 'node:fs/promises';
import { extname, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { mkdirDurable, syncDirectory } from '../../core/durable-fs.js';
import { MAX_FILE_NAME_BYTES } from '../../protocol/transfer.js';
import { utf8Length } from '../../protocol/utf8.js';
import { hashFilePrefix } from './file-prefix.js';

/** The file-system calls a test (or an odd platform) may replace. */
export interface TransferReceiverFs {
  /** Free space of the file system holding `path` (as fs.statfs reports it). */
  statfs(path: string): Promise<{ bavail: number | bigint; bsize: number | bigint }>;
  /** Writes all of `bytes` at `position`. */
  write(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void>;
}

/** What a sidecar says: the file being received and how much of its part is on disk. */
export interface Sidecar {
  transferId: string;
  from: string;
  name: string;
  size: number;
  /** Bytes at the start of the part known to be on disk. */
  offset: number;
}

export interface InboxOptions {
  /** Where finished files appear. */
  dir: string;
  /** Mode of finished files. */
  fileMode: number;
  fs?: Partial<TransferReceiverFs>;
}

const SIDECAR_VERSION = 1;

/** A sidecar as it is on disk. */
type SidecarFile = Sidecar & { version: typeof SIDECAR_VERSION };

const SIDECAR_NAME = /^\.([0-9a-f]{32})\.state\.json$/;

/** The part file of a transfer being received, open for writing. */
export class PartFile {
  readonly #handle: FileHandle;
  readonly #write: TransferReceiverFs['write'];
  readonly #fileMode: number;

  constructor(handle: FileHandle, write: TransferReceiverFs['write'], fileMode: number) {
    this.#handle = handle;
    this.#write = write;
    this.#fileMode = fileMode;
  }

  /** Writes all of `bytes` at `position` (they must stay as they are until it settles). */
  write(bytes: Uint8Array, position: number): Promise<void> {
    return this.#write(this.#handle, bytes, position);
  }

  /** Flushes what was written to the disk (fdatasync), before a sidecar may say it is held. */
  sync(): Promise<void> {
    return this.#handle.datasync();
  }

  /** Flushes, gives the part the mode of a finished file, and closes it: ready to be placed. */
  async seal(): Promise<void> {
    await this.#handle.datasync();
    await this.#handle.chmod(this.#fileMode);
    await this.#handle.close();
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

/** The inbox directory of one receiver, and the files of the transfers coming into it. */
export class Inbox {
  readonly #dir: string;
  readonly #fileMode: number;
  readonly #fs: TransferReceiverFs;

  constructor(options: InboxOptions) {
    this.#dir = options.dir;
    this.#fileMode = options.fileMode;
    this.#fs = {
      statfs: options.fs?.statfs ?? ((path) => statfs(path)),
      write: options.fs?.write ?? writeAll,
    };
  }

  /** Creates the inbox directory if it is missing (durably: a power cut does not take it back). */
  async create(): Promise<void> {
    await mkdirDurable(this.#dir, 0o755);
  }

  /** Bytes free for us on the inbox's file system. */
  async freeBytes(): Promise<number> {
    const space = await this.#fs.statfs(this.#dir);
    return Number(space.bavail) * Number(space.bsize);
  }

  /**
   * Opens the part of `transferId`: a new empty one when `held` is 0, else the one already there, cut to
   * what it really holds (at most `held` bytes) and fed to `hash`. Returns it with the bytes it holds.
   */
  async openPart(transferId: string, held: number, hash: Hash): Promise<{ part: PartFile; held: number }> {
    const path = this.#partPath(transferId);
    let handle: FileHandle | undefined;
    try {
      let holds = held;
      // A sweep may have taken the part but not yet its sidecar (each ages by its own mtime): start afresh.
      if (held > 0)
        handle = await open(path, constants.O_RDWR | constants.O_NOFOLLOW).catch(missingAsUndefined);
      if (handle !== undefined) {
        const size = (await handle.stat()).size;
        holds = Math.min(held, size);
        await handle.truncate(holds);
        await hashFilePrefix(handle, holds, hash);
      } else {
        handle = await open(
          path,
          constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
          0o600,
        );
        // The part's name must outlive a power cut before a sidecar says it holds bytes.
        await syncDirectory(this.#dir);
      }
      return { part: new PartFile(handle, this.#fs.write, this.#fileMode), held: holds };
    } catch (error) {
      await handle?.close().catch(() => {});
      throw error;
    }
  }

  /**
   * The sidecar of `transferId`: 'none' when there is none (or it cannot be read), 'corrupt' when it does
   * not say what a sidecar says (it and its part are then removed).
   */
  async readSidecar(transferId: string): Promise<Sidecar | 'none' | 'corrupt'> {
    let text: string;
    try {
      text = await readFile(this.#sidecarPath(transferId), 'utf8');
    } catch {
      return 'none';
    }
    const sidecar = parseSidecar(text, transferId);
    if (sidecar === undefined) {
      await this.remove(transferId);
      return 'corrupt';
    }
    return sidecar;
  }

  /** Every readable sidecar in the inbox: the transfers in progress or parked, and who sends them. */
  async sidecars(): Promise<Sidecar[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return [];
    }
    const sidecars: Sidecar[] = [];
    for (const name of names) {
      const transferId = SIDECAR_NAME.exec(name)?.[1];
      if (transferId === undefined) continue;
      // Read only: one that is corrupt is removed when its own transfer comes back (readSidecar).
      const text = await readFile(join(this.#dir, name), 'utf8').catch(() => undefined);
      const sidecar = text === undefined ? undefined : parseSidecar(text, transferId);
      if (sidecar !== undefined) sidecars.push(sidecar);
    }
    return sidecars;
  }

  /** Replaces the sidecar atomically (after the part's bytes it counts were synced). */
  async writeSidecar(sidecar: Sidecar): Promise<void> {
    const { transferId, from, name, size, offset } = sidecar;
    const file: SidecarFile = { version: SIDECAR_VERSION, transferId, from, name, size, offset };
    const text = JSON.stringify(file);
    await writeFileAtomic(this.#sidecarPath(transferId), `${text}\n`, 0o600);
  }

  async removeSidecar(transferId: string): Promise<void> {
    await unlink(this.#sidecarPath(transferId)).catch(() => {});
  }

  /** Removes the part and the sidecar of `transferId`, whichever exist. */
  async remove(transferId: string): Promise<void> {
    await unlink(this.#partPath(transferId)).catch(() => {});
    await this.removeSidecar(transferId);
  }

  /**
   * Gives the sealed part of `transferId` its name in the inbox, `name` or "name (n).ext" when taken,
   * without ever replacing a file (a hard link, then the part is unlinked). Returns the file's path.
   */
  async place(transferId: string, name: string): Promise<string> {
    const partPath = this.#partPath(transferId);
    for (let n = 0; n < 1000; n++) {
      const target = join(this.#dir, n === 0 ? name : numbered(name, n));
      try {
        await link(partPath, target);
        await unlink(partPath).catch(() => {});
        // Placed for good before the sender is told: a power cut must not take the name back.
        await syncDirectory(this.#dir);
        return target;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EEXIST') continue;
        if (
          code !== 'EPERM' &&
          code !== 'ENOTSUP' &&
          code !== 'EOPNOTSUPP' &&
          code !== 'ENOSYS' &&
          code !== 'EMLINK'
        ) {
          throw error;
        }
        // No hard links here (e.g. FAT): check, then rename (a tiny window, but only our own process writes here).
        if (await exists(target)) continue;
        await rename(partPath, target);
        await syncDirectory(this.#dir);
        return target;
      }
    }
    throw new Error(`no free name for ${name} in ${this.#dir}`);
  }

  /**
   * Removes parts and sidecars untouched for `maxAgeMs`, except those of transfers `inUse` says are being
   * handled. Returns how many files went.
   */
  async sweep(maxAgeMs: number, now: number, inUse: (transferId: string) => boolean): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const match = /^\.([0-9a-f]{32})\.(part|state\.json)$/.exec(name);
      if (match === null || inUse(match[1] as string)) continue;
      const path = join(this.#dir, name);
      try {
        if (now - (await stat(path)).mtimeMs < maxAgeMs) continue;
        await unlink(path);
        removed += 1;
      } catch {
        // Gone meanwhile.
      }
    }
    return removed;
  }

  #partPath(transferId: string): string {
    return join(this.#dir, `.${transferId}.part`);
  }

  #sidecarPath(transferId: string): string {
    return join(this.#dir, `.${transferId}.state.json`);
  }
}

/** The sidecar of `transferId` in `text`, or undefined when it does not say what a sidecar says. */
function parseSidecar(text: string, transferId: string): Sidecar | undefined {
  let value: Partial<SidecarFile>;
  try {
    value = JSON.parse(text) as Partial<SidecarFile>;
  } catch {
    return undefined;
  }
  const valid =
    value !== null &&
    typeof value === 'object' &&
    value.version === SIDECAR_VERSION &&
    value.transferId === transferId &&
    typeof value.from === 'string' &&
    typeof value.name === 'string' &&
    Number.isSafeInteger(value.size) &&
    Number.isSafeInteger(value.offset) &&
    (value.offset as number) >= 0 &&
    (value.offset as number) <= (value.size as number);
  return valid ? (value as Sidecar) : undefined;
}

/** "photo.jpg" → "photo (2).jpg", shortened if needed to stay within MAX_FILE_NAME_BYTES. */
export function numbered(name: string, n: number): string {
  let extension = extname(name);
  let base = name.slice(0, name.length - extension.length);
  if (base === '') {
    base = extension;
    extension = '';
  }
  // An extension too long to keep next to the number is dropped.
  if (utf8Length(` (${n})${extension}`) + 1 > MAX_FILE_NAME_BYTES) extension = '';
  const suffix = ` (${n})${extension}`;
  const chars = [...base];
  while (chars.length > 1 && utf8Length(chars.join('') + suffix) > MAX_FILE_NAME_BYTES) chars.pop();
  return chars.join('') + suffix;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A file that is not there is undefined; any other failure is thrown on. */
function missingAsUndefined(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw error;
}
