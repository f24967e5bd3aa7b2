// The Noise "25519 / ChaChaPoly / SHA256" primitive set (DH, AEAD, hash, HKDF), all on node:crypto.
// Kept apart from the state machines so the protocol objects read like the spec.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { NoiseDecryptError, NoiseProtocolError } from './errors.js';

export const DH_LEN = 32;
export const HASH_LEN = 32;
export const KEY_LEN = 32;
export const TAG_LEN = 16;

/** Raw 32-byte X25519 keys, the form Noise puts on the wire and the vectors use. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

// node:crypto only imports raw X25519 keys wrapped in DER; these are the fixed ASN.1 headers.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** A plain Uint8Array view of a Buffer (no copy), so callers never see Buffer's different slice() and equality. */
export function plain(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]),
    format: 'der',
    type: 'pkcs8',
  });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
}

function rawPublicKey(key: KeyObject): Uint8Array {
  return Uint8Array.from(key.export({ format: 'der', type: 'spki' }).subarray(-DH_LEN));
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    publicKey: rawPublicKey(publicKey),
    privateKey: Uint8Array.from(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-DH_LEN)),
  };
}

/** Rebuilds a key pair from a raw private key (fixed keys for test vectors, or keys loaded from disk). */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== DH_LEN)
    throw new NoiseProtocolError(`X25519 private key must be ${DH_LEN} bytes`);
  return {
    publicKey: rawPublicKey(createPublicKey(privateKeyObject(privateKey))),
    privateKey: Uint8Array.from(privateKey),
  };
}

/** X25519. A low-order remote key makes OpenSSL refuse (all-zero secret); that surfaces as a typed error. */
export function dh(keyPair: KeyPair, remotePublicKey: Uint8Array): Uint8Array {
  try {
    return plain(
      diffieHellman({
        privateKey: privateKeyObject(keyPair.privateKey),
        publicKey: publicKeyObject(remotePublicKey),
      }),
    );
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
  return plain(Buffer.concat([head, tail, cipher.getAuthTag()]));
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
  try {
    return plain(Buffer.concat([head, decipher.final()]));
  } catch {
    throw new NoiseDecryptError();
  }
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
