// Bulk transfer messages: the payloads of system DATA that move one file from a sender to a
// receiver, chunked, flow controlled, SHA-256 checked and resumable. Each is one CBOR array whose first
// element says what it is. Kinds 16–23, clear of the coordination kinds 1–9:
//
//   16 OFFER      [16, transferId, name, size, chunkSize]              sender → receiver
//   17 ACCEPT     [17, transferId, resumeFrom, window]                 receiver → sender
//   18 REJECT     [18, transferId, code, message]                      receiver → sender
//   19 CHUNK      [19, transferId, offset, bytes]                      sender → receiver
//   20 CHUNK-ACK  [20, transferId, upTo]                               receiver → sender (cumulative; credit)
//   21 DONE       [21, transferId, sha256]                             sender → receiver
//   22 RESULT     [22, transferId, true] | [22, transferId, false, code, message]   receiver → sender
//   23 CANCEL     [23, transferId, reason]                             either way
//
// transferId is 16 random bytes, sha256 32 bytes (the whole file's, hashed by the sender as it reads it for
// the chunks, so it comes last); sizes and offsets are unsigned integers up to 2^53 − 1.
// The decoder checks shapes and ranges only; whether a name is safe to create is the receiver's decision
// (so it can answer REJECT bad-name), see file-name.ts.

import { MAJOR_ARRAY, MAJOR_BYTES, MAJOR_UINT } from './cbor-constants.js';
import { headSize, writeBytes, writeHead } from './cbor-write.js';
import { DecodeError, EncodeError } from './errors.js';
import {
  bytesToHex,
  checkBytes,
  checkCode,
  checkRange,
  checkUint,
  clipReason,
  isBytes,
  isCode,
  isInRange,
  isReason,
  isUint,
  MAX_REASON_CHARS,
} from './fields.js';
import { decodeItem } from './item.js';
import { encodeJsonCbor } from './json-cbor.js';
import { utf8Length } from './utf8.js';

export const TransferKind = {
  offer: 16,
  accept: 17,
  reject: 18,
  chunk: 19,
  chunkAck: 20,
  done: 21,
  result: 22,
  cancel: 23,
} as const;

export const TRANSFER_ID_BYTES = 16;
export const SHA256_BYTES = 32;
/** Longest file name, in UTF-8 bytes (what ext4 and most file systems allow). */
export const MAX_FILE_NAME_BYTES = 255;
/** Largest chunk any receiver accepts (a TCP link might carry this; BLE and routed links far less). */
export const MAX_CHUNK_BYTES = 1024 * 1024;
/** Most chunks a receiver lets be in flight. */
export const MAX_WINDOW = 1024;
/** Longest REJECT / RESULT message or CANCEL reason, in characters (UTF-16 units, as JavaScript counts). */
export { MAX_REASON_CHARS };
/** Bytes a CHUNK adds around its data: array, kind, id, offset (9) and the byte string's head (5). */
export const CHUNK_OVERHEAD_BYTES = 1 + 1 + (1 + TRANSFER_ID_BYTES) + 9 + 5;

export const REJECT_CODES = ['too-large', 'disk-full', 'refused', 'bad-name'] as const;
export type RejectCode = (typeof REJECT_CODES)[number];
/** incomplete: DONE arrived before every byte had. */
export const RESULT_CODES = ['hash-mismatch', 'disk-full', 'io-error', 'incomplete'] as const;
export type ResultCode = (typeof RESULT_CODES)[number];

export interface OfferMessage {
  kind: 'offer';
  transferId: Uint8Array;
  /** The file's base name as the sender suggests it. */
  name: string;
  size: number;
  /** Largest CHUNK data the sender will send. */
  chunkSize: number;
}

export interface AcceptMessage {
  kind: 'accept';
  transferId: Uint8Array;
  /** Bytes the receiver already holds; the sender continues from here. */
  resumeFrom: number;
  /** Chunks the sender may have unacknowledged. */
  window: number;
}

export interface RejectMessage {
  kind: 'reject';
  transferId: Uint8Array;
  code: RejectCode;
  message: string;
}

export interface ChunkMessage {
  kind: 'chunk';
  transferId: Uint8Array;
  offset: number;
  bytes: Uint8Array;
}

export interface ChunkAckMessage {
  kind: 'chunk-ack';
  transferId: Uint8Array;
  /** Every byte below this offset is written. */
  upTo: number;
}

export interface DoneMessage {
  kind: 'done';
  transferId: Uint8Array;
  /** SHA-256 of the whole file. */
  sha256: Uint8Array;
}

export interface TransferResultMessage {
  kind: 'transfer-result';
  transferId: Uint8Array;
  outcome: { ok: true } | { ok: false; code: ResultCode; message: string };
}

export interface CancelMessage {
  kind: 'cancel';
  transferId: Uint8Array;
  reason: string;
}

