// BLE link framing (PROTOCOL.md §12.1): a link frame cut into fragments that each fit one ATT PDU, and
// put back together. Pure and I/O-free; the GATT link feeds it, as tcp-link feeds wifi/framing.ts.
import { FrameTooLargeError } from '../../agent/core/errors.js';
import { FragmentError } from './errors.js';

/** ATT opcode (1) + attribute handle (2): what a Write Command or a Notification spends of the MTU. */
export const ATT_HEADER_BYTES = 3;
/** The ATT MTU every LE link starts with, and keeps when no exchange raises it. */
export const DEFAULT_ATT_MTU = 23;
/** The smallest fragment a BLE link carries: the payload of one PDU at the default MTU. */
export const MIN_FRAGMENT_BYTES = DEFAULT_ATT_MTU - ATT_HEADER_BYTES;
export const DEFAULT_BLE_MAX_FRAME_BYTES = 64 * 1024;
/**
 * The largest limit a reassembler accepts: 16 MiB, the message-layer ceiling (PROTOCOL.md §3), far above what
 * BLE needs. The limit is what one start fragment may make us allocate, so even a misconfiguration stays sane.
 */
export const MAX_REASSEMBLY_FRAME_BYTES = 16 * 1024 * 1024;
/** How long a frame may stay incomplete with no fragment arriving. */
export const DEFAULT_REASSEMBLY_TIMEOUT_MS = 10_000;

/** Every fragment starts with one header byte: start bit, reserved bit, 6-bit sequence number. */
export const CONTINUATION_HEADER_BYTES = 1;
/** Header byte plus the frame length as a 1–5 byte varint; 1 + 3 covers every frame up to 2 MiB − 1. */
export const MAX_START_HEADER_BYTES = 6;
/** The largest frame length the 5-byte varint is allowed to declare (the TCP header's limit too). */
export const MAX_FRAGMENTED_FRAME_BYTES = 0xffff_ffff;
/** Sequence numbers count fragments of a link direction modulo this. */
export const SEQUENCE_MODULUS = 64;

const START_BIT = 0x80;
const RESERVED_BIT = 0x40;
const SEQUENCE_MASK = 0x3f;
const VARINT_MORE = 0x80;

/** The fragment size a link of the given ATT MTU carries. Throws FragmentError below the default MTU. */
export function maxFragmentBytesForMtu(attMtu: number): number {
  return checkMaxFragmentBytes(attMtu - ATT_HEADER_BYTES);
}

/** Bytes of the frame-length varint: 7 bits per byte. */
export function lengthVarintBytes(frameBytes: number): number {
  let count = 1;
  for (let rest = Math.floor(frameBytes / 128); rest > 0; rest = Math.floor(rest / 128)) count++;
  return count;
}

/** Header bytes of the first fragment of a frame of this length. */
export function startHeaderBytes(frameBytes: number): number {
  return CONTINUATION_HEADER_BYTES + lengthVarintBytes(frameBytes);
}

/** How many fragments a frame of this length takes; at least 1 (a zero-length frame is one start fragment). */
export function fragmentCount(frameBytes: number, maxFragmentBytes: number): number {
  checkMaxFragmentBytes(maxFragmentBytes);
  const firstPayloadBytes = maxFragmentBytes - startHeaderBytes(frameBytes);
  const restBytes = Math.max(0, frameBytes - firstPayloadBytes);
  return 1 + Math.ceil(restBytes / (maxFragmentBytes - CONTINUATION_HEADER_BYTES));
}

/**
 * Cuts one frame (whole, or as parts whose concatenation is the frame, as FrameLink.send() takes it) into
 * fragments of at most maxFragmentBytes. Sequence numbers run from firstSequence on, modulo 64; a link
 * direction numbers all its fragments in one run from 0, which FrameFragmenter keeps track of.
 * Throws FragmentError('fragment-size') when maxFragmentBytes < 20: that link cannot carry nearmesh.
 */
