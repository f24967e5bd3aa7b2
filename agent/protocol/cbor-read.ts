// Strict reading of the protocol's CBOR subset (docs/PROTOCOL.md §3, rules 3 and 4): item heads, checking
// whole items without building them, and building plain values for standalone items (item.ts).
import {
  INFO_FLOAT16,
  INFO_FLOAT32,
  INFO_FLOAT64,
  INFO_INDEFINITE,
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_MAP,
  MAJOR_NEGINT,
  MAJOR_SIMPLE,
  MAJOR_TAG,
  MAJOR_TEXT,
  MAJOR_UINT,
  MAX_NESTING_DEPTH,
  SIMPLE_FALSE,
  SIMPLE_NULL,
  SIMPLE_TRUE,
  SIMPLE_UNDEFINED,
} from './cbor-constants.js';
import type { DecodeErrorReason } from './errors.js';
import { decodeUtf8, isWellFormedUtf8 } from './utf8.js';

const TWO_POW_32 = 0x1_0000_0000;
/** Up to this length a byte loop copies faster than subarray + set (no view object, no runtime call). */
const SMALL_COPY_BYTES = 32;
const EMPTY = new Uint8Array(0);

/** What readItem returns for a rejected item: every other value, `undefined` included, is CBOR content. */
export const REJECTED: unique symbol = Symbol('rejected CBOR item');

// Float bits go through this scratch; one shared view instead of a DataView per input buffer.
const floatView = new DataView(new ArrayBuffer(8));

/**
 * A cursor over one input. Failures are returned as `false` / REJECTED with the reason in `reason`, never
 * thrown: a hostile frame must cost a result object, not an exception. Every declared length and count is
 * checked against the bytes that remain, so a hostile head cannot make anything allocate more than the
 * input size, and recursion stops at MAX_NESTING_DEPTH.
 *
 * One instance may be reused for any number of inputs (start / finish), one at a time: nothing here is
 * asynchronous, so a module-level instance is safe.
 */
export class CborReader {
  bytes: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  // The last head read. Fields rather than a returned object: this runs for every item of every frame.
  major = 0;
  info = 0;
  /** The argument; exact up to 2^53, rounded above (where it is only compared against limits). */
  arg = 0;
  /** Low 32 bits of the argument, exact whatever its size. */
  low = 0;
  /** High 32 bits of the argument (non-zero only for 8-byte heads). */
  high = 0;
  reason: DecodeErrorReason = 'not-cbor';
  detail = '';
  /** Whether readItem takes floats; payloads without float fields turn this off (a 1.0 is no uint). */
  floats = true;
  /** Whether byte strings are views of the input instead of copies (bulk data the caller owns alone). */
  viewBytes = false;

  start(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.pos = 0;
    this.end = bytes.length;
  }

  /** Drops the input, so that a module-level reader does not keep a large frame alive. */
  finish(): void {
    this.bytes = EMPTY;
  }

  fail(reason: DecodeErrorReason, detail: string): false {
    this.reason = reason;
    this.detail = detail;
    return false;
  }

  /** Reads an initial byte and its argument into major/info/arg/low/high. */
  readHead(): boolean {
    const bytes = this.bytes;
    let pos = this.pos;
    const end = this.end;
    if (pos >= end) return this.fail('not-cbor', 'truncated: item expected');
    const initial = bytes[pos++] as number;
    const info = initial & 0x1f;
    this.major = initial >> 5;
    this.info = info;
    if (info < 24) {
      this.arg = info;
      this.low = info;
      this.high = 0;
      this.pos = pos;
      return true;
    }
    let value: number;
    this.high = 0;
    switch (info) {
      case 24:
        if (pos + 1 > end) return this.fail('not-cbor', 'truncated: argument');
        value = bytes[pos] as number;
        pos += 1;
        break;
      case 25:
        if (pos + 2 > end) return this.fail('not-cbor', 'truncated: argument');
        value = ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
        pos += 2;
        break;
      case 26:
        if (pos + 4 > end) return this.fail('not-cbor', 'truncated: argument');
        value = readUint32(bytes, pos);
        pos += 4;
        break;
      case 27: {
        if (pos + 8 > end) return this.fail('not-cbor', 'truncated: argument');
        const high = readUint32(bytes, pos);
        value = readUint32(bytes, pos + 4);
        this.high = high;
        // Above 2^53 the sum rounds, but never below 2^53: comparisons against safe limits stay exact.
        this.arg = high * TWO_POW_32 + value;
        this.low = value;
        this.pos = pos + 8;
        return true;
      }
      case INFO_INDEFINITE: {
        const major = this.major;
        if (major === MAJOR_SIMPLE) return this.fail('not-cbor', 'break outside an indefinite-length item');
        if (major === MAJOR_UINT || major === MAJOR_NEGINT || major === MAJOR_TAG) {
          return this.fail('not-cbor', `reserved additional info 31 for major type ${major}`);
        }
        value = 0;
        break;
      }
      default:
        return this.fail('not-cbor', `reserved additional info ${info}`);
    }
    this.arg = value;
    this.low = value;
    this.pos = pos;
    return true;
  }

