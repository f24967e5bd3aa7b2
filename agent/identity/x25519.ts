// Raw X25519 on node:crypto, for the two places that agree keys: an identity's pairwise keys (origin tags) and
// the Noise handshake. node:crypto takes a raw private key only wrapped in PKCS#8 DER, a public one as JWK.
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';

export const X25519_KEY_BYTES = 32;
/** The fixed PKCS#8 header in front of a raw X25519 private key (RFC 8410). */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A raw 32-byte X25519 private key as a KeyObject (import once: it costs ten times the DH itself). */
export function x25519PrivateKey(scalar: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, scalar]),
    format: 'der',
    type: 'pkcs8',
  });
}

/**
 * X25519 of `privateKey` and a raw public key. Throws (OpenSSL's error) for a key that is not a point, and for
 * a low-order one, whose secret would be all zeros (RFC 7748 §6.1); callers turn that into their own error.
 */
export function x25519(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array {
  // JWK import of a public key is several times cheaper than SPKI DER.
  const remote = createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
  const secret = diffieHellman({ privateKey, publicKey: remote });
  return new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength);
}
