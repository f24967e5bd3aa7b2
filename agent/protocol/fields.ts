// Field checks shared by the codecs of system payloads (bulk transfer, streams): the decoder's tests of
// shapes and ranges (which never throw), the encoder's counterparts (which throw EncodeError: our own code
// built an invalid message) and the clipping of reason texts to what a decoder accepts.
import { EncodeError } from './errors.js';
import { utf8Length } from './utf8.js';

/** Longest reason or message text, in characters (UTF-16 units, as JavaScript counts). */
export const MAX_REASON_CHARS = 1024;

export function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

/** An unsigned integer up to 2^53 − 1. */
export function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function isInRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

export function isCode<T extends string>(value: unknown, codes: readonly T[]): value is T {
  return typeof value === 'string' && (codes as readonly string[]).includes(value);
}

export function isReason(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_REASON_CHARS;
}

/** `text` cut (on a code point boundary, with an ellipsis) to at most MAX_REASON_CHARS. */
export function clipReason(text: string): string {
  if (text.length <= MAX_REASON_CHARS) return text;
  let cut = '';
  for (const char of text) {
    if (cut.length + char.length > MAX_REASON_CHARS - 1) break;
    cut += char;
  }
  return `${cut}…`;
}

export function checkBytes(value: unknown, length: number, what: string): void {
  if (!isBytes(value, length)) throw new EncodeError(`${what} is not ${length} bytes`);
}

export function checkUint(value: unknown, what: string): void {
  if (!isUint(value)) throw new EncodeError(`${what} is not an unsigned integer up to 2^53 - 1`);
}

export function checkRange(value: unknown, min: number, max: number, what: string): void {
  if (!isInRange(value, min, max)) throw new EncodeError(`${what} is not ${min}..${max}`);
}

export function checkCode(value: string, codes: readonly string[], what: string): void {
  if (!codes.includes(value)) throw new EncodeError(`${what} ${value} is unknown`);
}

/** Why `text` is not 1..maxBytes bytes of UTF-8 (a lone surrogate has none), or null when it is. */
export function textLengthProblem(text: string, maxBytes: number): string | null {
  const length = utf8Length(text);
  if (length < 0) return 'contains a lone surrogate';
  if (length < 1) return 'is empty';
  if (length > maxBytes) return `is longer than ${maxBytes} bytes`;
  return null;
}

/** Bytes (an id) as lowercase hex, for maps, file names and logs. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
