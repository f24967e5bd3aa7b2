// One message sealed under a key derived from the mesh key and a fresh random salt (the rendezvous records
// of §19, the site tunnel frames of §20):
//   payload = salt(16) || ChaCha20-Poly1305(key = HKDF-SHA256(mesh key, salt, info, 32), nonce = 0, ad, message)
// A fresh key per message, so the zero nonce is used once.
import { hkdfSync, randomBytes } from 'node:crypto';
import { aeadDecrypt, aeadEncrypt } from './noise-crypto.js';

export const SEAL_SALT_BYTES = 16;

export function sealSalted(
  meshKey: Uint8Array,
  info: string,
  ad: Uint8Array,
  message: Uint8Array,
  salt: Uint8Array = randomBytes(SEAL_SALT_BYTES),
): Uint8Array {
  const sealed = aeadEncrypt(saltedKey(meshKey, salt, info), 0n, ad, message);
  const payload = new Uint8Array(SEAL_SALT_BYTES + sealed.length);
  payload.set(salt, 0);
  payload.set(sealed, SEAL_SALT_BYTES);
  return payload;
}

/** The message, under whichever of `meshKeys` opens it; undefined when none does. Never throws. */
export function openSalted(
  meshKeys: readonly Uint8Array[],
  info: string,
  ad: Uint8Array,
  payload: Uint8Array,
): Uint8Array | undefined {
  if (payload.length <= SEAL_SALT_BYTES) return undefined;
  const salt = payload.subarray(0, SEAL_SALT_BYTES);
  for (const meshKey of meshKeys) {
    try {
      return aeadDecrypt(saltedKey(meshKey, salt, info), 0n, ad, payload.subarray(SEAL_SALT_BYTES));
    } catch {
      // Not this key: the next one (a rotation's overlap), or none.
    }
  }
  return undefined;
}

function saltedKey(meshKey: Uint8Array, salt: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', meshKey, salt, info, 32));
}
