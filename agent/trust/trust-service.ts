// Revocation and key rotation, wired (PROTOCOL.md §13.5, §13.6). `revoke` signs a revocation, floods it and
// hands it to every neighbour; every agent that takes one refuses the identity from then on and passes the
// list on to any neighbour whose announced digest differs. `rekey` makes a new mesh key and hands it, over
// direct links only (Noise-encrypted end to end of each hop), to every neighbour; each agent that takes it
// passes it on to its own neighbours, and to any neighbour that later shows up announcing an older epoch,
// for as long as the old key is still accepted. Revoked agents have no links, so they never get it.
import { randomBytes } from 'node:crypto';
import { setBounded } from '../core/bounded-map.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { peerIdFromPublicKey } from '../core/peer-id.js';
import { type Identity, verifySignature } from '../identity/identity.js';
import type { MemberRegistry } from '../identity/member-registry.js';
import type { Announcement } from '../protocol/announcement.js';
import { DecodeError } from '../protocol/errors.js';
import { bytesToHex } from '../protocol/fields.js';
import type { SystemHandlers } from '../protocol/system-kind.js';
import {
  decodeTrust,
  encodeTrust,
  type KeyRotation,
  keyIdOf,
  MAX_REVOCATIONS_PER_MESSAGE,
  MESH_KEY_BYTES,
  type Revocation,
  rotationSigningBytes,
} from '../protocol/trust.js';
import type { MeshKeyRing } from './mesh-key-ring.js';
import { MAX_REVOCATIONS, type RevocationList, signRevocation } from './revocation-list.js';

/** A neighbour is sent the list, or the key, at most this often (announcements repeat every 30 s). */
const RESEND_AFTER_MS = 10_000;
/** Neighbours remembered for that pacing. */
const MAX_PACED_NEIGHBOURS = 1_024;

export class NotAdminError extends NearmeshError {
  constructor(action: string) {
    super('not-admin', `this agent may not ${action}: it is not listed in [security] admins`);
  }
}

export interface TrustServiceOptions {
  identity: Identity;
  keyRing: MeshKeyRing;
  revocations: RevocationList;
  members: MemberRegistry;
  /** Sends a system payload to a direct neighbour over its link. */
  sendToNeighbour(peer: string, payload: Uint8Array): Promise<unknown>;
  /** Floods a system payload to every agent. */
  broadcast(payload: Uint8Array): void;
  /** The peers with a direct link now. */
  neighbours(): string[];
  counters: Counters;
  log: Logger;
}

export interface TrustServiceEvents {
  /** An identity was revoked: close its links, forget its routes. */
  revoked: (peerId: string) => void;
  /** A new mesh key is current (announce it; dial with it). */
  'key-adopted': (epoch: number) => void;
}

export class TrustService extends TypedEmitter<TrustServiceEvents> {
  readonly #options: TrustServiceOptions;
  /** When each neighbour was last sent the list or the key: `${kind}/${peer}` → ms. */
  readonly #lastSent = new Map<string, number>();

  constructor(options: TrustServiceOptions) {
    super();
    this.#options = options;
  }

  /** Whether `peerId` may revoke and rekey (RevocationList.mayAdminister: the one rule for both). */
  mayAdminister(peerId: string): boolean {
    return this.#options.revocations.mayAdminister(peerId);
  }

