// The bulk transfer wire format (agent/protocol/transfer.ts): every message round-trips exactly, cborg (an
// independent CBOR implementation) reads the same array, whatever bytes arrive decodeTransfer returns a
// message or a DecodeError and never throws (file names are judged in test/unit/protocol/file-name.test.ts).
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DecodeError, EncodeError } from '../../../../agent/protocol/errors.js';
import {
  CHUNK_OVERHEAD_BYTES,
  decodeTransfer,
  encodeTransfer,
  layoutChunk,
  MAX_CHUNK_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_REASON_CHARS,
  MAX_WINDOW,
  REJECT_CODES,
  RESULT_CODES,
  SHA256_BYTES,
  TRANSFER_ID_BYTES,
  TransferKind,
  type TransferMessage,
  transferIdFromHex,
  transferIdToHex,
} from '../../../../agent/protocol/transfer.js';
import {
  bytesArb,
  nameArb,
  reasonArb as reason,
  testDecoderRobustness,
  uintArb as uint,
} from '../../../support/system-codec.js';

const id = bytesArb(TRANSFER_ID_BYTES);
const sha = bytesArb(SHA256_BYTES);
const name = nameArb(60, MAX_FILE_NAME_BYTES);

const message: fc.Arbitrary<TransferMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('offer' as const),
    transferId: id,
    name,
    size: uint,
    chunkSize: fc.integer({ min: 1, max: MAX_CHUNK_BYTES }),
  }),
  fc.record({
    kind: fc.constant('accept' as const),
    transferId: id,
    resumeFrom: uint,
    window: fc.integer({ min: 1, max: MAX_WINDOW }),
  }),
  fc.record({
    kind: fc.constant('reject' as const),
    transferId: id,
    code: fc.constantFrom(...REJECT_CODES),
    message: reason,
  }),
  fc.record({
    kind: fc.constant('chunk' as const),
    transferId: id,
    offset: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  }),
  fc.record({ kind: fc.constant('chunk-ack' as const), transferId: id, upTo: uint }),
  fc.record({ kind: fc.constant('done' as const), transferId: id, sha256: sha }),
  fc.record({
    kind: fc.constant('transfer-result' as const),
    transferId: id,
    outcome: fc.oneof(
      fc.constant({ ok: true as const }),
      fc.record({ ok: fc.constant(false as const), code: fc.constantFrom(...RESULT_CODES), message: reason }),
    ),
  }),
  fc.record({ kind: fc.constant('cancel' as const), transferId: id, reason }),
);

const KIND_NUMBER: Record<TransferMessage['kind'], number> = {
  offer: TransferKind.offer,
  accept: TransferKind.accept,
  reject: TransferKind.reject,
  chunk: TransferKind.chunk,
  'chunk-ack': TransferKind.chunkAck,
  done: TransferKind.done,
  'transfer-result': TransferKind.result,
  cancel: TransferKind.cancel,
};

