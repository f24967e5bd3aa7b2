// Peer ids: the first 8 bytes of SHA-256 of the device's raw 32-byte Ed25519 public key, as 16
// lowercase hex characters. Every layer that names a peer uses this form.
import { createHash } from 'node:crypto';

export const PEER_ID_BYTES = 8;
const PEER_ID_PATTERN = /^[0-9a-f]{16}$/;

export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest().subarray(0, PEER_ID_BYTES).toString('hex');
}

export function isPeerId(text: string): boolean {
  return PEER_ID_PATTERN.test(text);
}

export function peerIdToBytes(peerId: string): Uint8Array {
  return Uint8Array.from(Buffer.from(peerId, 'hex'));
}

/**
 * Writes a peer id's 8 bytes into `target` at `offset` and gives the offset after them: every routed message
 * is encoded and authenticated with two ids, so this path allocates nothing. Throws on a malformed id.
 */
export function writePeerId(target: Uint8Array, offset: number, peerId: string): number {
  if (peerId.length !== 2 * PEER_ID_BYTES) throw new RangeError(`${peerId} is not a peer id`);
  for (let i = 0; i < PEER_ID_BYTES; i++) {
    const high = nibble(peerId.charCodeAt(2 * i));
    const low = nibble(peerId.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw new RangeError(`${peerId} is not a peer id`);
    target[offset + i] = (high << 4) | low;
  }
  return offset + PEER_ID_BYTES;
}

/** A lowercase hex digit's value, or −1. */
function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

export function peerIdFromBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
