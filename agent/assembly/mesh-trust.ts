// The trust state put to work: who may link (revoked, shunned, strangers with a retired key are refused),
// who owns which name, the trust service's revocations and key rotations and what follows from them, and
// the security section of `status`.
import type { SecurityStatus } from '../api.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import { SYSTEM_ACK_TIMEOUT_MS } from '../core/pending-acks.js';
import type { Identity } from '../identity/identity.js';
import type { LinkManager } from '../links/link-manager.js';
import type { Router } from '../mesh/router.js';
import type { Messenger } from '../messaging/messenger.js';
import type { SecureLink } from '../security/secure-link.js';
import { TrustService } from '../trust/trust-service.js';
import type { TrustState } from './trust-state.js';

export interface TrustServiceParts {
  identity: Identity;
  router: Router;
  links: LinkManager;
  messenger: Messenger;
  /** After a key rotation: new discovery hints at once. */
  onKeyAdopted: () => void;
}

export class MeshTrust {
  constructor(
    readonly state: TrustState,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {}

  /**
   * Every completed handshake: the peer's key and name are recorded (a name already owned by another
   * identity is a conflict, logged once); a revoked or shunned identity is refused, and so is a stranger
   * using a mesh key that a rotation retired (a revoked device that made itself a new identity).
   */
  vetPeer(secure: SecureLink, usedRetiredKey: boolean): string | undefined {
    const { state } = this;
    if (state.revocations.has(secure.peerId)) return 'its identity is revoked';
    if (state.blame.isShunned(secure.peerId)) return 'it is shunned for forging messages';
    if (usedRetiredKey && !state.members.isKnownMember(secure.peerId)) {
      return 'an identity never met before, with a mesh key a rotation retired';
    }
    // Only an admitted peer becomes a member met: a refused one must stay a stranger at its next try.
    state.keys.learn(secure.peerPublicKey);
    this.claimName(secure.peerId, secure.peerName);
    return undefined;
  }

  /** Records that `id` calls itself `name`; a name another identity owns is logged once as a conflict. */
  claimName(id: string, name: string): void {
    const { members } = this.state;
    if (members.claim(id, name) !== 'conflict' || !members.isNewConflict(id, name)) return;
    this.counters.increment('trust.name_conflicts');
    this.log.warn(
      { name, claimed_by: id, owner: members.ownerOf(name) },
      'name conflict: another identity claims a name this agent saw first; it stays ambiguous until one goes',
    );
  }

  /** Revocation and key rotation, over the links and the mesh, and what follows from them. */
  createService(parts: TrustServiceParts): TrustService {
    const { state } = this;
    const { router, links, messenger } = parts;
    const service = new TrustService({
      identity: parts.identity,
      keyRing: state.keyRing,
      revocations: state.revocations,
      members: state.members,
      sendToNeighbour: (peer, payload) =>
        links.send(peer, payload, { system: true, timeoutMs: SYSTEM_ACK_TIMEOUT_MS }),
      broadcast: (payload) => messenger.multicast(undefined, payload, { system: true }),
      neighbours: () => links.peers().flatMap((peer) => (peer.state === 'connected' ? [peer.id] : [])),
      counters: this.counters,
      log: this.log,
    });
    service.on('revoked', (peer) => {
      links.disconnect(peer, 'revoked');
      router.forgetAgent(peer);
      router.announceSoon();
    });
    service.on('key-adopted', () => {
      router.announceSoon();
      parts.onKeyAdopted();
    });
    router.on('announcement', (source, announcement, neighbour) => {
      this.claimName(source, announcement.name);
      service.onAnnouncement(source, announcement, neighbour);
    });
    router.on('neighbour-sync', (neighbour, keyEpoch, revocationDigest) =>
      service.onNeighbourHolds(neighbour, keyEpoch, revocationDigest),
    );
    router.on('auth-failure', (failure) => {
      if (state.blame.record(failure)) links.disconnect(failure.neighbour, 'shunned for forging messages');
    });
    return service;
  }

  status(admins: readonly string[]): SecurityStatus {
    const { state } = this;
    const until = state.keyRing.retiredUntilMs();
    return {
      key_epoch: state.keyRing.current.epoch,
      previous_key_until: until === undefined ? null : new Date(until).toISOString(),
      revoked: state.revocations.size,
      admins,
      members_known: state.members.size,
      neighbours_blamed: state.blame.rows(),
    };
  }

  /** Last: until the links are down, messages still arrive and move replay marks and members. */
  stop(): void {
    this.state.replay.flush();
    this.state.store.close();
  }
}
