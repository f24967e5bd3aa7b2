// Stream messages (PROTOCOL.md §16): the payloads of system DATA that carry one named, flow-controlled byte
// stream from an opener (the sender of the bytes) to a listener (their receiver). Each is one CBOR array
// whose first element says what it is. Kinds 24–29, clear of coordination (1–9), durable messages (12–13)
// and bulk transfer (16–23):
//
//   24 OPEN    [24, streamId, name]                                        opener → listener
//   25 ACCEPT  [25, streamId, credit]                                      listener → opener
//   26 REFUSE  [26, streamId, code, message]                               listener → opener
//   27 DATA    [27, streamId, offset, bytes]                               opener → listener
//   28 CREDIT  [28, streamId, upTo]                                        listener → opener (cumulative)
//   29 END     [29, streamId, true, length] | [29, streamId, false, code, message]   either way
//
// streamId is 16 random bytes chosen by the opener. Credit is cumulative: the opener may send the bytes
// below offset `credit` (ACCEPT) or `upTo` (the latest CREDIT), never more. END true is the opener's end of
// stream and says how many bytes it sent; END false resets the stream from either side. Offsets and
// lengths are unsigned integers up to 2^53 − 1. The decoder checks shapes and ranges only; whether a name
// is acceptable is the listener's decision (so it can answer REFUSE bad-name), see `streamNameProblem`.
import { DecodeError, EncodeError } from './errors.js';
import {
  bytesToHex,
  checkBytes,
  checkCode,
  checkUint,
  clipReason,
  isBytes,
  isCode,
  isReason,
  isUint,
  MAX_REASON_CHARS,
  textLengthProblem,
} from './fields.js';
import { decodeItem } from './item.js';
import { encodeJsonCbor } from './json-cbor.js';
import { utf8Length } from './utf8.js';

export const StreamKind = {
  open: 24,
  accept: 25,
  refuse: 26,
  data: 27,
  credit: 28,
  end: 29,
} as const;

export const STREAM_ID_BYTES = 16;
/** Longest stream name, in UTF-8 bytes. */
export const MAX_STREAM_NAME_BYTES = 64;
/** Largest DATA any listener accepts (a TCP link might carry this; BLE and routed links far less). */
export const MAX_STREAM_DATA_BYTES = 1024 * 1024;
/** Longest REFUSE or END message, in characters (UTF-16 units, as JavaScript counts). */
export { MAX_REASON_CHARS };
/**
 * Bytes a DATA adds around its data at most: array, kind (2: 24 and up take a one-byte argument), id,
 * offset (9) and the byte string's head (5).
 */
export const STREAM_DATA_OVERHEAD_BYTES = 1 + 2 + (1 + STREAM_ID_BYTES) + 9 + 5;

/** Why a listener refuses an OPEN. */
export const REFUSE_CODES = ['no-listener', 'busy', 'refused', 'bad-name'] as const;
export type RefuseCode = (typeof REFUSE_CODES)[number];

/**
 * Why a stream was reset (END false). aborted: the opener's application gave up (or its link failed);
 * closed: the listener's application stopped reading before the end (EPIPE); timeout: nothing moved for
 * too long; protocol: the other side broke the protocol; shutdown: the agent is stopping.
 */
export const END_CODES = ['aborted', 'closed', 'timeout', 'protocol', 'shutdown'] as const;
export type EndCode = (typeof END_CODES)[number];

export interface StreamOpenMessage {
  kind: 'open';
  streamId: Uint8Array;
  /** What the opener wants to reach on the listener's side. */
  name: string;
}

export interface StreamAcceptMessage {
  kind: 'accept';
  streamId: Uint8Array;
  /** The opener may send the bytes below this offset. */
  credit: number;
}

export interface StreamRefuseMessage {
  kind: 'refuse';
  streamId: Uint8Array;
  code: RefuseCode;
  message: string;
}

export interface StreamDataMessage {
  kind: 'data';
  streamId: Uint8Array;
  /** Where `bytes` start in the stream: every DATA starts where the one before ended. */
  offset: number;
  bytes: Uint8Array;
}

export interface StreamCreditMessage {
  kind: 'credit';
  streamId: Uint8Array;
  /** The opener may send the bytes below this offset (cumulative; never decreases). */
  upTo: number;
}

export interface StreamEndMessage {
  kind: 'end';
  streamId: Uint8Array;
  /** ok: the opener sent `length` bytes in all and no more will come; not ok: the stream is reset. */
  outcome: { ok: true; length: number } | { ok: false; code: EndCode; message: string };
}

export type StreamMessage =
  | StreamOpenMessage
  | StreamAcceptMessage
  | StreamRefuseMessage
  | StreamDataMessage
  | StreamCreditMessage
  | StreamEndMessage;

