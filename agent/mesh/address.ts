// Mesh destinations (PROTOCOL.md §13.1): a peer id, a group id or everyone. All are 8 bytes on the wire,
// written as 16 lowercase hex characters like peer ids.
import { createHash } from 'node:crypto';

/** The destination of a message for every agent in range of the mesh. */
export const BROADCAST_ID = 'ffffffffffffffff';
/** Domain separation for group ids, so a group id never equals a hash used elsewhere. */
export const GROUP_ID_CONTEXT = 'nearmesh-group-v1';

/** A group's id: the first 8 bytes of SHA-256(context ‖ 0x00 ‖ UTF-8 name). */
export function groupId(name: string): string {
  return createHash('sha256')
    .update(GROUP_ID_CONTEXT)
    .update(new Uint8Array([0]))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 8)
    .toString('hex');
}
