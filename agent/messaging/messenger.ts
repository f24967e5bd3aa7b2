// Messages to agents beyond the direct links, over the router: reliable unicast (end-to-end ACK,
// retransmission that floods around dead routes and swallowing relays, delivery exactly once), best-effort
// group and broadcast sends, the merged peer table (direct links plus routed agents), and what a peer
// reference (an id or a name) means.

import type { Counters } from '../core/counters.js';
import {
  AmbiguousNameError,
  FrameTooLargeError,
  PeerUnreachableError,
  UnknownPeerError,
} from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import { isPeerId } from '../core/peer-id.js';
import { DEFAULT_ACK_TIMEOUT_MS, PendingAcks } from '../core/pending-acks.js';
import type { MemberRegistry } from '../identity/member-registry.js';
import type { LinkManager, ReceivedMessage, SendOptions } from '../links/link-manager.js';
import type { PeerInfo } from '../links/peer-directory.js';
import { BROADCAST_ID, groupId } from '../mesh/address.js';
import type { MeshDelivery, Router } from '../mesh/router.js';

/** Largest routed payload: it must fit the smallest link it may cross (a 64 KiB BLE frame, minus room). */
export const MAX_ROUTED_PAYLOAD_BYTES = 60 * 1024;
/** First retransmission after this, doubling; every retransmission floods. */
const FIRST_RETRY_MS = 1_000;

/** A message that came through the mesh; `to` says when it was for a group or for everyone. */
export interface MeshMessage extends ReceivedMessage {
  /** A group name, "*" for a broadcast, absent for a message to this agent alone. */
  to?: string;
  hops: number;
}

export interface MessengerEvents {
  /** A message for this agent's apps. */
  message: (message: MeshMessage) => void;
  /** A message for this agent itself (coordination). */
  system: (message: MeshMessage) => void;
}

interface PendingRouted {
  readonly destination: string;
  /** The neighbour the first transmission went to; undefined when it flooded (or before it went). */
  nextHop: string | undefined;
  retransmissions: number;
  retryTimer: NodeJS.Timeout | undefined;
}

export class Messenger extends TypedEmitter<MessengerEvents> {
  readonly #pending = new PendingAcks<PendingRouted>();
  readonly #groupNames: ReadonlyMap<string, string>;

  constructor(
    readonly router: Router,
    readonly links: LinkManager,
    readonly members: MemberRegistry,
    readonly counters: Counters,
    groups: readonly string[],
    /** Revoked identities: never resolved, never sent to. */
    private readonly isRevoked: (peerId: string) => boolean = () => false,
  ) {
    super();
    this.#groupNames = new Map(groups.map((name) => [groupId(name), name]));
    router.on('deliver', (delivery) => this.#onDeliver(delivery));
    router.on('ack', (source, id, routeLost) => {
      const pending = this.#pending.get(id);
      // Ids are ours, but only the agent we sent to may acknowledge (and the router checked it did).
      if (pending?.destination !== source) return;
      // Retransmissions with an ACK that does not say the route lost the DATA: the ACK's way back did.
      if (pending.nextHop !== undefined && (routeLost || pending.retransmissions === 0)) {
        router.routeOutcome(source, pending.nextHop, !routeLost);
      }
      this.#pending.settle(id);
    });
  }

  /**
   * Sends to one peer (id or unique name) and resolves once it acknowledged: over the direct link when
   * there is one, else through the mesh.
   */
  send(reference: string, payload: Uint8Array, options: SendOptions = {}): Promise<{ peer: string }> {
    let target: { peer: string; direct: boolean };
    try {
      target = this.#targetOf(reference);
    } catch (error) {
      return Promise.reject(error);
    }
    if (target.direct) return this.links.send(target.peer, payload, options);
    if (payload.length > MAX_ROUTED_PAYLOAD_BYTES) {
      return Promise.reject(new FrameTooLargeError(payload.length, MAX_ROUTED_PAYLOAD_BYTES));
    }
    return this.#sendRouted(target.peer, payload, options);
  }

  /**
   * Unreliable mode: one attempt, now, without an acknowledgement: over the direct link when there is one,
   * else through the mesh along a known route. False when nothing could take it (it is then dropped).
   */
  sendUnreliable(reference: string, payload: Uint8Array): { peer: string; sent: boolean } {
    const target = this.#targetOf(reference);
    if (target.direct) return { peer: target.peer, sent: this.links.sendUnreliable(target.peer, payload) };
    const fits = payload.length <= MAX_ROUTED_PAYLOAD_BYTES && this.router.hasRoute(target.peer);
    const links = fits
      ? this.router.sendData(target.peer, payload, { id: this.router.nextId(), ackRequested: false }).links
      : 0;
    this.counters.increment(links > 0 ? 'messages.unreliable_sent' : 'messages.unreliable_dropped');
    return { peer: target.peer, sent: links > 0 };
  }

  /** The peer a reference (id or unique name) means, and whether a direct link reaches it; throws when none. */
  #targetOf(reference: string): { peer: string; direct: boolean } {
    const peer = this.resolvePeer(reference);
    return { peer, direct: this.links.directory.get(peer)?.connection?.isOpen === true };
  }