/** Encodes a stream message; throws EncodeError when our own code built an invalid one. */
export function encodeStream(message: StreamMessage): Uint8Array {
  checkBytes(message.streamId, STREAM_ID_BYTES, 'streamId');
  const id = message.streamId;
  switch (message.kind) {
    case 'open':
      if (!isName(message.name)) {
        throw new EncodeError(`OPEN name is not 1..${MAX_STREAM_NAME_BYTES} bytes of UTF-8`);
      }
      return encodeJsonCbor([StreamKind.open, id, message.name]);
    case 'accept':
      checkUint(message.credit, 'ACCEPT credit');
      return encodeJsonCbor([StreamKind.accept, id, message.credit]);
    case 'refuse':
      checkCode(message.code, REFUSE_CODES, 'REFUSE code');
      return encodeJsonCbor([StreamKind.refuse, id, message.code, clipReason(message.message)]);
    case 'data':
      checkUint(message.offset, 'DATA offset');
      if (!isData(message.offset, message.bytes)) {
        throw new EncodeError(`DATA bytes are not 1..${MAX_STREAM_DATA_BYTES} bytes within 2^53 - 1`);
      }
      return encodeJsonCbor([StreamKind.data, id, message.offset, message.bytes]);
    case 'credit':
      checkUint(message.upTo, 'CREDIT upTo');
      return encodeJsonCbor([StreamKind.credit, id, message.upTo]);
    case 'end': {
      const { outcome } = message;
      if (outcome.ok) {
        checkUint(outcome.length, 'END length');
        return encodeJsonCbor([StreamKind.end, id, true, outcome.length]);
      }
      checkCode(outcome.code, END_CODES, 'END code');
      return encodeJsonCbor([StreamKind.end, id, false, outcome.code, clipReason(outcome.message)]);
    }
  }
}

/** Decodes a stream message. Never throws: anything malformed is a DecodeError. */
export function decodeStream(bytes: Uint8Array): StreamMessage | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const head = item.value;
  if (!Array.isArray(head) || typeof head[0] !== 'number') return bad('is not [kind, streamId, ...]');
  const fields = head as unknown[];
  const streamId = fields[1];
  if (!isBytes(streamId, STREAM_ID_BYTES)) return bad(`streamId is not ${STREAM_ID_BYTES} bytes`);
  const [, , a, b, c] = fields;
  switch (head[0]) {
    case StreamKind.open:
      if (fields.length !== 3 || !isName(a)) {
        return bad(`OPEN is not [24, streamId, name of 1..${MAX_STREAM_NAME_BYTES} bytes]`);
      }
      return { kind: 'open', streamId, name: a };
    case StreamKind.accept:
      if (fields.length !== 3 || !isUint(a)) return bad('ACCEPT is not [25, streamId, credit]');
      return { kind: 'accept', streamId, credit: a };
    case StreamKind.refuse:
      if (fields.length !== 4 || !isCode(a, REFUSE_CODES) || !isReason(b)) {
        return bad('REFUSE is not [26, streamId, code, message]');
      }
      return { kind: 'refuse', streamId, code: a, message: b };
    case StreamKind.data:
      if (fields.length !== 4 || !isUint(a) || !isData(a, b)) {
        return bad(`DATA is not [27, streamId, offset, 1..${MAX_STREAM_DATA_BYTES} bytes]`);
      }
      return { kind: 'data', streamId, offset: a, bytes: b };
    case StreamKind.credit:
      if (fields.length !== 3 || !isUint(a)) return bad('CREDIT is not [28, streamId, upTo]');
      return { kind: 'credit', streamId, upTo: a };
    case StreamKind.end:
      if (a === true && fields.length === 4 && isUint(b)) {
        return { kind: 'end', streamId, outcome: { ok: true, length: b } };
      }
      if (a !== false || fields.length !== 5 || !isCode(b, END_CODES) || !isReason(c)) {
        return bad('END is not [29, streamId, true, length] or [29, streamId, false, code, message]');
      }
      return { kind: 'end', streamId, outcome: { ok: false, code: b, message: c } };
    default:
      return bad(`kind ${String(head[0])} is unknown`);
  }
}

/**
 * Why `name` is not an acceptable stream name, or null when it is: empty or longer than
 * MAX_STREAM_NAME_BYTES of UTF-8, a lone surrogate, white space at either end, or a character that does
 * not print: a control character (U+0000–U+001F, U+007F–U+009F), a line or paragraph separator, or a
 * bidirectional formatting character (which would make a name look like another in logs and listings).
 */
export function streamNameProblem(name: string): string | null {
  const problem = textLengthProblem(name, MAX_STREAM_NAME_BYTES);
  if (problem !== null) return problem;
  if (name.trim() !== name) return 'starts or ends with white space';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) return 'contains a control character';
  if (/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(name)) {
    return 'contains a bidirectional formatting character';
  }
  return null;
}

/** The stream id as 32 lowercase hex digits (maps, logs, errors). */
export function streamIdToHex(id: Uint8Array): string {
  return bytesToHex(id);
}

function isName(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const length = utf8Length(value);
  return length >= 1 && length <= MAX_STREAM_NAME_BYTES;
}

function isData(offset: number, bytes: unknown): bytes is Uint8Array {
  return (
    bytes instanceof Uint8Array &&
    bytes.length >= 1 &&
    bytes.length <= MAX_STREAM_DATA_BYTES &&
    offset + bytes.length <= Number.MAX_SAFE_INTEGER
  );
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `stream message ${detail}`);
}