  /** Revokes `peerId` for good, here and (flooded and handed to every neighbour) across the mesh. */
  revoke(peerId: string, reason: string): Revocation {
    const { identity, revocations } = this.#options;
    if (!this.mayAdminister(identity.peerId)) throw new NotAdminError('revoke');
    if (peerId === identity.peerId) throw new NearmeshError('bad-request', 'an agent cannot revoke itself');
    const revocation = signRevocation(identity, peerId, reason);
    const outcome = revocations.add(revocation);
    if (outcome === 'full') {
      throw new NearmeshError('revocations-full', `this agent already holds ${MAX_REVOCATIONS} revocations`);
    }
    if (outcome === 'added') this.#revoked(revocation);
    const payload = encodeTrust({ kind: 'revocations', entries: [revocation] });
    this.#options.broadcast(payload);
    for (const neighbour of this.#options.neighbours()) this.#send(neighbour, payload, 'revocations');
    return revocation;
  }

  /** Makes a new mesh key current and hands it to every neighbour; the old one is accepted for `overlapMs`. */
  async rekey(overlapMs: number): Promise<{ epoch: number; keyId: string }> {
    const { identity, keyRing } = this.#options;
    if (!this.mayAdminister(identity.peerId)) throw new NotAdminError('rotate the mesh key');
    const key = randomBytes(MESH_KEY_BYTES);
    const fields = {
      epoch: keyRing.current.epoch + 1,
      keyId: keyIdOf(key),
      issuerKey: identity.publicKey,
      issuedAtMs: Date.now(),
      overlapMs,
    };
    const rotation: KeyRotation = { ...fields, signature: identity.sign(rotationSigningBytes(fields)) };
    await keyRing.adopt(rotation, key);
    this.#keyAdopted(undefined);
    return { epoch: rotation.epoch, keyId: bytesToHex(rotation.keyId) };
  }

  /** Takes the trust payloads (revocations, key rotations) from the agent's system inbox. */
  registerWith(inbox: SystemHandlers): void {
    inbox.register(
      'trust',
      (message) => void this.handle(message.from, message.payload, message.overDirectLink),
    );
  }

  /** A trust payload from `from`; `overDirectLink`: it came over the link to `from`, not through the mesh. */
  async handle(from: string, payload: Uint8Array, overDirectLink: boolean): Promise<void> {
    const { counters, log } = this.#options;
    const message = decodeTrust(payload);
    if (message instanceof DecodeError) {
      counters.increment('trust.dropped_malformed');
      log.debug({ peer: from, err: message }, 'trust: malformed message dropped');
      return;
    }
    if (message.kind === 'revocations') {
      for (const revocation of message.entries) this.#take(revocation, from);
      return;
    }
    // A mesh key crosses only a Noise link: relays must never see one.
    if (!overDirectLink) {
      counters.increment('trust.key_updates_refused');
      return;
    }
    const { rotation, key } = message;
    const issuer = peerIdFromPublicKey(rotation.issuerKey);
    if (!this.mayAdminister(issuer) || !isRotationValid(rotation, key)) {
      counters.increment('trust.key_updates_refused');
      log.warn(
        { peer: from, issuer, epoch: rotation.epoch },
        'trust: refused a mesh key update (bad signature, key or issuer)',
      );
      return;
    }
    let outcome: Awaited<ReturnType<MeshKeyRing['adopt']>>;
    try {
      outcome = await this.#options.keyRing.adopt(rotation, key);
    } catch (error) {
      // Not kept on disk (a full disk): not taken, so a restart cannot lose a key this agent dials with.
      counters.increment('trust.store_errors');
      log.error({ err: error, epoch: rotation.epoch }, 'trust: cannot keep the new mesh key; not taking it');
      return;
    }
    if (outcome === 'adopted') this.#keyAdopted(from);
  }

  /**
   * A verified ANNOUNCE. From a direct neighbour (source === neighbour), it says which key epoch and which
   * revocations that neighbour holds: one behind gets the key, one whose list differs gets ours.
   */
  onAnnouncement(source: string, announcement: Announcement, neighbour: string): void {
    if (source !== neighbour) return;
    this.onNeighbourHolds(neighbour, announcement.keyEpoch, announcement.revocationDigest);
  }

  /**
   * What a direct neighbour says it holds (in its ANNOUNCE, and every SYNC period in its SYNC): one behind gets
   * the key, one whose revocation list differs gets ours.
   */
  onNeighbourHolds(neighbour: string, keyEpoch: number, revocationDigest: Uint8Array): void {
    const { keyRing, revocations } = this.#options;
    if (keyEpoch < keyRing.current.epoch) this.#sendKey(neighbour);
    if (!Buffer.from(revocationDigest).equals(revocations.digest())) this.#sendRevocations(neighbour);
  }

  #take(revocation: Revocation, from: string): void {
    const outcome = this.#options.revocations.add(revocation);
    if (outcome === 'added') {
      this.#revoked(revocation);
      return;
    }
    if (outcome !== 'known') {
      this.#options.counters.increment(`trust.revocations_${outcome.replaceAll('-', '_')}`);
      this.#options.log.warn(
        {
          peer: from,
          revoked: revocation.revoked,
          issuer: peerIdFromPublicKey(revocation.issuerKey),
          outcome,
        },
        'trust: refused a revocation',
      );
    }
  }

  #revoked(revocation: Revocation): void {
    const { members, counters, log } = this.#options;
    counters.increment('trust.revoked');
    // The names it held are free again: a replacement device may take them.
    for (const name of members.namesOwnedBy(revocation.revoked)) members.release(name);
    log.warn(
      {
        peer: revocation.revoked,
        issuer: peerIdFromPublicKey(revocation.issuerKey),
        reason: revocation.reason,
      },
      'trust: identity revoked: its links are closed and its messages refused',
    );
    this.emit('revoked', revocation.revoked);
  }

  #keyAdopted(from: string | undefined): void {
    const { keyRing, counters, log } = this.#options;
    counters.increment('trust.keys_adopted');
    log.info(
      { epoch: keyRing.current.epoch, from },
      'trust: new mesh key in use; the previous one is accepted for the overlap',
    );
    this.emit('key-adopted', keyRing.current.epoch);
    for (const neighbour of this.#options.neighbours())
      if (neighbour !== from) this.#sendKey(neighbour, true);
  }

  #sendKey(peer: string, now = false): void {
    const { keyRing, revocations } = this.#options;
    const rotation = keyRing.current.rotation;
    if (rotation === undefined || revocations.has(peer)) return;
    const payload = encodeTrust({ kind: 'key-update', rotation, key: keyRing.current.key });
    this.#send(peer, payload, 'key', now);
  }

  #sendRevocations(peer: string): void {
    const entries = this.#options.revocations.entries();
    for (let start = 0; start < entries.length; start += MAX_REVOCATIONS_PER_MESSAGE) {
      const chunk = entries.slice(start, start + MAX_REVOCATIONS_PER_MESSAGE);
      this.#send(peer, encodeTrust({ kind: 'revocations', entries: chunk }), `revocations${start}`);
    }
  }

  /** Sends unless this neighbour got the same kind within RESEND_AFTER_MS (`now`: regardless). */
  #send(peer: string, payload: Uint8Array, kind: string, now = false): void {
    const key = `${kind}/${peer}`;
    const nowMs = Date.now();
    if (!now && nowMs - (this.#lastSent.get(key) ?? 0) < RESEND_AFTER_MS) return;
    setBounded(this.#lastSent, key, nowMs, MAX_PACED_NEIGHBOURS);
    this.#options
      .sendToNeighbour(peer, payload)
      .catch(() => this.#options.counters.increment('trust.sends_failed'));
  }
}

function isRotationValid(rotation: KeyRotation, key: Uint8Array): boolean {
  if (!Buffer.from(keyIdOf(key)).equals(rotation.keyId)) return false;
  return verifySignature(rotation.issuerKey, rotationSigningBytes(rotation), rotation.signature);
}
