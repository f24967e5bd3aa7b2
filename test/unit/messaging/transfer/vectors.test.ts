// The bulk transfer wire format as docs/PROTOCOL.md §15 documents it, pinned by
// test/fixtures/transfer-vectors.json: the doc's test vector tables and the fixture list the same vectors,
// encodeTransfer writes exactly those bytes and decodeTransfer reads them back, cborg reads the documented
// arrays, and what the section says is rejected is.

import { expect, test } from 'vitest';
import {
  decodeTransfer,
  encodeTransfer,
  TransferKind,
  type TransferMessage,
} from '../../../../agent/protocol/transfer.js';
import { describeSystemVectors } from '../../protocol/system-vectors.js';

/** The array of each message, per docs/PROTOCOL.md §15.2, built without our encoder. */
function expectedFields(m: TransferMessage): unknown[] {
  switch (m.kind) {
    case 'offer':
      return [16, m.transferId, m.name, m.size, m.chunkSize];
    case 'accept':
      return [17, m.transferId, m.resumeFrom, m.window];
    case 'reject':
      return [18, m.transferId, m.code, m.message];
    case 'chunk':
      return [19, m.transferId, m.offset, m.bytes];
    case 'chunk-ack':
      return [20, m.transferId, m.upTo];
    case 'done':
      return [21, m.transferId, m.sha256];
    case 'transfer-result':
      return m.outcome.ok
        ? [22, m.transferId, true]
        : [22, m.transferId, false, m.outcome.code, m.outcome.message];
    case 'cancel':
      return [23, m.transferId, m.reason];
  }
}

const vectors = describeSystemVectors<TransferMessage>({
  file: 'transfer-vectors.json',
  section: 'Bulk transfer',
  key: 'transfer',
  byteFields: ['transferId', 'sha256', 'bytes'],
  encode: encodeTransfer,
  decode: decodeTransfer,
  expectedFields,
});

test('the fixture has every transfer kind, both RESULT forms and a float where a uint belongs', () => {
  const kinds = vectors.map((v) => (v.transfer as { kind?: string } | undefined)?.kind);
  expect(new Set(kinds.filter((k) => k !== undefined)).size).toBe(Object.keys(TransferKind).length);
  const results = vectors.filter(
    (v) => (v.transfer as { kind?: string } | undefined)?.kind === 'transfer-result',
  );
  expect(results.map((v) => (v.transfer as { outcome: { ok: boolean } }).outcome.ok).sort()).toEqual([
    false,
    true,
  ]);
  expect(vectors.some((v) => v.error !== undefined && v.hex.includes('f93c00'))).toBe(true);
});