  /**
   * The peer id a reference means: any well-formed peer id, or a name. A name means the identity it
   * belongs to (the first to claim it) and any other identity claiming it that is around now: one of them
   * is the answer, several make it ambiguous (AmbiguousNameError lists them). Throws PeerUnreachableError
   * for an unknown name, this agent, or a revoked identity.
   */
  resolvePeer(reference: string): string {
    const ids = isPeerId(reference) ? [reference] : this.#idsNamed(reference);
    if (ids.length > 1) throw new AmbiguousNameError(reference, ids);
    const destination = ids[0];
    if (destination === undefined) throw new UnknownPeerError(reference);
    if (destination === this.router.selfId) throw new PeerUnreachableError(reference, 'that is this agent');
    if (this.isRevoked(destination)) throw new PeerUnreachableError(reference, 'revoked');
    return destination;
  }

  /** The owner of `name` (even when away: a reliable send waits for it) and its live rivals. */
  #idsNamed(name: string): string[] {
    const isAround = (id: string): boolean =>
      this.links.directory.get(id)?.connection?.isOpen === true || this.router.agent(id) !== undefined;
    const owner = this.members.ownerOf(name);
    return this.members.claimants(name).filter((id) => (id === owner || isAround(id)) && !this.isRevoked(id));
  }

  /** Whether a direct link or a mesh route reaches `peer` now. */
  isReachable(peer: string): boolean {
    return this.links.directory.get(peer)?.connection?.isOpen === true || this.router.hasRoute(peer);
  }

  /** Best effort to every member of a group (or everyone with `group` undefined); resolves at once. */
  multicast(
    group: string | undefined,
    payload: Uint8Array,
    options: { system?: boolean } = {},
  ): { links: number } {
    if (payload.length > MAX_ROUTED_PAYLOAD_BYTES) {
      throw new FrameTooLargeError(payload.length, MAX_ROUTED_PAYLOAD_BYTES);
    }
    const destination = group === undefined ? BROADCAST_ID : groupId(group);
    const id = this.router.nextId();
    this.counters.increment('mesh.multicasts_sent');
    const system = options.system === true;
    const { links } = this.router.sendData(destination, payload, { id, ackRequested: false, system });
    // A member of the group may be this agent itself.
    if (group !== undefined && this.#groupNames.has(destination)) {
      this.#emit({
        source: this.router.selfId,
        destination,
        id,
        payload,
        ackRequested: false,
        hops: 0,
        flooded: false,
        system,
        repeat: false,
      });
    }
    return { links };
  }

  /** Direct links and the agents the mesh reaches, one row per peer. */
  peers(): PeerInfo[] {
    const rows = new Map(this.links.peers().map((peer) => [peer.id, peer]));
    for (const remote of this.router.remoteAgents()) {
      const known = rows.get(remote.id);
      if (known?.state === 'connected') continue;
      const isReachable = remote.hops !== undefined;
      rows.set(remote.id, {
        id: remote.id,
        name: remote.name ?? known?.name ?? remote.id,
        state: isReachable ? 'routed' : 'disconnected',
        medium: null,
        media: [],
        address: null,
        direction: null,
        addresses: known?.addresses ?? [],
        rtt_ms: null,
        rssi_dbm: known?.rssi_dbm ?? null,
        last_seen: known?.last_seen ?? new Date().toISOString(),
        connected_since: null,
        hops: remote.hops ?? null,
        next_hop: remote.nextHop ?? null,
        name_conflict: false,
      });
    }
    return [...rows.values()]
      .map((row) => ({ ...row, name_conflict: this.members.isImpostor(row.id, row.name) }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** Fails every routed send still waiting (the agent is stopping). */
  stop(): void {
    this.#pending.failAll((pending) => new PeerUnreachableError(pending.destination, 'agent stopping'));
  }

  async #sendRouted(
    destination: string,
    payload: Uint8Array,
    options: SendOptions,
  ): Promise<{ peer: string }> {
    const system = options.system === true;
    const id = this.router.nextId();
    const pending: PendingRouted = {
      destination,
      nextHop: undefined,
      retransmissions: 0,
      retryTimer: undefined,
    };
    const acknowledged = this.#pending.wait(id, pending, {
      timeoutMs: options.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
      signal: options.signal,
      describe: () => `message to ${destination} through the mesh: no acknowledgement;`,
      onSettled: () => clearTimeout(pending.retryTimer),
    });
    if (options.signal?.aborted !== true) {
      this.counters.increment('mesh.unicasts_sent');
      pending.nextHop = this.router.sendData(destination, payload, {
        id,
        ackRequested: true,
        system,
      }).nextHop;
      const retry = (delayMs: number): void => {
        pending.retryTimer = setTimeout(() => {
          this.counters.increment('mesh.retransmissions');
          pending.retransmissions++;
          // Flooded around whatever failed, and signed: the destination may not know this agent's key.
          this.router.sendData(destination, payload, {
            id,
            ackRequested: true,
            flood: true,
            system,
            signed: true,
          });
          retry(delayMs * 2);
        }, delayMs);
        pending.retryTimer.unref();
      };
      retry(FIRST_RETRY_MS);
    }
    await acknowledged;
    return { peer: destination };
  }

  #onDeliver(delivery: MeshDelivery): void {
    if (delivery.destination === this.router.selfId && delivery.ackRequested) {
      // A flooded copy is a retransmission: if it is the first copy here, the route lost the original.
      const routeLost = delivery.flooded && !delivery.repeat;
      this.router.sendAck(delivery.source, delivery.id, { flood: delivery.flooded, routeLost });
    }
    // A copy of one already delivered (its ACK was lost): acknowledged again above, delivered once.
    if (delivery.repeat) {
      this.counters.increment('mesh.duplicates_dropped');
      return;
    }
    this.#emit(delivery);
  }

  #emit(delivery: MeshDelivery): void {
    this.counters.increment('mesh.delivered');
    const to = delivery.destination === BROADCAST_ID ? '*' : this.#groupNames.get(delivery.destination);
    const fromName =
      this.router.agent(delivery.source)?.name ??
      this.links.directory.get(delivery.source)?.name ??
      delivery.source;
    const message: MeshMessage = {
      from: delivery.source,
      fromName,
      payload: delivery.payload,
      receivedAtMs: Date.now(),
      hops: delivery.hops,
      ...(to !== undefined && { to }),
    };
    if (delivery.system) this.emit('system', message);
    else this.emit('message', message);
  }
}
