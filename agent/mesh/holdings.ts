// What a SYNC sums up (PROTOCOL.md §13.2): the latest ANNOUNCE an agent holds from each origin, its own
// included, as one digest that two neighbours compare. Equal: they hold the same; else they catch up.
import { createHash } from 'node:crypto';
import { SYNC_DIGEST_BYTES } from '../protocol/index.js';

/** Domain separation: a holdings digest never equals a hash made for anything else. */
export const HOLDINGS_DIGEST_CONTEXT = 'nearmesh-sync-v1';

export interface Holdings {
  readonly digest: Uint8Array;
  readonly count: number;
}

/**
 * The first 16 bytes of SHA-256(context ‖ 0x00 ‖ for each origin in peer id order: its 8-byte peer id ‖ the
 * sequence number of its latest ANNOUNCE, 8 bytes big-endian).
 */
export function holdingsDigest(latest: Iterable<readonly [peerId: string, id: number]>): Holdings {
  const entries = [...latest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256')
    .update(HOLDINGS_DIGEST_CONTEXT)
    .update(new Uint8Array([0]));
  const entry = Buffer.alloc(16);
  for (const [peerId, id] of entries) {
    entry.write(peerId, 0, 8, 'hex');
    entry.writeBigUInt64BE(BigInt(id), 8);
    hash.update(entry);
  }
  return { digest: new Uint8Array(hash.digest().subarray(0, SYNC_DIGEST_BYTES)), count: entries.length };
}
