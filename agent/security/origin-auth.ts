// Origin authentication of routed messages (PROTOCOL.md §2.1): the origin seals every routed message, and
// whoever can checks that it really comes from its `src` before believing it. A message for one agent
// carries a 16-byte tag, HMAC-SHA256 under a key only the two agents share (X25519 of their identities,
// through HKDF); a message for many (ANNOUNCE, broadcast, group), or for an agent whose key the origin does
// not know, carries the origin's Ed25519 key and signature, which every relay can check.
import { createHmac, hkdfSync, timingSafeEqual, verify } from 'node:crypto';
import { setBounded } from '../core/bounded-map.js';
import { peerIdFromPublicKey, peerIdToBytes } from '../core/peer-id.js';
import { type Identity, KeyAgreementError } from '../identity/identity.js';
import { type KeyDirectory, verifierFor } from '../identity/key-directory.js';
import { ORIGIN_SIGNATURE_AUTH_BYTES, ORIGIN_TAG_BYTES } from '../protocol/envelope.js';
import type { RoutedMessage } from '../protocol/index.js';
import { originAuthInput } from '../protocol/origin.js';

/** HKDF salt of the pairwise key: no other key of the protocol comes from the same secret. */
export const PAIRWISE_KEY_SALT = 'nearmesh/2 pairwise';
const PAIRWISE_KEY_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;
/** Pairwise keys cached: one X25519 and one HKDF per pair, not per message. */
const DEFAULT_PAIR_KEY_CAPACITY = 1_024;

/** What a check of a message's origin found. */
export type OriginVerdict =
  /** It comes from its src. */
  | 'ok'
  /** A tag for another agent: only its destination can check it; a relay forwards it unchecked. */
  | 'unverifiable'
  /** A tag for this agent from an origin whose key this agent does not know (yet). */
  | 'unknown-origin'
  /** The tag does not match: altered, or not made by src. */
  | 'bad-tag'
  /** The key is not src's, or the signature does not verify. */
  | 'bad-signature';

/** A routed message dropped because its origin could not be proven. */
export interface AuthFailure {
  /** The direct neighbour that handed it over. */
  neighbour: string;
  /** The origin it claimed. */
  source: string;
  reason: Exclude<OriginVerdict, 'ok' | 'unverifiable' | 'unknown-origin'>;
  /**
   * The neighbour must have made it: every agent checks signatures before forwarding, and a tag under the
   * neighbour's own id can only be the neighbour's. False when an honest relay may have passed it on.
   */
  attributable: boolean;
}

export class OriginAuth {
  readonly #pairKeys = new Map<string, Uint8Array | null>();

  constructor(
    private readonly identity: Identity,
    readonly keys: KeyDirectory,
    private readonly pairKeyCapacity = DEFAULT_PAIR_KEY_CAPACITY,
  ) {}

  get selfId(): string {
    return this.identity.peerId;
  }

  /**
   * The auth field for a message this agent originates (its auth, if any, is ignored): a tag when it is
   * for one agent whose key is known, otherwise the signature form. `isForMany`: a group or everyone.
   */
  seal(message: RoutedMessage, isForMany: boolean): Uint8Array {
    const destination = message.route?.destination;
    const pairKey = isForMany || destination === undefined ? undefined : this.#pairKey(destination);
    if (pairKey !== undefined) return tag(pairKey, originAuthInput(message));
    const signature = this.identity.sign(originAuthInput(message));
    const auth = new Uint8Array(ORIGIN_SIGNATURE_AUTH_BYTES);
    auth.set(this.identity.publicKey, 0);
    auth.set(signature, PUBLIC_KEY_BYTES);
    return auth;
  }

  /**
   * Checks that a routed message comes from its src. `isForMany`: it is an ANNOUNCE or for a group or
   * everyone, which must be signed (a tag proves nothing to its many receivers). Never throws.
   */
  verify(message: RoutedMessage, isForMany: boolean): OriginVerdict {
    const { route, auth } = message;
    if (route === undefined || auth === undefined) return 'bad-signature';
    if (auth.length === ORIGIN_SIGNATURE_AUTH_BYTES)
      return this.#verifySignature(message, route.source, auth);
    if (isForMany) return 'bad-signature';
    if (route.destination !== this.identity.peerId) return 'unverifiable';
    const pairKey = this.#pairKey(route.source);
    if (pairKey === undefined) return 'unknown-origin';
    const expected = tag(pairKey, originAuthInput(message));
    return auth.length === expected.length && timingSafeEqual(auth, expected) ? 'ok' : 'bad-tag';
  }

  #verifySignature(message: RoutedMessage, source: string, auth: Uint8Array): OriginVerdict {
    const publicKey = auth.subarray(0, PUBLIC_KEY_BYTES);
    const known = this.keys.publicKeyOf(source);
    if (known !== undefined) {
      // The key src is known by (its id is its hash): any other key is not src's, whatever its hash.
      if (!timingSafeEqual(known, publicKey)) return 'bad-signature';
    } else if (peerIdFromPublicKey(publicKey) !== source) {
      return 'bad-signature';
    }
    try {
      const verifier = this.keys.verifierOf(source) ?? verifierFor(publicKey);
      if (!verify(null, originAuthInput(message), verifier, auth.subarray(PUBLIC_KEY_BYTES)))
        return 'bad-signature';
    } catch {
      return 'bad-signature';
    }
    // Learnt only once it signed something: made-up keys cannot crowd real ones out of the directory.
    if (known === undefined) this.keys.learn(publicKey);
    else this.keys.touch(source);
    return 'ok';
  }

  /** The key this agent shares with `peer`, or undefined when its public key is unknown or unusable. */
  #pairKey(peer: string): Uint8Array | undefined {
    const cached = this.#pairKeys.get(peer);
    if (cached !== undefined) return cached ?? undefined;
    const publicKey = this.keys.publicKeyOf(peer);
    if (publicKey === undefined) return undefined;
    let key: Uint8Array | null;
    try {
      key = pairwiseKey(this.identity, peer, publicKey);
    } catch (error) {
      // A key that is not a point (or a low-order one) can never be agreed with: remember that too.
      if (!(error instanceof KeyAgreementError)) throw error;
      key = null;
    }
    setBounded(this.#pairKeys, peer, key, this.pairKeyCapacity);
    return key ?? undefined;
  }
}

/**
 * HKDF-SHA256(ikm = X25519 of the two identities, salt = PAIRWISE_KEY_SALT, info = the two peer ids as
 * bytes, smaller first): the same 32 bytes on both sides. Direction is bound by src and dst in the input.
 */
export function pairwiseKey(identity: Identity, peer: string, peerPublicKey: Uint8Array): Uint8Array {
  const secret = identity.agree(peerPublicKey);
  const [low, high] = identity.peerId < peer ? [identity.peerId, peer] : [peer, identity.peerId];
  const info = Buffer.concat([peerIdToBytes(low), peerIdToBytes(high)]);
  return new Uint8Array(hkdfSync('sha256', secret, PAIRWISE_KEY_SALT, info, PAIRWISE_KEY_BYTES));
}

function tag(key: Uint8Array, input: Uint8Array): Uint8Array {
  return Uint8Array.from(createHmac('sha256', key).update(input).digest().subarray(0, ORIGIN_TAG_BYTES));
}