export function fragmentFrame(
  frame: Uint8Array | readonly Uint8Array[],
  maxFragmentBytes: number,
  firstSequence = 0,
): Uint8Array[] {
  checkMaxFragmentBytes(maxFragmentBytes);
  if (!Number.isInteger(firstSequence) || firstSequence < 0 || firstSequence >= SEQUENCE_MODULUS) {
    throw new RangeError(
      `firstSequence must be an integer in 0..${SEQUENCE_MODULUS - 1}, got ${firstSequence}`,
    );
  }
  const parts = frame instanceof Uint8Array ? [frame] : frame;
  const frameBytes = totalLength(parts);
  if (frameBytes > MAX_FRAGMENTED_FRAME_BYTES) {
    throw new FrameTooLargeError(frameBytes, MAX_FRAGMENTED_FRAME_BYTES);
  }
  const count = fragmentCount(frameBytes, maxFragmentBytes);
  const fragments: Uint8Array[] = [];
  let remainingBytes = frameBytes;
  let partIndex = 0;
  let partOffset = 0;
  for (let i = 0; i < count; i++) {
    const headerBytes = i === 0 ? startHeaderBytes(frameBytes) : CONTINUATION_HEADER_BYTES;
    const payloadBytes = Math.min(remainingBytes, maxFragmentBytes - headerBytes);
    const fragment = new Uint8Array(headerBytes + payloadBytes);
    fragment[0] = (i === 0 ? START_BIT : 0) | ((firstSequence + i) % SEQUENCE_MODULUS);
    if (i === 0) writeLengthVarint(fragment, frameBytes);
    let filled = headerBytes;
    while (filled < fragment.length) {
      const part = parts[partIndex];
      if (part === undefined) throw new Error('unreachable: frame parts shorter than their total length');
      const copyBytes = Math.min(part.length - partOffset, fragment.length - filled);
      fragment.set(part.subarray(partOffset, partOffset + copyBytes), filled);
      filled += copyBytes;
      partOffset += copyBytes;
      if (partOffset === part.length) {
        partIndex++;
        partOffset = 0;
      }
    }
    remainingBytes -= payloadBytes;
    fragments.push(fragment);
  }
  return fragments;
}

export interface FrameFragmenterOptions {
  maxFrameBytes?: number;
}

/** The sending half of a link direction: enforces the frame limit and numbers fragments across frames. */
export class FrameFragmenter {
  readonly maxFrameBytes: number;
  #nextSequence = 0;

  constructor(options: FrameFragmenterOptions = {}) {
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_BLE_MAX_FRAME_BYTES);
  }

  /** The sequence number the next fragment will carry. */
  get nextSequence(): number {
    return this.#nextSequence;
  }

  /**
   * Fragments of one frame, to be sent in order and all of them: skipping one breaks the link, as a loss would.
   * Throws FrameTooLargeError over maxFrameBytes (as FrameLink.send() must), FragmentError for a bad size.
   */
  fragment(frame: Uint8Array | readonly Uint8Array[], maxFragmentBytes: number): Uint8Array[] {
    const frameBytes = totalLength(frame instanceof Uint8Array ? [frame] : frame);
    if (frameBytes > this.maxFrameBytes) throw new FrameTooLargeError(frameBytes, this.maxFrameBytes);
    const fragments = fragmentFrame(frame, maxFragmentBytes, this.#nextSequence);
    this.#nextSequence = (this.#nextSequence + fragments.length) % SEQUENCE_MODULUS;
    return fragments;
  }
}

/** A reassembly failure: the link must close. Oversize is FrameTooLargeError, as the FrameLink contract says. */
export type ReassemblyError = FragmentError | FrameTooLargeError;

export interface ReassemblyResult {
  /** The frame this fragment completed, if any (0 or 1). It may be a view into the pushed fragment. */
  frames: Uint8Array[];
  /** Set once reassembly failed; the reassembler then stays failed and returns no more frames. */
  error?: ReassemblyError;
}

export interface FragmentReassemblerOptions {
  maxFrameBytes?: number;
  timeoutMs?: number;
}

/**
 * The receiving half of a link direction: push() each fragment as it arrives (one GATT write or notification),
 * get back the frames it completes. Checks the declared length against maxFrameBytes before allocating; holds at
 * most one frame. Never throws, whatever the bytes. Do not modify a fragment after pushing it.
 */
