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

export function peerIdFromBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
