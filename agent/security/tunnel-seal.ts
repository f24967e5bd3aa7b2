// Sealing and opening site tunnel frames (PROTOCOL.md §20): a routed message crossing an MQTT broker between
// sites travels under the mesh key, so the broker (and anyone else on it) learns neither what it says nor
// how to make one that opens. Under mesh key K, for destination D (its peer id, 16 hex characters):
//   payload = salt(16) || ChaCha20-Poly1305(key = HKDF-SHA256(K, salt, "nearmesh/2 tunnel", 32), nonce = 0,
//                                            ad = D as ASCII, routed message)
// A fresh key per frame (the random salt), so the zero nonce is used once. The origin's own seal inside the
// routed message (§2.1) says which member sent it; this outer seal says a member did.
import { randomBytes } from 'node:crypto';
import { openSalted, SEAL_SALT_BYTES, sealSalted } from './salted-seal.js';

export const TUNNEL_SALT_BYTES = SEAL_SALT_BYTES;
const TUNNEL_KEY_INFO = 'nearmesh/2 tunnel';
const encoder = new TextEncoder();

/** Seals one routed message for `destination` under the mesh key. */
export function sealTunnelFrame(
  meshKey: Uint8Array,
  destination: string,
  message: Uint8Array,
  salt: Uint8Array = randomBytes(TUNNEL_SALT_BYTES),
): Uint8Array {
  return sealSalted(meshKey, TUNNEL_KEY_INFO, encoder.encode(destination), message, salt);
}

/**
 * The routed message inside a frame for `destination`, under whichever accepted key opens it; undefined when
 * none does (another mesh's, altered, or sealed for another destination). Never throws.
 */
export function openTunnelFrame(
  meshKeys: readonly Uint8Array[],
  destination: string,
  payload: Uint8Array,
): Uint8Array | undefined {
  return openSalted(meshKeys, TUNNEL_KEY_INFO, encoder.encode(destination), payload);
}