export class FragmentReassembler {
  readonly maxFrameBytes: number;
  readonly timeoutMs: number;
  #expectedSequence = 0;
  /** The frame being filled, allocated at its start fragment; undefined between frames. */
  #frame: Uint8Array | undefined;
  #filledBytes = 0;
  #lastFragmentMs = 0;
  #error: ReassemblyError | undefined;

  constructor(options: FragmentReassemblerOptions = {}) {
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_BLE_MAX_FRAME_BYTES;
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_REASSEMBLY_FRAME_BYTES) {
      throw new RangeError(
        `maxFrameBytes must be an integer in 0..${MAX_REASSEMBLY_FRAME_BYTES}, got ${maxFrameBytes}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_REASSEMBLY_TIMEOUT_MS;
    if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
      throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
    }
    this.maxFrameBytes = maxFrameBytes;
    this.timeoutMs = timeoutMs;
  }

  get error(): ReassemblyError | undefined {
    return this.#error;
  }

  /** Bytes of the incomplete frame received so far (0 between frames). */
  get bufferedBytes(): number {
    return this.#frame === undefined ? 0 : this.#filledBytes;
  }

  /** When the incomplete frame times out, for a timer; undefined between frames or once failed. */
  get deadlineMs(): number | undefined {
    return this.#frame === undefined ? undefined : this.#lastFragmentMs + this.timeoutMs;
  }

  push(fragment: Uint8Array, nowMs: number): ReassemblyResult {
    const timedOut = this.checkTimeout(nowMs);
    if (timedOut) return { frames: [], error: timedOut };
    const frame = this.#accept(fragment, nowMs);
    if (this.#error) return { frames: [], error: this.#error };
    return { frames: frame === undefined ? [] : [frame] };
  }

  /** Fails the reassembler if a frame has waited longer than timeoutMs for its next fragment; returns the error. */
  checkTimeout(nowMs: number): ReassemblyError | undefined {
    if (
      this.#error === undefined &&
      this.#frame !== undefined &&
      nowMs - this.#lastFragmentMs > this.timeoutMs
    ) {
      this.#fail(
        new FragmentError(
          'timeout',
          `frame incomplete at ${this.#filledBytes}/${this.#frame.length} bytes, no fragment for ${nowMs - this.#lastFragmentMs} ms`,
        ),
      );
    }
    return this.#error;
  }

  /** Takes one fragment; returns the frame it completes, or undefined (check #error). */
  #accept(fragment: Uint8Array, nowMs: number): Uint8Array | undefined {
    const header = fragment[0];
    if (header === undefined) return this.#fail(new FragmentError('empty', 'a fragment of 0 bytes'));
    if ((header & RESERVED_BIT) !== 0) {
      return this.#fail(
        new FragmentError('bad-header', `reserved bit set in header byte ${hexByte(header)}`),
      );
    }
    const sequence = header & SEQUENCE_MASK;
    if (sequence !== this.#expectedSequence) {
      return this.#fail(
        new FragmentError(
          'sequence-gap',
          `expected sequence ${this.#expectedSequence}, got ${sequence}: a fragment was lost or duplicated`,
        ),
      );
    }
    this.#expectedSequence = (sequence + 1) % SEQUENCE_MODULUS;
    return (header & START_BIT) !== 0
      ? this.#acceptStart(fragment, nowMs)
      : this.#acceptContinuation(fragment, nowMs);
  }

  #acceptStart(fragment: Uint8Array, nowMs: number): Uint8Array | undefined {
    if (this.#frame !== undefined) {
      return this.#fail(
        new FragmentError(
          'unexpected-start',
          `a new frame starts while ${this.#frame.length - this.#filledBytes} bytes of the previous one are missing`,
        ),
      );
    }
    const declared = readLengthVarint(fragment);
    if (declared === undefined) {
      return this.#fail(
        new FragmentError('bad-header', 'frame length truncated, not minimal or over 2^32 - 1'),
      );
    }
    const { frameBytes, headerBytes } = declared;
    // Checked before anything is allocated: a hostile length costs us nothing.
    if (frameBytes > this.maxFrameBytes)
      return this.#fail(new FrameTooLargeError(frameBytes, this.maxFrameBytes));
    const payload = fragment.subarray(headerBytes);
    if (payload.length > frameBytes) {
      return this.#fail(
        new FragmentError(
          'overrun',
          `start fragment carries ${payload.length} bytes of a ${frameBytes}-byte frame`,
        ),
      );
    }
    if (payload.length === frameBytes) return payload; // the whole frame in one fragment: no copy
    if (payload.length === 0) {
      return this.#fail(
        new FragmentError('empty', `start fragment of a ${frameBytes}-byte frame carries no bytes`),
      );
    }
    this.#frame = new Uint8Array(frameBytes);
    this.#frame.set(payload, 0);
    this.#filledBytes = payload.length;
    this.#lastFragmentMs = nowMs;
    return undefined;
  }

  #acceptContinuation(fragment: Uint8Array, nowMs: number): Uint8Array | undefined {
    const frame = this.#frame;
    if (frame === undefined) {
      return this.#fail(new FragmentError('no-start', 'a continuation fragment with no frame in progress'));
    }
    const payload = fragment.subarray(CONTINUATION_HEADER_BYTES);
    const missingBytes = frame.length - this.#filledBytes;
    if (payload.length === 0) {
      return this.#fail(new FragmentError('empty', 'a continuation fragment carries no bytes'));
    }
    if (payload.length > missingBytes) {
      return this.#fail(
        new FragmentError(
          'overrun',
          `fragment carries ${payload.length} bytes, the frame misses ${missingBytes}`,
        ),
      );
    }
    frame.set(payload, this.#filledBytes);
    this.#filledBytes += payload.length;
    this.#lastFragmentMs = nowMs;
    if (this.#filledBytes < frame.length) return undefined;
    this.#frame = undefined;
    this.#filledBytes = 0;
    return frame;
  }

  /** Records the first failure and drops the partial frame: nothing after a failure can be trusted. */
  #fail(error: ReassemblyError): undefined {
    this.#error ??= error;
    this.#frame = undefined;
    this.#filledBytes = 0;
    return undefined;
  }
}

