// A strict structural pass over untrusted CBOR before cbor-x sees it: well-formedness, the subset the
// protocol allows, and the major type of each envelope element (cbor-x maps 1 and 1.0 to the same number).
import type { DecodeErrorReason } from './errors.js';

/** Nesting limit: the v1 envelope needs 2 levels (CLOSE body); the rest is headroom for later fields. */
export const MAX_NESTING_DEPTH = 16;

export const MAJOR_UINT = 0;
export const MAJOR_NEGINT = 1;
export const MAJOR_BYTES = 2;
export const MAJOR_TEXT = 3;
export const MAJOR_ARRAY = 4;
export const MAJOR_MAP = 5;
export const MAJOR_TAG = 6;
export const MAJOR_SIMPLE = 7;

/** Major type of one element of the top-level array, and of its elements when it is an array itself. */
export interface ScannedElement {
  readonly major: number;
  readonly children?: readonly number[];
}

export type ScanResult =
  | { readonly ok: true; readonly topMajor: number; readonly elements: readonly ScannedElement[] }
  | { readonly ok: false; readonly reason: DecodeErrorReason; readonly detail: string };

class ScanFailure {
  constructor(
    readonly reason: DecodeErrorReason,
    readonly detail: string,
  ) {}
}

// fatal: invalid UTF-8 must be rejected, not silently turned into U+FFFD (cbor-x would do the latter).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Checks that `bytes` is exactly one well-formed CBOR item within the protocol's subset. Never throws.
 * Every declared length is checked against the bytes that remain, so a hostile header cannot make
 * anything allocate more than the input size.
 */
export function scanCbor(bytes: Uint8Array): ScanResult {
  const scanner = new Scanner(bytes);
  try {
    const result = scanner.scanTop();
    if (scanner.pos !== bytes.length) {
      return {
        ok: false,
        reason: 'trailing-bytes',
        detail: `${bytes.length - scanner.pos} bytes after the item`,
      };
    }
    return { ok: true, ...result };
  } catch (error) {
    if (error instanceof ScanFailure) return { ok: false, reason: error.reason, detail: error.detail };
    return {
      ok: false,
      reason: 'not-cbor',
      detail: error instanceof Error ? error.message : 'non-Error thrown',
    };
  }
}

/**
 * The hdr value if `bytes` starts like an envelope (definite array, first element a uint), else undefined.
 * Read before the full scan so a later version that uses CBOR features v1 forbids still gets a clear
 * 'unsupported-version' rather than a confusing structural error.
 */
export function peekHeader(bytes: Uint8Array): number | undefined {
  const scanner = new Scanner(bytes);
  try {
    if (scanner.readHead() !== MAJOR_ARRAY || scanner.indefinite || scanner.arg < 1) return undefined;
    if (scanner.readHead() !== MAJOR_UINT) return undefined;
    return scanner.arg;
  } catch {
    return undefined;
  }
}

class Scanner {
  pos = 0;
  // The last head read. Fields rather than a returned object: this runs for every item of every frame.
  major = 0;
  info = 0;
  arg = 0;
  indefinite = false;

  constructor(private readonly bytes: Uint8Array) {}

  scanTop(): { topMajor: number; elements: ScannedElement[] } {
    this.readHead();
    const topMajor = this.major;
    const elements: ScannedElement[] = [];
    if (topMajor !== MAJOR_ARRAY || this.indefinite) {
      this.skipBody(1);
      return { topMajor, elements };
    }
    const count = this.checkCount(this.arg, 1);
    for (let i = 0; i < count; i++) {
      this.readHead();
      const major = this.major;
      if (major === MAJOR_ARRAY && !this.indefinite) {
        const childCount = this.checkCount(this.arg, 1);
        const children: number[] = [];
        for (let j = 0; j < childCount; j++) {
          this.readHead();
          children.push(this.major);
          this.skipBody(3);
        }
        elements.push({ major, children });
      } else {
        this.skipBody(2);
        elements.push({ major });
      }
    }
    return { topMajor, elements };
  }