export type TransferMessage =
  | OfferMessage
  | AcceptMessage
  | RejectMessage
  | ChunkMessage
  | ChunkAckMessage
  | DoneMessage
  | TransferResultMessage
  | CancelMessage;

/** Encodes a transfer message; throws EncodeError when our own code built an invalid one. */
export function encodeTransfer(message: TransferMessage): Uint8Array {
  checkBytes(message.transferId, TRANSFER_ID_BYTES, 'transferId');
  switch (message.kind) {
    case 'offer':
      if (utf8Length(message.name) < 1 || utf8Length(message.name) > MAX_FILE_NAME_BYTES) {
        throw new EncodeError(`OFFER name is not 1..${MAX_FILE_NAME_BYTES} bytes of UTF-8`);
      }
      checkUint(message.size, 'OFFER size');
      checkRange(message.chunkSize, 1, MAX_CHUNK_BYTES, 'OFFER chunkSize');
      return encodeJsonCbor([
        TransferKind.offer,
        message.transferId,
        message.name,
        message.size,
        message.chunkSize,
      ]);
    case 'accept':
      checkUint(message.resumeFrom, 'ACCEPT resumeFrom');
      checkRange(message.window, 1, MAX_WINDOW, 'ACCEPT window');
      return encodeJsonCbor([TransferKind.accept, message.transferId, message.resumeFrom, message.window]);
    case 'reject':
      checkCode(message.code, REJECT_CODES, 'REJECT code');
      return encodeJsonCbor([
        TransferKind.reject,
        message.transferId,
        message.code,
        clipReason(message.message),
      ]);
    case 'chunk':
      checkUint(message.offset, 'CHUNK offset');
      if (!(message.bytes instanceof Uint8Array) || message.bytes.length < 1) {
        throw new EncodeError('CHUNK bytes is empty');
      }
      if (message.bytes.length > MAX_CHUNK_BYTES) throw new EncodeError('CHUNK bytes is too long');
      return encodeJsonCbor([TransferKind.chunk, message.transferId, message.offset, message.bytes]);
    case 'chunk-ack':
      checkUint(message.upTo, 'CHUNK-ACK upTo');
      return encodeJsonCbor([TransferKind.chunkAck, message.transferId, message.upTo]);
    case 'done':
      checkBytes(message.sha256, SHA256_BYTES, 'DONE sha256');
      return encodeJsonCbor([TransferKind.done, message.transferId, message.sha256]);
    case 'transfer-result': {
      const { outcome } = message;
      if (outcome.ok) return encodeJsonCbor([TransferKind.result, message.transferId, true]);
      checkCode(outcome.code, RESULT_CODES, 'RESULT code');
      return encodeJsonCbor([
        TransferKind.result,
        message.transferId,
        false,
        outcome.code,
        clipReason(outcome.message),
      ]);
    }
    case 'cancel':
      return encodeJsonCbor([TransferKind.cancel, message.transferId, clipReason(message.reason)]);
  }
}

