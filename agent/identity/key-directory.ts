// The Ed25519 public keys of other agents, by peer id. Peer ids are self-certifying (the first 8 bytes of
// SHA-256 of the key), so a key is taken from whoever presents it: the handshake, a verified signature, an
// ANNOUNCE, or the trust store's record of members. Bounded: the least recently used key goes first.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { setBounded } from '../core/bounded-map.js';
import { peerIdFromPublicKey } from '../core/peer-id.js';

export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Keys kept at most: far more agents than one mesh holds, and a few MB at worst. */
export const DEFAULT_KEY_DIRECTORY_CAPACITY = 4_096;

interface KnownKey {
  readonly publicKey: Uint8Array;
  /** Built on first use: a KeyObject per verification would cost more than the verification. */
  verifier: KeyObject | undefined;
}

export class KeyDirectory {
  readonly #keys = new Map<string, KnownKey>();

  constructor(
    readonly capacity = DEFAULT_KEY_DIRECTORY_CAPACITY,
    /** Told of every key not known before (the trust store persists them). */
    private readonly onLearned?: (peerId: string, publicKey: Uint8Array) => void,
  ) {}

  get size(): number {
    return this.#keys.size;
  }

  /** Marks the key of `peerId`, if known, as recently used (it just verified a signature). */
  touch(peerId: string): void {
    const known = this.#keys.get(peerId);
    if (known !== undefined) setBounded(this.#keys, peerId, known, this.capacity);
  }

  /** Records a key; returns its peer id. A key already known is only marked as recently used. */
  learn(publicKey: Uint8Array): string {
    if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new RangeError('not a 32-byte Ed25519 key');
    const peerId = peerIdFromPublicKey(publicKey);
    const known = this.#keys.get(peerId);
    setBounded(
      this.#keys,
      peerId,
      known ?? { publicKey: Uint8Array.from(publicKey), verifier: undefined },
      this.capacity,
    );
    if (known === undefined) this.onLearned?.(peerId, publicKey);
    return peerId;
  }

  /** Records a key known from before (the trust store) without telling onLearned. */
  restore(publicKey: Uint8Array): void {
    if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return;
    const peerId = peerIdFromPublicKey(publicKey);
    if (this.#keys.has(peerId) || this.#keys.size >= this.capacity) return;
    this.#keys.set(peerId, { publicKey: Uint8Array.from(publicKey), verifier: undefined });
  }

  publicKeyOf(peerId: string): Uint8Array | undefined {
    return this.#keys.get(peerId)?.publicKey;
  }

  /** The key as a node:crypto KeyObject for verify(), built once per key. */
  verifierOf(peerId: string): KeyObject | undefined {
    const known = this.#keys.get(peerId);
    if (known === undefined) return undefined;
    known.verifier ??= verifierFor(known.publicKey);
    return known.verifier;
  }
}

/** A raw Ed25519 public key as a KeyObject for node:crypto's verify(). */
export function verifierFor(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
}
