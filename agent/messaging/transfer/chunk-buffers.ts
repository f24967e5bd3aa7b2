// The buffers one attempt of a send reads its CHUNKs into. A CHUNK's payload may be kept by the channel (to
// send it again on another link) until its send settles, so a buffer comes back only then, and the next
// chunk is read into it: a window's worth of buffers, not a new megabyte (and its garbage) per chunk.

export class ChunkBuffers {
  readonly #bytes: number;
  readonly #free: Uint8Array[] = [];

  /** Buffers of `bytes` each. */
  constructor(bytes: number) {
    this.#bytes = bytes;
  }

  /** A buffer no one else holds; its contents are left over from before. */
  take(): Uint8Array {
    // Not zero filled: a chunk is written over whole before it is sent.
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#bytes);
  }

  /** `buffer` (one of ours) is no longer held by anyone. */
  give(buffer: Uint8Array): void {
    this.#free.push(buffer);
  }
}
