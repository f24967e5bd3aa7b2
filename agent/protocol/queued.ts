// Durable reliable messages (PROTOCOL.md §17): the payloads of system DATA that carry an app message out of
// the sender's durable queue and acknowledge it end to end, once the receiver has recorded it as handed to
// its apps. Each is one CBOR array whose first element says what it is. Kinds 12–13, clear of coordination
// (1–9), bulk transfer (16–23) and streams (24–29):
//
//   12 QUEUED    [12, epoch, seq, payload]     sender → receiver
//   13 RECEIVED  [13, epoch, upTo]             receiver → sender (cumulative: every seq ≤ upTo is delivered)
//
// epoch is the 8 bytes naming the sender's queue file (seqs start again at 1 only under a new epoch), seq a
// uint 1 .. 2^53 − 1, payload the app's bytes.
import { DecodeError, EncodeError } from './errors.js';
import { bytesToHex, checkUint, isBytes, isUint } from './fields.js';
import { decodeItem } from './item.js';
import { encodeJsonCbor } from './json-cbor.js';

export const QueuedKind = { queued: 12, received: 13 } as const;
export const EPOCH_BYTES = 8;

export interface QueuedMessage {
  kind: 'queued';
  /** The sender's queue epoch as 16 lowercase hex digits. */
  epoch: string;
  seq: number;
  payload: Uint8Array;
}

export interface ReceivedUpTo {
  kind: 'received';
  epoch: string;
  upTo: number;
}

export type QueuedWireMessage = QueuedMessage | ReceivedUpTo;

/** Bytes a QUEUED adds around the payload: array, kind, epoch (1 + 8), seq (up to 9), the bstr head (up to 9). */
export const QUEUED_OVERHEAD_BYTES = 1 + 1 + 1 + EPOCH_BYTES + 9 + 9;

export function encodeQueued(message: QueuedWireMessage): Uint8Array {
  const epoch = epochBytes(message.epoch);
  if (message.kind === 'queued') {
    if (!isSeq(message.seq)) throw new EncodeError('QUEUED seq is not 1..2^53 - 1');
    return encodeJsonCbor([QueuedKind.queued, epoch, message.seq, message.payload]);
  }
  checkUint(message.upTo, 'RECEIVED upTo');
  return encodeJsonCbor([QueuedKind.received, epoch, message.upTo]);
}

/** Decodes a QUEUED or RECEIVED. Never throws: anything malformed is a DecodeError. */
export function decodeQueued(bytes: Uint8Array): QueuedWireMessage | DecodeError {
  // Every number here is a uint: a float 1.0 must not pass for the seq 1.
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const fields = item.value;
  if (!Array.isArray(fields) || fields.length < 3) return bad('is not [kind, epoch, ...]');
  const [kind, epoch, number, payload] = fields as unknown[];
  if (!isBytes(epoch, EPOCH_BYTES)) return bad(`epoch is not ${EPOCH_BYTES} bytes`);
  const epochHex = bytesToHex(epoch);
  if (kind === QueuedKind.queued) {
    if (fields.length !== 4 || !isSeq(number) || !(payload instanceof Uint8Array)) {
      return bad('QUEUED is not [12, epoch, seq ≥ 1, payload]');
    }
    return { kind: 'queued', epoch: epochHex, seq: number, payload };
  }
  if (kind === QueuedKind.received) {
    if (fields.length !== 3 || !isUint(number)) return bad('RECEIVED is not [13, epoch, upTo]');
    return { kind: 'received', epoch: epochHex, upTo: number };
  }
  return bad(`kind ${String(kind)} is unknown`);
}

function epochBytes(hex: string): Uint8Array {
  if (!new RegExp(`^[0-9a-f]{${EPOCH_BYTES * 2}}$`).test(hex)) {
    throw new EncodeError(`epoch is not ${EPOCH_BYTES * 2} hex digits`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function isSeq(value: unknown): value is number {
  return isUint(value) && value >= 1;
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `queued message ${detail}`);
}