function checkMaxFragmentBytes(maxFragmentBytes: number): number {
  if (!Number.isInteger(maxFragmentBytes) || maxFragmentBytes < MIN_FRAGMENT_BYTES) {
    throw new FragmentError(
      'fragment-size',
      `fragments must hold at least ${MIN_FRAGMENT_BYTES} bytes (ATT MTU ${DEFAULT_ATT_MTU} - ${ATT_HEADER_BYTES}), got ${maxFragmentBytes}`,
    );
  }
  return maxFragmentBytes;
}

function checkMaxFrameBytes(maxFrameBytes: number): number {
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_FRAGMENTED_FRAME_BYTES) {
    throw new RangeError(
      `maxFrameBytes must be an integer in 0..${MAX_FRAGMENTED_FRAME_BYTES}, got ${maxFrameBytes}`,
    );
  }
  return maxFrameBytes;
}

function totalLength(parts: readonly Uint8Array[]): number {
  let length = 0;
  for (const part of parts) length += part.length;
  return length;
}

/** Big-endian base-128 after the header byte: high bit set on every byte but the last. */
function writeLengthVarint(fragment: Uint8Array, frameBytes: number): void {
  const count = lengthVarintBytes(frameBytes);
  let rest = frameBytes;
  for (let i = count; i >= 1; i--) {
    fragment[i] = (rest % 128) | (i === count ? 0 : VARINT_MORE);
    rest = Math.floor(rest / 128);
  }
}

/** The declared frame length and where the payload starts, or undefined for a bad varint. */
function readLengthVarint(fragment: Uint8Array): { frameBytes: number; headerBytes: number } | undefined {
  // A leading 0x80 would be a zero group: refused, so every length has exactly one encoding.
  if (fragment[1] === VARINT_MORE) return undefined;
  let frameBytes = 0;
  for (let i = 1; i < Math.min(fragment.length, MAX_START_HEADER_BYTES); i++) {
    const byte = fragment[i] ?? 0;
    frameBytes = frameBytes * 128 + (byte & 0x7f);
    if ((byte & VARINT_MORE) === 0) {
      return frameBytes > MAX_FRAGMENTED_FRAME_BYTES ? undefined : { frameBytes, headerBytes: i + 1 };
    }
  }
  return undefined;
}

function hexByte(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}
