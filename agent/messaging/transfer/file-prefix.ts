// A file's first bytes fed to a hash, a megabyte at a time: a transfer resumed after a restart takes its
// SHA-256 up where the file stands (the receiver's part file, the sender's source).
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

const READ_BYTES = 1024 * 1024;

/** Feeds the first `length` bytes of the file to `hash`; rejects when the file is shorter. */
export async function hashFilePrefix(handle: FileHandle, length: number, hash: Hash): Promise<void> {
  const buffer = new Uint8Array(Math.min(length, READ_BYTES) || 1);
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) throw new Error(`the file is shorter than the ${length} bytes to hash`);
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}
