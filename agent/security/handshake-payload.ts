// The identity payload carried in Noise messages 2 and 3: who the sender is, and its proof that the
// Noise static key it just sent belongs to that Ed25519 identity. CBOR: [version, edKey, sig, name].

import { peerIdFromPublicKey } from '../core/peer-id.js';
import { type Identity, verifySignature } from '../identity/identity.js';
import { decodeItem, encodeItem } from '../protocol/index.js';
import { HandshakeError } from './errors.js';

export const HANDSHAKE_PAYLOAD_VERSION = 1;
/** Domain separation: this signature can never be confused with one made for another purpose. */
export const STATIC_KEY_SIGNATURE_CONTEXT = 'nearmesh-noise-static-v1';

const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;

/** What a verified payload proves about the remote side. */
export interface ProvenPeer {
  readonly peerId: string;
  readonly publicKey: Uint8Array;
  readonly name: string;
}

export function staticKeySignatureInput(noiseStaticPublicKey: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(STATIC_KEY_SIGNATURE_CONTEXT, 'ascii'), noiseStaticPublicKey]);
}

export function encodeHandshakePayload(
  identity: Identity,
  name: string,
  noiseStaticPublicKey: Uint8Array,
): Uint8Array {
  const signature = identity.sign(staticKeySignatureInput(noiseStaticPublicKey));
  return encodeItem([HANDSHAKE_PAYLOAD_VERSION, identity.publicKey, signature, name]);
}

/**
 * Validates the payload and checks that its signature covers `remoteStaticPublicKey`, the key the
 * Noise handshake authenticated. Trailing array elements are ignored so later versions can append.
 * Throws HandshakeError('bad-identity') for anything else.
 */
export function verifyHandshakePayload(payload: Uint8Array, remoteStaticPublicKey: Uint8Array): ProvenPeer {
  const item = decodeItem(payload);
  if (!item.ok) {
    throw new HandshakeError('bad-identity', 'peer identity payload is not valid CBOR', {
      cause: item.error,
    });
  }
  const decoded = item.value;
  if (!Array.isArray(decoded) || decoded.length < 4) {
    throw new HandshakeError('bad-identity', 'peer identity payload is not an array of at least 4 elements');
  }
  const [version, publicKey, signature, name] = decoded as unknown[];
  if (version !== HANDSHAKE_PAYLOAD_VERSION) {
    throw new HandshakeError(
      'bad-identity',
      `peer identity payload has unsupported version ${String(version)}`,
    );
  }
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new HandshakeError('bad-identity', 'peer identity payload has no 32-byte Ed25519 public key');
  }
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new HandshakeError('bad-identity', 'peer identity payload has no 64-byte signature');
  }
  if (typeof name !== 'string') throw new HandshakeError('bad-identity', 'peer identity payload has no name');
  if (!verifySignature(publicKey, staticKeySignatureInput(remoteStaticPublicKey), signature)) {
    throw new HandshakeError('bad-identity', 'peer identity signature does not cover its Noise static key');
  }
  const ownedKey = Uint8Array.from(publicKey);
  return { peerId: peerIdFromPublicKey(ownedKey), publicKey: ownedKey, name };
}
