// The SYNC digest of held announcements (PROTOCOL.md §13.2): the documented vector, an independent SHA-256
// (@noble/hashes) over the documented layout, and the properties two neighbours rely on to compare holdings.
import { sha256 } from '@noble/hashes/sha2.js';
import { expect, test } from 'vitest';
import { HOLDINGS_DIGEST_CONTEXT, holdingsDigest } from '../../../agent/mesh/holdings.js';

const A = '56475aa75463474c';
const B = '24f6ed6acbfe1009';
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The layout of §13.2 written out again, hashed by another SHA-256 implementation. */
function independentDigest(entries: [string, number][]): string {
  const sorted = [...entries].sort(([a], [b]) => a.localeCompare(b));
  const parts = [Buffer.from(`${HOLDINGS_DIGEST_CONTEXT}\0`, 'utf8')];
  for (const [peerId, id] of sorted) {
    const entry = Buffer.alloc(16);
    Buffer.from(peerId, 'hex').copy(entry, 0);
    entry.writeBigUInt64BE(BigInt(id), 8);
    parts.push(entry);
  }
  return hex(sha256(Buffer.concat(parts)).subarray(0, 16));
}

test('the vectors of PROTOCOL.md §7 (SYNC), and an independent SHA-256 agrees', () => {
  const held: [string, number][] = [
    [A, 7],
    [B, 42],
  ];
  expect(hex(holdingsDigest(held).digest)).toBe('23f486cc0f35ab319cfecb6b46999644');
  expect(independentDigest(held)).toBe('23f486cc0f35ab319cfecb6b46999644');
  expect(holdingsDigest(held).count).toBe(2);
  expect(hex(holdingsDigest([]).digest)).toBe('0b180d13a8f03fdfdbcd05554a4e2325');
  expect(independentDigest([])).toBe('0b180d13a8f03fdfdbcd05554a4e2325');
});

test('two agents holding the same announcements agree whatever order they learnt them in', () => {
  const entries: [string, number][] = Array.from({ length: 50 }, (_, index) => [
    (0x1000_0000_0000_0000n + BigInt(index) * 0x0101_0101_0101n).toString(16),
    index * 3 + 1,
  ]);
  const shuffled = [...entries].reverse();
  expect(hex(holdingsDigest(shuffled).digest)).toBe(hex(holdingsDigest(entries).digest));
  expect(hex(holdingsDigest(entries).digest)).toBe(independentDigest(entries));
});

test('one newer announcement, or one missing, changes the digest', () => {
  const base = hex(
    holdingsDigest([
      [A, 7],
      [B, 42],
    ]).digest,
  );
  expect(
    hex(
      holdingsDigest([
        [A, 8],
        [B, 42],
      ]).digest,
    ),
  ).not.toBe(base);
  expect(hex(holdingsDigest([[B, 42]]).digest)).not.toBe(base);
  // Ids up to 2^53 − 1 (sequence numbers) are written in full.
  expect(hex(holdingsDigest([[A, 2 ** 53 - 1]]).digest)).toBe(independentDigest([[A, 2 ** 53 - 1]]));
});
