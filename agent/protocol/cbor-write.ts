// Writing deterministic CBOR (RFC 8949 §4.2.1, docs/PROTOCOL.md §3): shortest-form heads, byte and text
// strings, null, arrays and floats in their shortest exact width (json-cbor.ts adds maps, sorted).
// Sizes are computed first and everything is written into one exactly-sized Uint8Array: no byte is copied twice.
import {
  INFO_FLOAT16,
  INFO_FLOAT32,
  INFO_FLOAT64,
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_SIMPLE,
  MAJOR_TEXT,
  MAJOR_UINT,
  MAX_NESTING_DEPTH,
  SIMPLE_NULL,
} from './cbor-constants.js';
import { EncodeError } from './errors.js';
import { utf8Length, writeUtf8 } from './utf8.js';

/** The values v2 writes: uints up to 2^53 − 1, byte strings, text, null and arrays of those. */
export type CborValue = number | Uint8Array | string | null | readonly CborValue[];

const TWO_POW_32 = 0x1_0000_0000;
/** Up to this length a byte loop copies faster than TypedArray.set (no call into the runtime). */
const SMALL_COPY_BYTES = 32;

/** Bytes of the shortest head for `argument` (a uint up to 2^53 − 1): 1, 2, 3, 5 or 9. */
export function headSize(argument: number): number {
  if (argument < 24) return 1;
  if (argument < 0x100) return 2;
  if (argument < 0x1_0000) return 3;
  return argument < TWO_POW_32 ? 5 : 9;
}

/** Writes the shortest head for (major, argument) at `pos`; returns the position after it. */
export function writeHead(out: Uint8Array, pos: number, major: number, argument: number): number {
  const type = major << 5;
  if (argument < 24) {
    out[pos] = type | argument;
    return pos + 1;
  }
  if (argument < 0x100) {
    out[pos] = type | 24;
    out[pos + 1] = argument;
    return pos + 2;
  }
  if (argument < 0x1_0000) {
    out[pos] = type | 25;
    out[pos + 1] = argument >>> 8;
    out[pos + 2] = argument;
    return pos + 3;
  }
  if (argument < TWO_POW_32) {
    out[pos] = type | 26;
    writeUint32(out, pos + 1, argument);
    return pos + 5;
  }
  out[pos] = type | 27;
  // Division, not shifts: shifts wrap at 32 bits. `>>> 0` keeps the low 32 bits exactly below 2^53.
  writeUint32(out, pos + 1, Math.floor(argument / TWO_POW_32));
  writeUint32(out, pos + 5, argument >>> 0);
  return pos + 9;
}

function writeUint32(out: Uint8Array, pos: number, value: number): void {
  // Uint8Array stores keep the low 8 bits, so no masking.
  out[pos] = value >>> 24;
  out[pos + 1] = value >>> 16;
  out[pos + 2] = value >>> 8;
  out[pos + 3] = value;
}

/** Bytes of a byte string of `length` bytes, head included. */
export function bytesSize(length: number): number {
  return headSize(length) + length;
}

/** Writes `bytes` as a byte string (untagged, whatever its class: Buffer or plain Uint8Array). */
export function writeBytes(out: Uint8Array, pos: number, bytes: Uint8Array): number {
  const length = bytes.length;
  const start = writeHead(out, pos, MAJOR_BYTES, length);
  if (length <= SMALL_COPY_BYTES) {
    for (let i = 0; i < length; i++) out[start + i] = bytes[i] as number;
  } else {
    out.set(bytes, start);
  }
  return start + length;
}

/** Shared scratch for float conversions: floats are written without a DataView per call. */
const floatScratch = new DataView(new ArrayBuffer(8));

/**
 * The float16 bits of `value` when float16 holds it exactly, else -1: ±0, normal and subnormal halves,
 * the infinities, and NaN as 0x7e00 (the one NaN deterministic CBOR writes).
 */
