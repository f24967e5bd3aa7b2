// The file a sender sends, only ever read: chunk by chunk from wherever the receiver stands, and from the
// start again when a resume must hash what the receiver already holds. Its size and modification time tell
// whether it changed since the transfer began: the bytes of a resume, and of the whole file the hash at DONE
// covers, must be the bytes of that version.
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { TransferSourceError } from './errors.js';
import { hashFilePrefix } from './file-prefix.js';

/** What tells one version of a file from the next. */
export interface SourceVersion {
  size: number;
  mtimeMs: number;
}

/** Whether two readings are of one version of the file. */
export function isSameVersion(a: SourceVersion, b: SourceVersion): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** The size and modification time of `path` now; TransferSourceError when it is no regular file. */
export async function sourceVersion(hex: string, path: string): Promise<SourceVersion> {
  const info = await stat(path);
  if (!info.isFile()) throw new TransferSourceError(hex, `${path} is not a regular file`);
  return { size: info.size, mtimeMs: info.mtimeMs };
}

/** The file open for the chunks of one attempt. */
export class SourceFile {
  readonly #handle: FileHandle;
  readonly #size: number;

  private constructor(handle: FileHandle, size: number) {
    this.#handle = handle;
    this.#size = size;
  }

  /** Opens `path`, offered as `size` bytes. */
  static async open(path: string, size: number): Promise<SourceFile> {
    return new SourceFile(await open(path, 'r'), size);
  }

  /** Fills `buffer` from `offset`; rejects when the file ends first. */
  async read(buffer: Uint8Array, offset: number): Promise<void> {
    const length = buffer.length;
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.#handle.read(buffer, filled, length - filled, offset + filled);
      if (bytesRead === 0) throw new Error(`the file is shorter than the ${this.#size} bytes offered`);
      filled += bytesRead;
    }
  }

  /** A SHA-256 fed the first `length` bytes (a resume the sender cannot take up where its hash stands). */
  async hashPrefix(length: number): Promise<Hash> {
    const hash = createHash('sha256');
    await hashFilePrefix(this.#handle, length, hash);
    return hash;
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}
