// JSON values (call arguments and results, sensor values) as CBOR: maps with text keys, arrays, text,
// integers, floats, booleans and null. Same strict reader as every other item; objects come back
// without a prototype a peer could reach.
import {
  MAJOR_ARRAY,
  MAJOR_MAP,
  MAJOR_NEGINT,
  MAJOR_TEXT,
  MAJOR_UINT,
  MAX_NESTING_DEPTH,
} from './cbor-constants.js';
import { bytesSize, headSize, writeBytes, writeHead } from './cbor-write.js';
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
const FLOAT32 = 0xfa;
const FLOAT64 = 0xfb;

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
    return Math.fround(value) === value ? 5 : 9;
  }
  if (typeof value === 'string') return textSize(value);
  if (Array.isArray(value)) {
    let size = headSize(value.length);
    for (const element of value) size += jsonSize(element, depth + 1);
    return size;
  }
  if (typeof value !== 'object') throw new EncodeError(`cannot encode a ${typeof value} as JSON`);
  const entries = Object.entries(value);
  let size = headSize(entries.length);
  for (const [key, element] of entries) size += textSize(key) + jsonSize(element, depth + 1);
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
  const entries = Object.entries(value);
  let next = writeHead(out, pos, MAJOR_MAP, entries.length);
  for (const [key, element] of entries) next = writeJson(out, writeText(out, next, key), element);
  return next;
}

/** Safe integers go as CBOR integers; -0 stays a float, so it comes back as -0. */
function isCborInteger(value: number): boolean {
  return Number.isSafeInteger(value) && !Object.is(value, -0);
}

/** Integers in their shortest head; other numbers as float32 when that is exact, else float64. */
function writeNumber(out: Uint8Array, pos: number, value: number): number {
  if (isCborInteger(value)) {
    return value < 0 ? writeHead(out, pos, MAJOR_NEGINT, -1 - value) : writeHead(out, pos, MAJOR_UINT, value);
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (Math.fround(value) === value) {
    out[pos] = FLOAT32;
    view.setFloat32(pos + 1, value);
    return pos + 5;
  }
  out[pos] = FLOAT64;
  view.setFloat64(pos + 1, value);
  return pos + 9;
}

function writeText(out: Uint8Array, pos: number, text: string): number {
  return writeUtf8(out, writeHead(out, pos, MAJOR_TEXT, utf8Length(text)), text);
}
