// Sealing and opening site tunnel frames (PROTOCOL.md §20): a routed message crossing an MQTT broker between
// sites travels under the mesh key, so the broker (and anyone else on it) learns neither what it says nor
// how to make one that opens. Under mesh key K, for destination D (its peer id, 16 hex characters):
//   payload = salt(16) || ChaCha20-Poly1305(key = HKDF-SHA256(K, salt, "nearmesh/2 tunnel", 32), nonce = 0,
//                                            ad = D as ASCII, routed message)
// A fresh key per frame (the random salt), so the zero nonce is used once. The origin's own seal inside the
// routed message (§2.1) says which member sent it; this outer seal says a member did.
import { hkdfSync, randomBytes } from 'node:crypto';
import { aeadDecrypt, aeadEncrypt } from './noise-crypto.js';

export const TUNNEL_SALT_BYTES = 16;
const TUNNEL_KEY_INFO = 'nearmesh/2 tunnel';
const encoder = new TextEncoder();

/** Seals one routed message for `destination` under the mesh key. */
export function sealTunnelFrame(
  meshKey: Uint8Array,
  destination: string,
  message: Uint8Array,
  salt: Uint8Array = randomBytes(TUNNEL_SALT_BYTES),
): Uint8Array {
  const sealed = aeadEncrypt(frameKey(meshKey, salt), 0n, encoder.encode(destination), message);
  const payload = new Uint8Array(TUNNEL_SALT_BYTES + sealed.length);
  payload.set(salt, 0);
  payload.set(sealed, TUNNEL_SALT_BYTES);
  return payload;
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
  if (payload.length <= TUNNEL_SALT_BYTES) return undefined;
  const salt = payload.subarray(0, TUNNEL_SALT_BYTES);
  const ad = encoder.encode(destination);
  for (const meshKey of meshKeys) {
    try {
      return aeadDecrypt(frameKey(meshKey, salt), 0n, ad, payload.subarray(TUNNEL_SALT_BYTES));
    } catch {
      // Not this key: the next accepted one (a rotation's overlap), or none.
    }
  }
  return undefined;
}

function frameKey(meshKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', meshKey, salt, TUNNEL_KEY_INFO, 32));
}