describe('transfer codec', () => {
  test('every message round-trips, and cborg reads [kind, transferId, ...]', () => {
    fc.assert(
      fc.property(message, (original) => {
        const bytes = encodeTransfer(original);
        expect(decodeTransfer(bytes)).toEqual(original);
        const independent = cborg.decode(bytes) as unknown[];
        expect(independent[0]).toBe(KIND_NUMBER[original.kind]);
        expect(independent[1]).toEqual(original.transferId);
      }),
      { numRuns: 2000 },
    );
  });

  test('kinds are 16..23, clear of the coordination kinds 1..9', () => {
    expect(Object.values(TransferKind).sort((a, b) => a - b)).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
  });

  testDecoderRobustness({
    decode: decodeTransfer,
    encode: encodeTransfer,
    message,
    interestingBytes: [0x80, 0x84, 0x90, 0x50, 0x1b, 0xf5, 0xf4, 0x60, 0xf9],
  });

  test('CBOR arrays of the right kind but wrong fields are refused', () => {
    const tid = new Uint8Array(TRANSFER_ID_BYTES);
    const cases: unknown[] = [
      [16, tid, 'x', -1, 100],
      [16, tid, 'x', 10, new Uint8Array(32), 100],
      [16, tid, 'x', 10, 0],
      [16, tid, 'x', 10, MAX_CHUNK_BYTES + 1],
      [16, tid, '', 10, 100],
      [16, tid, 'a'.repeat(MAX_FILE_NAME_BYTES + 1), 10, 100],
      [16, tid, 'x', 2 ** 53, 100],
      [16, tid, 'x', 10, 100, 'extra'],
      [16, new Uint8Array(15), 'x', 10, 100],
      [17, tid, 0, 0],
      [17, tid, 0, MAX_WINDOW + 1],
      [18, tid, 'no-such-code', ''],
      [18, tid, 'refused', 'm'.repeat(MAX_REASON_CHARS + 1)],
      [19, tid, 0, new Uint8Array(0)],
      [19, tid, 1.5, new Uint8Array(1)],
      [19, tid, 0, 'not bytes'],
      [20, tid, -5],
      [21, tid],
      [21, tid, new Uint8Array(31)],
      [21, tid, new Uint8Array(32), 0],
      [22, tid, true, 'extra'],
      [22, tid, false, 'hash-mismatch'],
      [22, tid, false, 'bogus', 'message'],
      [23, tid],
      [24, tid],
      [3, tid],
      'not an array',
    ];
    for (const value of cases) {
      const decoded = decodeTransfer(cborg.encode(value));
      expect(decoded, JSON.stringify(value)).toBeInstanceOf(DecodeError);
    }
  });

  test('encoding an invalid message throws EncodeError', () => {
    const tid = new Uint8Array(TRANSFER_ID_BYTES);
    const bad: unknown[] = [
      { kind: 'done', transferId: new Uint8Array(3), sha256: new Uint8Array(32) },
      { kind: 'done', transferId: tid, sha256: new Uint8Array(31) },
      { kind: 'offer', transferId: tid, name: '', size: 1, chunkSize: 1 },
      { kind: 'offer', transferId: tid, name: 'x', size: -1, chunkSize: 1 },
      { kind: 'chunk', transferId: tid, offset: 0, bytes: new Uint8Array(0) },
      { kind: 'accept', transferId: tid, resumeFrom: 0, window: 0 },
      { kind: 'reject', transferId: tid, code: 'nope', message: '' },
    ];
    for (const value of bad) expect(() => encodeTransfer(value as TransferMessage)).toThrow(EncodeError);
  });

  test('long reasons are clipped to what a decoder accepts', () => {
    const tid = new Uint8Array(TRANSFER_ID_BYTES);
    const decoded = decodeTransfer(
      encodeTransfer({ kind: 'cancel', transferId: tid, reason: '€'.repeat(5000) }),
    );
    expect(decoded).not.toBeInstanceOf(DecodeError);
    expect((decoded as { reason: string }).reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
  });

  test('a CHUNK laid out to be filled in place encodes exactly as encodeTransfer encodes it', () => {
    // One buffer for every chunk, as the sender reuses its buffers: what an earlier one left is overwritten.
    const buffer = new Uint8Array(70_000 + CHUNK_OVERHEAD_BYTES).fill(0xee);
    fc.assert(
      fc.property(
        id,
        uint,
        fc.uint8Array({ minLength: 1, maxLength: 70_000 }),
        (transferId, offset, bytes) => {
          const chunk = layoutChunk(buffer, transferId, offset, bytes.length);
          chunk.data.set(bytes);
          expect(chunk.payload).toEqual(encodeTransfer({ kind: 'chunk', transferId, offset, bytes }));
        },
      ),
      { numRuns: 300 },
    );
    const big = new Uint8Array(MAX_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES + 1);
    expect(() => layoutChunk(big, new Uint8Array(16), 0, 0)).toThrow(EncodeError);
    expect(() => layoutChunk(big, new Uint8Array(16), 0, MAX_CHUNK_BYTES + 1)).toThrow(EncodeError);
    expect(() => layoutChunk(big, new Uint8Array(15), 0, 1)).toThrow(EncodeError);
    expect(() => layoutChunk(new Uint8Array(100), new Uint8Array(16), 2 ** 40, 100)).toThrow(EncodeError);
  });

  test("a decoded CHUNK's data shares the payload's memory; its transfer id and a DONE's hash do not", () => {
    const transferId = new Uint8Array(16).fill(7);
    const payload = encodeTransfer({
      kind: 'chunk',
      transferId,
      offset: 5,
      bytes: new Uint8Array(1000).fill(1),
    });
    const chunk = decodeTransfer(payload) as Extract<TransferMessage, { kind: 'chunk' }>;
    payload.fill(9);
    expect(chunk.bytes.every((b) => b === 9)).toBe(true);
    expect(chunk.transferId).toEqual(new Uint8Array(16).fill(7));

    const sha256 = new Uint8Array(SHA256_BYTES).fill(3);
    const doneBytes = encodeTransfer({ kind: 'done', transferId, sha256 });
    const done = decodeTransfer(doneBytes) as Extract<TransferMessage, { kind: 'done' }>;
    doneBytes.fill(0);
    expect(done.sha256).toEqual(sha256);
    expect(done.transferId).toEqual(transferId);
  });

  test('transfer ids convert to and from hex', () => {
    fc.assert(
      fc.property(id, (bytes) => {
        expect(transferIdFromHex(transferIdToHex(bytes))).toEqual(bytes);
      }),
    );
    expect(transferIdFromHex('../../etc')).toBeNull();
    expect(transferIdFromHex('AB'.repeat(16))).toBeNull();
  });
});