/** Decodes a transfer message. Never throws: anything malformed is a DecodeError. */
export function decodeTransfer(bytes: Uint8Array): TransferMessage | DecodeError {
  // Byte strings as views: a CHUNK's data is not copied out of the payload (which the caller owns). The
  // small ones a transfer keeps (its id, the DONE's hash) are copied below, so they do not pin the payload.
  const item = decodeItem(bytes, { floats: false, viewBytes: true });
  if (!item.ok) return item.error;
  const head = item.value;
  if (!Array.isArray(head) || typeof head[0] !== 'number') return bad('is not [kind, transferId, ...]');
  const fields = head as unknown[];
  const viewedId = fields[1];
  if (!isBytes(viewedId, TRANSFER_ID_BYTES)) return bad(`transferId is not ${TRANSFER_ID_BYTES} bytes`);
  const transferId = viewedId.slice();
  switch (head[0]) {
    case TransferKind.offer: {
      const [, , name, size, chunkSize] = fields;
      if (fields.length !== 5) return bad('OFFER is not [16, transferId, name, size, chunkSize]');
      if (typeof name !== 'string' || utf8Length(name) < 1 || utf8Length(name) > MAX_FILE_NAME_BYTES) {
        return bad(`OFFER name is not 1..${MAX_FILE_NAME_BYTES} bytes of UTF-8`);
      }
      if (!isUint(size)) return bad('OFFER size is not an unsigned integer');
      if (!isInRange(chunkSize, 1, MAX_CHUNK_BYTES))
        return bad(`OFFER chunkSize is not 1..${MAX_CHUNK_BYTES}`);
      return { kind: 'offer', transferId, name, size, chunkSize };
    }
    case TransferKind.accept: {
      const [, , resumeFrom, window] = fields;
      if (fields.length !== 4 || !isUint(resumeFrom) || !isInRange(window, 1, MAX_WINDOW)) {
        return bad('ACCEPT is not [17, transferId, resumeFrom, window]');
      }
      return { kind: 'accept', transferId, resumeFrom, window };
    }
    case TransferKind.reject: {
      const [, , code, message] = fields;
      if (fields.length !== 4 || !isCode(code, REJECT_CODES) || !isReason(message)) {
        return bad('REJECT is not [18, transferId, code, message]');
      }
      return { kind: 'reject', transferId, code, message };
    }
    case TransferKind.chunk: {
      const [, , offset, data] = fields;
      if (
        fields.length !== 4 ||
        !isUint(offset) ||
        !(data instanceof Uint8Array) ||
        data.length < 1 ||
        data.length > MAX_CHUNK_BYTES ||
        offset + data.length > Number.MAX_SAFE_INTEGER
      ) {
        return bad('CHUNK is not [19, transferId, offset, bytes]');
      }
      return { kind: 'chunk', transferId, offset, bytes: data };
    }
    case TransferKind.chunkAck: {
      const [, , upTo] = fields;
      if (fields.length !== 3 || !isUint(upTo)) return bad('CHUNK-ACK is not [20, transferId, upTo]');
      return { kind: 'chunk-ack', transferId, upTo };
    }
    case TransferKind.done: {
      const [, , sha256] = fields;
      if (fields.length !== 3 || !isBytes(sha256, SHA256_BYTES)) {
        return bad(`DONE is not [21, transferId, sha256 of ${SHA256_BYTES} bytes]`);
      }
      return { kind: 'done', transferId, sha256: sha256.slice() };
    }
    case TransferKind.result: {
      const [, , ok, code, message] = fields;
      if (ok === true && fields.length === 3) {
        return { kind: 'transfer-result', transferId, outcome: { ok: true } };
      }
      if (ok !== false || fields.length !== 5 || !isCode(code, RESULT_CODES) || !isReason(message)) {
        return bad('RESULT is not [22, transferId, true] or [22, transferId, false, code, message]');
      }
      return { kind: 'transfer-result', transferId, outcome: { ok: false, code, message } };
    }
    case TransferKind.cancel: {
      const [, , reason] = fields;
      if (fields.length !== 3 || !isReason(reason)) return bad('CANCEL is not [23, transferId, reason]');
      return { kind: 'cancel', transferId, reason };
    }
    default:
      return bad(`kind ${String(head[0])} is unknown`);
  }
}

/**
 * A CHUNK of `length` data bytes laid out in `buffer` as encodeTransfer encodes it, with the data still to be
 * filled in: `payload` is the message (the start of `buffer`) and `data` the view of it where the bytes go,
 * so a file is read straight into the message, not copied. `buffer` holds at least length +
 * CHUNK_OVERHEAD_BYTES, and may be used again for the next chunk.
 */
export function layoutChunk(
  buffer: Uint8Array,
  transferId: Uint8Array,
  offset: number,
  length: number,
): { payload: Uint8Array; data: Uint8Array } {
  checkBytes(transferId, TRANSFER_ID_BYTES, 'transferId');
  checkUint(offset, 'CHUNK offset');
  checkRange(length, 1, MAX_CHUNK_BYTES, 'CHUNK length');
  const head = 1 + headSize(TransferKind.chunk) + 1 + TRANSFER_ID_BYTES + headSize(offset) + headSize(length);
  if (buffer.length < head + length) throw new EncodeError('CHUNK buffer is too small');
  let pos = writeHead(buffer, 0, MAJOR_ARRAY, 4);
  pos = writeHead(buffer, pos, MAJOR_UINT, TransferKind.chunk);
  pos = writeBytes(buffer, pos, transferId);
  pos = writeHead(buffer, pos, MAJOR_UINT, offset);
  pos = writeHead(buffer, pos, MAJOR_BYTES, length);
  return { payload: buffer.subarray(0, pos + length), data: buffer.subarray(pos, pos + length) };
}

/** The transfer id as 32 lowercase hex digits (file names, maps, logs). */
export function transferIdToHex(id: Uint8Array): string {
  return bytesToHex(id);
}

/** The transfer id from 32 hex digits, or null. */
export function transferIdFromHex(hex: string): Uint8Array | null {
  if (!/^[0-9a-f]{32}$/.test(hex)) return null;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `transfer message ${detail}`);
}

/**
 * The transfer id of a CHUNK, read from its first bytes without decoding it (the link layer asks for every
 * payload it carries, so it must be cheap), or undefined when `payload` is no CHUNK.
 */
export function chunkTransferId(payload: Uint8Array): string | undefined {
  // [19, h'<16 bytes>', ...]: array of 4 (0x84), kind 19 (0x13), a 16-byte bstr head (0x50).
  if (payload[0] !== 0x84 || payload[1] !== TransferKind.chunk || payload[2] !== 0x40 + TRANSFER_ID_BYTES) {
    return undefined;
  }
  return transferIdToHex(payload.subarray(3, 3 + TRANSFER_ID_BYTES));
}