  /** Checks what follows the head just read (string bytes, elements); `depth` is that item's depth. */
  skipBody(depth: number): boolean {
    if (this.info === INFO_INDEFINITE) return this.failIndefinite();
    switch (this.major) {
      case MAJOR_UINT:
      case MAJOR_NEGINT:
        return true;
      case MAJOR_BYTES:
        if (!this.checkLength()) return false;
        this.pos += this.arg;
        return true;
      case MAJOR_TEXT:
        return this.checkLength() && this.skipText();
      case MAJOR_ARRAY: {
        if (!this.checkDepth(depth) || !this.checkCount(this.arg, 1)) return false;
        const count = this.arg;
        for (let i = 0; i < count; i++) {
          if (!this.readHead() || !this.skipBody(depth + 1)) return false;
        }
        return true;
      }
      case MAJOR_MAP:
        return this.checkDepth(depth) && this.checkCount(this.arg, 2) && this.skipMap(depth);
      case MAJOR_TAG:
        return this.failTag();
      default:
        return this.checkSimple();
    }
  }

  /**
   * Reads one whole item and builds its value: numbers (bigint beyond 2^53 − 1, whatever the head size),
   * byte strings as copies owning their memory, strings, arrays, Maps (so a peer's keys never touch an
   * object prototype), booleans, null, undefined and floats.
   */
  readItem(depth: number): unknown {
    if (!this.readHead()) return REJECTED;
    if (this.info === INFO_INDEFINITE) {
      this.failIndefinite();
      return REJECTED;
    }
    switch (this.major) {
      case MAJOR_UINT:
        return this.arg <= Number.MAX_SAFE_INTEGER ? this.arg : this.bigArg();
      case MAJOR_NEGINT:
        return this.arg < Number.MAX_SAFE_INTEGER ? -1 - this.arg : -1n - this.bigArg();
      case MAJOR_BYTES: {
        if (!this.checkLength()) return REJECTED;
        const start = this.pos;
        this.pos += this.arg;
        return this.viewBytes
          ? viewBytes(this.bytes, start, this.arg)
          : copyBytes(this.bytes, start, this.arg);
      }
      case MAJOR_TEXT: {
        const start = this.pos;
        if (!this.checkLength() || !this.skipText()) return REJECTED;
        return decodeUtf8(this.bytes, start, this.pos);
      }
      case MAJOR_ARRAY: {
        if (!this.checkDepth(depth) || !this.checkCount(this.arg, 1)) return REJECTED;
        const count = this.arg;
        const array: unknown[] = [];
        for (let i = 0; i < count; i++) {
          const element = this.readItem(depth + 1);
          if (element === REJECTED) return REJECTED;
          array.push(element);
        }
        return array;
      }
      case MAJOR_MAP:
        return this.checkDepth(depth) && this.checkCount(this.arg, 2) ? this.readMap(depth) : REJECTED;
      case MAJOR_TAG:
        this.failTag();
        return REJECTED;
      default:
        if (!this.floats && this.info >= INFO_FLOAT16 && this.info <= INFO_FLOAT64) {
          this.fail('bad-field', 'a float in a message that has no float fields');
          return REJECTED;
        }
        return this.checkSimple() ? this.simpleValue() : REJECTED;
    }
  }

  private skipText(): boolean {
    const start = this.pos;
    const end = start + this.arg;
    if (!isWellFormedUtf8(this.bytes, start, end)) {
      return this.fail('not-cbor', 'invalid UTF-8 in a text string');
    }
    this.pos = end;
    return true;
  }

  private skipMap(depth: number): boolean {
    const count = this.arg;
    const keys = new Set<string>();
    for (let i = 0; i < count; i++) {
      const keyStart = this.pos;
      if (!this.readHead() || !this.skipBody(depth + 1)) return false;
      if (!this.addKey(keys, keyStart)) return false;
      if (!this.readHead() || !this.skipBody(depth + 1)) return false;
    }
    return true;
  }

