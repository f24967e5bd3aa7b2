// The Noise "25519 / ChaChaPoly / SHA256" primitive set (DH, AEAD, hash, HKDF), all on node:crypto.
// Kept apart from the state machines so the protocol objects read like the spec.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { x25519, x25519PrivateKey } from '../identity/x25519.js';
import { NoiseDecryptError, NoiseProtocolError } from './errors.js';

export const DH_LEN = 32;
export const HASH_LEN = 32;
export const KEY_LEN = 32;
export const TAG_LEN = 16;

/** An X25519 key pair: raw 32-byte keys (the form Noise puts on the wire and the vectors use), plus the
 * private key already imported into OpenSSL, because importing costs ten times the DH itself. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
  readonly privateKeyObject: KeyObject;
}

/** A plain Uint8Array view of a Buffer (no copy), so callers never see Buffer's different slice() and equality. */
export function plain(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function keyPairFromObject(privateKeyObject: KeyObject): KeyPair {
  const jwk = privateKeyObject.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string' || typeof jwk.x !== 'string')
    throw new NoiseProtocolError('not an X25519 key');
  return {
    publicKey: Uint8Array.from(Buffer.from(jwk.x, 'base64url')),
    privateKey: Uint8Array.from(Buffer.from(jwk.d, 'base64url')),
    privateKeyObject,
  };
}

export function generateKeyPair(): KeyPair {
  return keyPairFromObject(generateKeyPairSync('x25519').privateKey);
}

/** Rebuilds a key pair from a raw private key (fixed keys for test vectors, or keys loaded from disk). */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== DH_LEN)
    throw new NoiseProtocolError(`X25519 private key must be ${DH_LEN} bytes`);
  return keyPairFromObject(x25519PrivateKey(privateKey));
}

/** X25519. A low-order remote key makes OpenSSL refuse (all-zero secret); that surfaces as a typed error. */
export function dh(keyPair: KeyPair, remotePublicKey: Uint8Array): Uint8Array {
  try {
    return x25519(keyPair.privateKeyObject, remotePublicKey);
  } catch (error) {
    throw new NoiseProtocolError('X25519 failed: invalid remote public key', { cause: error });
  }
}

// ChaChaPoly nonce: 32 bits of zeros, then the 64-bit counter little-endian (spec section 12.3).
function nonceBytes(nonce: bigint): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.writeBigUInt64LE(nonce, 4);
  return bytes;
}

export function aeadEncrypt(
  key: Uint8Array,
  nonce: bigint,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv('chacha20-poly1305', key, nonceBytes(nonce), { authTagLength: TAG_LEN });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return plain(Buffer.concat([head, tail, cipher.getAuthTag()], head.length + tail.length + TAG_LEN));
}

/**
 * Like aeadEncrypt for a plaintext given as parts, returning the ciphertext as parts (each part's
 * ciphertext, then the tag): bulk payloads are encrypted where they lie and never joined by a copy.
 */
export function aeadEncryptParts(
  key: Uint8Array,
  nonce: bigint,
  ad: Uint8Array,
  parts: readonly Uint8Array[],
): Uint8Array[] {
  let plaintextLength = 0;
  for (const part of parts) plaintextLength += part.length;
  const cipher = createCipheriv('chacha20-poly1305', key, nonceBytes(nonce), { authTagLength: TAG_LEN });
  cipher.setAAD(ad, { plaintextLength });
  const out: Uint8Array[] = [];
  for (const part of parts) out.push(plain(cipher.update(part)));
  const tail = cipher.final();
  if (tail.length > 0) out.push(plain(tail));
  out.push(plain(cipher.getAuthTag()));
  return out;
}

export function aeadDecrypt(
  key: Uint8Array,
  nonce: bigint,
  ad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  if (ciphertext.length < TAG_LEN)
    throw new NoiseDecryptError('ciphertext shorter than its authentication tag');
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceBytes(nonce), { authTagLength: TAG_LEN });
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LEN));
  decipher.setAAD(ad, { plaintextLength: ciphertext.length - TAG_LEN });
  const head = decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_LEN));
  let tail: Buffer;
  try {
    tail = decipher.final();
  } catch {
    throw new NoiseDecryptError();
  }
  // A stream cipher has nothing left for final(): skip the copy a concat would make of bulk data.
  return plain(tail.length === 0 ? head : Buffer.concat([head, tail]));
}

export function hash(data: Uint8Array): Uint8Array {
  return plain(createHash('sha256').update(data).digest());
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return plain(mac.digest());
}

/** Noise HKDF (spec section 4.3) with two outputs: HMAC-SHA256 extract keyed by the chaining key, then expand. */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmac(chainingKey, inputKeyMaterial);
  const out1 = hmac(tempKey, Uint8Array.of(0x01));
  return [out1, hmac(tempKey, out1, Uint8Array.of(0x02))];
}

/** Noise HKDF with three outputs (MixKeyAndHash, used by the psk token). */
export function hkdf3(
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
): [Uint8Array, Uint8Array, Uint8Array] {
  const tempKey = hmac(chainingKey, inputKeyMaterial);
  const out1 = hmac(tempKey, Uint8Array.of(0x01));
  const out2 = hmac(tempKey, out1, Uint8Array.of(0x02));
  return [out1, out2, hmac(tempKey, out2, Uint8Array.of(0x03))];
}
