// Frames on a byte stream (the Wi-Fi TCP link): a 4-byte big-endian length, then that many bytes.
// The decoder is incremental and never trusts the peer: a length is checked before its body is buffered.
import { FrameTooLargeError } from '../../agent/core/errors.js';

export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20;
/** The largest length the 4-byte header can carry. */
export const MAX_ENCODABLE_FRAME_BYTES = 0xffff_ffff;

export function encodeFrameHeader(lengthBytes: number): Uint8Array {
  if (!Number.isInteger(lengthBytes) || lengthBytes < 0 || lengthBytes > MAX_ENCODABLE_FRAME_BYTES) {
    throw new RangeError(`frame length ${lengthBytes} does not fit a 4-byte header`);
  }
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, lengthBytes, false);
  return header;
}

/** Header and body (whole or in parts) in one new buffer: for small frames (large ones are not copied). */
export function encodeFrame(frame: Uint8Array | readonly Uint8Array[]): Uint8Array {
  const parts = frame instanceof Uint8Array ? [frame] : frame;
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  out.set(encodeFrameHeader(length), 0);
  let offset = FRAME_HEADER_BYTES;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function checkMaxFrameBytes(maxFrameBytes: number): number {
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_ENCODABLE_FRAME_BYTES) {
    throw new RangeError(
      `maxFrameBytes must be an integer in 0..${MAX_ENCODABLE_FRAME_BYTES}, got ${maxFrameBytes}`,
    );
  }
  return maxFrameBytes;
}

export interface FrameDecodeResult {
  /** Whole frames completed by this chunk, in order. They may share memory with pushed chunks. */
  frames: Uint8Array[];
  /** Set once the stream announced an oversized frame; the decoder then stays failed. */
  error?: FrameTooLargeError;
}

export interface FrameDecoderOptions {
  maxFrameBytes?: number;
}

/**
 * Incremental parser: push() socket chunks as they come, get back the frames they complete.
 * Keeps a list of chunks instead of concatenating, so each byte is copied at most once (and not at
 * all when a frame lies inside one chunk). Buffered memory stays below maxFrameBytes + one chunk.
 * Callers must not modify a chunk after pushing it: returned frames may be views into it.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  readonly #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #headOffset = 0;
  #bufferedBytes = 0;
  /** Body length announced by the last header, or undefined while waiting for a header. */
  #bodyBytes: number | undefined;
  #error: FrameTooLargeError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  }

  /** Bytes received but not yet returned as a frame (a partial header or body). */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  get error(): FrameTooLargeError | undefined {
    return this.#error;
  }

  push(chunk: Uint8Array): FrameDecodeResult {
    const frames: Uint8Array[] = [];
    if (this.#error) return { frames, error: this.#error };
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#bufferedBytes += chunk.length;
    }
    for (;;) {
      if (this.#bodyBytes === undefined) {
        if (this.#bufferedBytes < FRAME_HEADER_BYTES) break;
        const length = this.#readHeader();
        if (length > this.maxFrameBytes) {
          // Drop what we hold: the stream is unusable after a bad length, and a hostile peer must
          // not make us keep (or allocate) anything more.
          this.#error = new FrameTooLargeError(length, this.maxFrameBytes);
          this.#chunks.length = 0;
          this.#headOffset = 0;
          this.#bufferedBytes = 0;
          return { frames, error: this.#error };
        }
        this.#bodyBytes = length;
      }
      if (this.#bufferedBytes < this.#bodyBytes) break;
      frames.push(this.#take(this.#bodyBytes));
      this.#bodyBytes = undefined;
    }
    return { frames };
  }

  #readHeader(): number {
    let length = 0;
    for (let i = 0; i < FRAME_HEADER_BYTES; i++) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) throw new Error('unreachable: header bytes counted but missing');
      length = length * 256 + (chunk[this.#headOffset] ?? 0);
      this.#advance(1);
    }
    return length;
  }

  /** Consumes n buffered bytes (n <= what the head chunk has left, or 1 for header reads). */
  #advance(n: number): void {
    this.#headOffset += n;
    this.#bufferedBytes -= n;
    const head = this.#chunks[0];
    if (head !== undefined && this.#headOffset === head.length) {
      this.#chunks.shift();
      this.#headOffset = 0;
    }
  }

  #take(n: number): Uint8Array {
    const head = this.#chunks[0];
    if (n === 0 || head === undefined) return new Uint8Array(0);
    if (head.length - this.#headOffset >= n) {
      // Common case: the frame lies inside one chunk; hand out a view, no copy.
      const frame = head.subarray(this.#headOffset, this.#headOffset + n);
      this.#advance(n);
      return frame;
    }
    // Every byte is written below, so skip the zero-fill (it costs as much as the copy for bulk frames).
    const frame = new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
    let filled = 0;
    let used = 0;
    for (const chunk of this.#chunks) {
      const start = used === 0 ? this.#headOffset : 0;
      const count = Math.min(chunk.length - start, n - filled);
      frame.set(chunk.subarray(start, start + count), filled);
      filled += count;
      if (start + count < chunk.length) {
        this.#headOffset = start + count;
        break;
      }
      used++;
      this.#headOffset = 0;
      if (filled === n) break;
    }
    // One splice per frame, not one shift per chunk: a frame split in many tiny chunks stays linear.
    this.#chunks.splice(0, used);
    this.#bufferedBytes -= n;
    return frame;
  }
}
