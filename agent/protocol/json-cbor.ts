// JSON values (call arguments and results, sensor values) as CBOR: maps with text keys, arrays, text,
// integers, floats, booleans and null, written deterministically (RFC 8949 §4.2.1: map keys sorted, floats
// in their shortest exact width, integers and lengths shortest), so equal values are equal bytes whatever
// order an object lists its keys in. Same strict (and liberal about encoding choices) reader as every
// other item; objects come back without a prototype a peer could reach.
import {
  MAJOR_ARRAY,
  MAJOR_MAP,
  MAJOR_NEGINT,
  MAJOR_TEXT,
  MAJOR_UINT,
  MAX_NESTING_DEPTH,
} from './cbor-constants.js';
import { bytesSize, floatSize, headSize, writeBytes, writeFloat, writeHead } from './cbor-write.js';
import { DecodeError, EncodeError } from './errors.js';
import { decodeItem } from './item.js';
import { utf8Length, writeUtf8 } from './utf8.js';

export type JsonPrimitive = null | boolean | number | string;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}
/** JSON values plus byte strings: what protocol messages that carry JSON are made of. */
export type WireValue = JsonPrimitive | Uint8Array | readonly WireValue[] | JsonObject;

const FALSE = 0xf4;
const TRUE = 0xf5;
const NULL = 0xf6;

/** Encodes a JSON value (or one with byte strings); throws EncodeError for NaN, undefined, cycles and the like. */
export function encodeJsonCbor(value: WireValue): Uint8Array {
  const out = new Uint8Array(jsonSize(value, 1));
  const end = writeJson(out, 0, value);
  return end === out.length ? out : out.subarray(0, end);
}

/** Decodes a CBOR item that must be a JSON value (no byte strings, tags, undefined or huge integers). */
export function decodeJsonCbor(bytes: Uint8Array): JsonValue | DecodeError {
  const item = decodeItem(bytes);
  if (!item.ok) return item.error;
  return toJson(item.value);
}

/** A decoded CBOR item as a JSON value, or why it is not one. */
export function toJson(value: unknown): JsonValue | DecodeError {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : notJson('a non-finite number');
  if (Array.isArray(value)) {
    const array: JsonValue[] = [];
    for (const element of value) {
      const converted = toJson(element);
      if (converted instanceof DecodeError) return converted;
      array.push(converted);
    }
    return array;
  }
  if (value instanceof Map) {
    // Own properties on a plain object: JSON.parse's shape, with "__proto__" an ordinary key.
    const object: JsonObject = {};
    for (const [key, element] of value) {
      if (typeof key !== 'string') return notJson('a map key that is not text');
      const converted = toJson(element);
      if (converted instanceof DecodeError) return converted;
      Object.defineProperty(object, key, {
        value: converted,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return object;
  }
  return notJson(value instanceof Uint8Array ? 'a byte string' : `a ${typeof value}`);
}

function notJson(what: string): DecodeError {
  return new DecodeError('bad-field', `expected a JSON value, found ${what}`);
}

function jsonSize(value: WireValue, depth: number): number {
  if (depth > MAX_NESTING_DEPTH) throw new EncodeError(`nesting deeper than ${MAX_NESTING_DEPTH}`);
  if (value === null || typeof value === 'boolean') return 1;
  if (value instanceof Uint8Array) return bytesSize(value.length);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new EncodeError(`${value} is not a JSON number`);
    if (isCborInteger(value)) return headSize(value < 0 ? -1 - value : value);
    return floatSize(value);
  }
  if (typeof value === 'string') return textSize(value);
  if (Array.isArray(value)) {
    let size = headSize(value.length);
    for (const element of value) size += jsonSize(element, depth + 1);
    return size;
  }
  if (typeof value !== 'object') throw new EncodeError(`cannot encode a ${typeof value} as JSON`);
  const object = value as JsonObject;
  const keys = Object.keys(object);
  let size = headSize(keys.length);
  for (const key of keys) size += textSize(key) + jsonSize(object[key] as WireValue, depth + 1);
  return size;
}

function textSize(text: string): number {
  const length = utf8Length(text);
  if (length < 0) throw new EncodeError('text contains a lone surrogate, which UTF-8 cannot express');
  return headSize(length) + length;
}

function writeJson(out: Uint8Array, pos: number, value: WireValue): number {
  if (value instanceof Uint8Array) return writeBytes(out, pos, value);
  if (value === null) {
    out[pos] = NULL;
    return pos + 1;
  }
  if (typeof value === 'boolean') {
    out[pos] = value ? TRUE : FALSE;
    return pos + 1;
  }
  if (typeof value === 'number') return writeNumber(out, pos, value);
  if (typeof value === 'string') return writeText(out, pos, value);
  if (Array.isArray(value)) {
    let next = writeHead(out, pos, MAJOR_ARRAY, value.length);
    for (const element of value) next = writeJson(out, next, element);
    return next;
  }
  const object = value as JsonObject;
  const keys = Object.keys(object).sort(compareKeys);
  let next = writeHead(out, pos, MAJOR_MAP, keys.length);
  for (const key of keys) next = writeJson(out, writeText(out, next, key), object[key] as WireValue);
  return next;
}

/**
 * The order of text map keys by their encodings' bytes (RFC 8949 §4.2.1): a shorter key has a smaller
 * head, so UTF-8 length decides first; then the UTF-8 bytes, whose order is code point order.
 */
function compareKeys(a: string, b: string): number {
  const byLength = utf8Length(a) - utf8Length(b);
  if (byLength !== 0) return byLength;
  // Distinct keys of one UTF-8 length differ before either ends.
  for (let i = 0; i < a.length; i++) {
    const unitA = a.charCodeAt(i);
    const unitB = b.charCodeAt(i);
    if (unitA !== unitB) return codePointRank(unitA) - codePointRank(unitB);
  }
  return 0;
}

/**
 * A UTF-16 unit ranked so that comparing units compares code points: surrogates (which only start code
 * points above U+FFFF) move above U+E000..U+FFFF. Needed only where two strings first differ.
 */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Safe integers go as CBOR integers; -0 stays a float, so it comes back as -0. */
function isCborInteger(value: number): boolean {
  return Number.isSafeInteger(value) && !Object.is(value, -0);
}

/** Integers in their shortest head; other numbers as the shortest float that holds them exactly. */
function writeNumber(out: Uint8Array, pos: number, value: number): number {
  if (isCborInteger(value)) {
    return value < 0 ? writeHead(out, pos, MAJOR_NEGINT, -1 - value) : writeHead(out, pos, MAJOR_UINT, value);
  }
  return writeFloat(out, pos, value);
}

function writeText(out: Uint8Array, pos: number, text: string): number {
  return writeUtf8(out, writeHead(out, pos, MAJOR_TEXT, utf8Length(text)), text);
}