function float16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  floatScratch.setFloat32(0, value);
  // float16 values are a subset of float32 ones: a value float32 cannot hold exactly is no half either.
  if (floatScratch.getFloat32(0) !== value) return -1;
  const bits = floatScratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127;
  const mantissa = bits & 0x7f_ffff;
  if (exponent === 128) return sign | 0x7c00;
  // ±0 (float32 subnormals, exponent -127 with a mantissa, are far below float16's smallest 2^-24).
  if (exponent === -127) return mantissa === 0 ? sign : -1;
  if (exponent > 15 || exponent < -24) return -1;
  if (exponent >= -14) {
    // Normal: float32's 23 mantissa bits must fit float16's 10.
    return (mantissa & 0x1fff) === 0 ? sign | ((exponent + 15) << 10) | (mantissa >>> 13) : -1;
  }
  // Subnormal: value = k · 2^-24 with k < 1024, k being the significand (implicit 1 included) shifted down.
  const significand = 0x80_0000 | mantissa;
  const shift = -1 - exponent;
  return (significand & ((1 << shift) - 1)) === 0 ? sign | (significand >>> shift) : -1;
}

/** Bytes of `value` as a float in its shortest exact width: 3 (float16), 5 (float32) or 9 (float64). */
export function floatSize(value: number): number {
  if (float16Bits(value) >= 0) return 3;
  return Math.fround(value) === value ? 5 : 9;
}

/** Writes `value` as a float in its shortest exact width (preferred serialization); returns the position after it. */
export function writeFloat(out: Uint8Array, pos: number, value: number): number {
  const half = float16Bits(value);
  if (half >= 0) {
    out[pos] = (MAJOR_SIMPLE << 5) | INFO_FLOAT16;
    out[pos + 1] = half >>> 8;
    out[pos + 2] = half;
    return pos + 3;
  }
  const width = Math.fround(value) === value ? 4 : 8;
  if (width === 4) floatScratch.setFloat32(0, value);
  else floatScratch.setFloat64(0, value);
  out[pos] = (MAJOR_SIMPLE << 5) | (width === 4 ? INFO_FLOAT32 : INFO_FLOAT64);
  for (let i = 0; i < width; i++) out[pos + 1 + i] = floatScratch.getUint8(i);
  return pos + 1 + width;
}

export function writeNull(out: Uint8Array, pos: number): number {
  out[pos] = (MAJOR_SIMPLE << 5) | SIMPLE_NULL;
  return pos + 1;
}

/**
 * Bytes `value` takes encoded. Checks it on the way, so that writeValue needs no checks: throws
 * EncodeError for anything outside CborValue, integers that are negative, fractional or above 2^53 − 1,
 * text with a lone surrogate, and nesting beyond what our own decoder accepts (which also stops cycles).
 */
export function valueSize(value: unknown, depth = 1): number {
  if (value === null) return 1;
  if (value instanceof Uint8Array) return bytesSize(value.length);
  switch (typeof value) {
    case 'number':
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new EncodeError(`${value} is not an unsigned integer up to 2^53-1`);
      }
      return headSize(value);
    case 'string': {
      const length = utf8Length(value);
      if (length < 0) throw new EncodeError('text contains a lone surrogate, which UTF-8 cannot express');
      return headSize(length) + length;
    }
    default: {
      if (!Array.isArray(value)) throw new EncodeError(`cannot encode a ${typeof value} as CBOR`);
      if (depth > MAX_NESTING_DEPTH) throw new EncodeError(`nesting deeper than ${MAX_NESTING_DEPTH}`);
      let size = headSize(value.length);
      for (const element of value as readonly unknown[]) size += valueSize(element, depth + 1);
      return size;
    }
  }
}

/** Writes a value valueSize has accepted at `pos`; returns the position after it. */
export function writeValue(out: Uint8Array, pos: number, value: CborValue): number {
  if (value === null) return writeNull(out, pos);
  if (value instanceof Uint8Array) return writeBytes(out, pos, value);
  if (typeof value === 'number') return writeHead(out, pos, MAJOR_UINT, value);
  if (typeof value === 'string') {
    return writeUtf8(out, writeHead(out, pos, MAJOR_TEXT, utf8Length(value)), value);
  }
  let next = writeHead(out, pos, MAJOR_ARRAY, value.length);
  for (const element of value) next = writeValue(out, next, element);
  return next;
}

/** Encodes one value as a fresh Uint8Array of exactly its size, owning its whole ArrayBuffer. */
export function encodeCbor(value: CborValue): Uint8Array {
  const out = new Uint8Array(valueSize(value));
  writeValue(out, 0, value);
  return out;
}