  /** Reads an initial byte and its argument into major/info/arg/indefinite; returns the major type. */
  readHead(): number {
    const bytes = this.bytes;
    if (this.pos >= bytes.length) throw new ScanFailure('not-cbor', 'truncated: item expected');
    const initial = bytes[this.pos++] as number;
    const major = initial >> 5;
    const info = initial & 0x1f;
    this.major = major;
    this.info = info;
    this.indefinite = false;
    if (info < 24) {
      this.arg = info;
    } else if (info <= 27) {
      const size = 1 << (info - 24);
      if (this.pos + size > bytes.length) throw new ScanFailure('not-cbor', 'truncated: argument');
      let value = 0;
      for (let i = 0; i < size; i++) {
        // Multiplication, not shifts: shifts wrap at 32 bits. Above 2^53 the value is approximate, which
        // is harmless: only lengths are compared here, and such a length exceeds any input.
        value = value * 256 + (bytes[this.pos + i] as number);
      }
      this.pos += size;
      this.arg = value;
    } else if (info === 31) {
      if (major === MAJOR_SIMPLE) {
        throw new ScanFailure('not-cbor', 'break outside an indefinite-length item');
      }
      if (major === MAJOR_UINT || major === MAJOR_NEGINT || major === MAJOR_TAG) {
        throw new ScanFailure('not-cbor', `reserved additional info 31 for major type ${major}`);
      }
      this.indefinite = true;
      this.arg = 0;
    } else {
      throw new ScanFailure('not-cbor', `reserved additional info ${info}`);
    }
    return major;
  }

  /** Skips what follows the head just read (string bytes, elements); `depth` is that item's depth. */
  skipBody(depth: number): void {
    if (this.indefinite) {
      // Forbidden: a frame is already length-delimited by the link, and streaming items only add cases.
      throw new ScanFailure('unsupported-item', 'indefinite-length item');
    }
    switch (this.major) {
      case MAJOR_UINT:
      case MAJOR_NEGINT:
        return;
      case MAJOR_BYTES:
        this.pos += this.checkLength(this.arg);
        return;
      case MAJOR_TEXT: {
        const length = this.checkLength(this.arg);
        try {
          utf8.decode(this.bytes.subarray(this.pos, this.pos + length));
        } catch {
          throw new ScanFailure('not-cbor', 'invalid UTF-8 in a text string');
        }
        this.pos += length;
        return;
      }
      case MAJOR_ARRAY: {
        this.checkDepth(depth);
        const count = this.checkCount(this.arg, 1);
        for (let i = 0; i < count; i++) this.skipItem(depth + 1);
        return;
      }
      case MAJOR_MAP: {
        this.checkDepth(depth);
        const count = this.checkCount(this.arg, 2);
        const keys = new Set<string>();
        for (let i = 0; i < count; i++) {
          const keyStart = this.pos;
          this.skipItem(depth + 1);
          // Byte-wise comparison of the key encodings: enough for encoders that write shortest forms,
          // which RFC 8949 deterministic encoding (and ours) requires.
          const key = Buffer.from(
            this.bytes.buffer,
            this.bytes.byteOffset + keyStart,
            this.pos - keyStart,
          ).toString('latin1');
          if (keys.has(key)) throw new ScanFailure('unsupported-item', 'duplicate map key');
          keys.add(key);
          this.skipItem(depth + 1);
        }
        return;
      }
      case MAJOR_TAG:
        // No v1 field is tagged, and cbor-x gives tags meaning (records, shared references, typed arrays,
        // dates) that must never be reachable from a peer.
        throw new ScanFailure('unsupported-item', `tag ${this.arg}`);
      default:
        this.checkSimple();
        return;
    }
  }

  private skipItem(depth: number): void {
    this.readHead();
    this.skipBody(depth);
  }

  /** Major type 7: false, true, null, undefined and floats are allowed; unassigned simple values are not. */
  private checkSimple(): void {
    const info = this.info;
    if ((info >= 20 && info <= 23) || (info >= 25 && info <= 27)) return;
    throw new ScanFailure('unsupported-item', `simple value ${info === 24 ? this.arg : info}`);
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_NESTING_DEPTH) {
      throw new ScanFailure('unsupported-item', `nesting deeper than ${MAX_NESTING_DEPTH}`);
    }
  }

  private checkLength(length: number): number {
    if (length > this.bytes.length - this.pos) throw new ScanFailure('not-cbor', 'truncated: string');
    return length;
  }

  /** Each element takes at least one byte, so more elements than remaining bytes means truncation. */
  private checkCount(count: number, bytesPerElement: number): number {
    if (count > (this.bytes.length - this.pos) / bytesPerElement) {
      throw new ScanFailure('not-cbor', 'truncated: container');
    }
    return count;
  }
}