  private readMap(depth: number): Map<unknown, unknown> | typeof REJECTED {
    const count = this.arg;
    const keys = new Set<string>();
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < count; i++) {
      const keyStart = this.pos;
      const key = this.readItem(depth + 1);
      if (key === REJECTED || !this.addKey(keys, keyStart)) return REJECTED;
      const value = this.readItem(depth + 1);
      if (value === REJECTED) return REJECTED;
      map.set(key, value);
    }
    return map;
  }

  /**
   * Records the encoding of the key that ends at `pos`; false if the map already had it. Byte-wise
   * comparison: enough for encoders that write shortest forms, which deterministic CBOR (and ours) requires.
   */
  private addKey(keys: Set<string>, keyStart: number): boolean {
    const bytes = this.bytes;
    const key = Buffer.from(bytes.buffer, bytes.byteOffset + keyStart, this.pos - keyStart).toString(
      'latin1',
    );
    if (keys.has(key)) return this.fail('unsupported-item', 'duplicate map key');
    keys.add(key);
    return true;
  }

  /** Major type 7: false, true, null, undefined and floats are allowed; unassigned simple values are not. */
  private checkSimple(): boolean {
    const info = this.info;
    if (
      (info >= SIMPLE_FALSE && info <= SIMPLE_UNDEFINED) ||
      (info >= INFO_FLOAT16 && info <= INFO_FLOAT64)
    ) {
      return true;
    }
    return this.fail('unsupported-item', `simple value ${info === 24 ? this.arg : info}`);
  }

  private simpleValue(): unknown {
    switch (this.info) {
      case SIMPLE_FALSE:
        return false;
      case SIMPLE_TRUE:
        return true;
      case SIMPLE_NULL:
        return null;
      case SIMPLE_UNDEFINED:
        return undefined;
      case INFO_FLOAT16:
        return float16(this.arg);
      case INFO_FLOAT32:
        floatView.setUint32(0, this.low);
        return floatView.getFloat32(0);
      default:
        floatView.setUint32(0, this.high);
        floatView.setUint32(4, this.low);
        return floatView.getFloat64(0);
    }
  }

  private bigArg(): bigint {
    return (BigInt(this.high) << 32n) | BigInt(this.low);
  }

  private failIndefinite(): false {
    // Forbidden: a frame is already length-delimited by the link, and streaming items only add cases.
    return this.fail('unsupported-item', 'indefinite-length item');
  }

  private failTag(): false {
    // No v1 field is tagged, and tags give bytes a meaning (dates, typed arrays, references) that a peer
    // should not be able to choose.
    return this.fail('unsupported-item', `tag ${this.arg}`);
  }

  private checkDepth(depth: number): boolean {
    return (
      depth <= MAX_NESTING_DEPTH || this.fail('unsupported-item', `nesting deeper than ${MAX_NESTING_DEPTH}`)
    );
  }

  /** The string the head announces fits in what remains. */
  private checkLength(): boolean {
    return this.arg <= this.end - this.pos || this.fail('not-cbor', 'truncated: string');
  }

  /** Each element takes at least one byte, so more elements than remaining bytes means truncation. */
  checkCount(count: number, bytesPerElement: number): boolean {
    return count <= (this.end - this.pos) / bytesPerElement || this.fail('not-cbor', 'truncated: container');
  }
}

function readUint32(bytes: Uint8Array, pos: number): number {
  // Multiplication for the top byte: a shift by 24 would make values >= 2^31 negative.
  return (
    (bytes[pos] as number) * 0x100_0000 +
    (((bytes[pos + 1] as number) << 16) | ((bytes[pos + 2] as number) << 8) | (bytes[pos + 3] as number))
  );
}

/** IEEE 754 half precision (RFC 8949 appendix D). */
function float16(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (mantissa + 1024) * 2 ** (exponent - 25);
}

/**
 * bytes[start, start + length) as a fresh plain Uint8Array that owns its buffer (never a Buffer, never a
 * view of the input), so the caller may reuse the input at once.
 */
export function copyBytes(bytes: Uint8Array, start: number, length: number): Uint8Array {
  const copy = new Uint8Array(length);
  if (length <= SMALL_COPY_BYTES) {
    for (let i = 0; i < length; i++) copy[i] = bytes[start + i] as number;
  } else {
    copy.set(bytes.subarray(start, start + length));
  }
  return copy;
}

/** bytes[start, start + length) as a plain Uint8Array sharing the input's memory (not a Buffer slice). */
export function viewBytes(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, length);
}
