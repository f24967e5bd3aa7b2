// Messages to agents of other sites, which no link or route reaches, through a carrier between the sites (the
// MQTT upstream bridge: PROTOCOL.md §20, docs/MQTT.md "Across sites"). What crosses is the mesh's own routed
// DATA, sealed by its origin as on the mesh (always the signature form: the two sites may never have met),
// numbered from the origin's one sequence and accepted once per (origin, number) as on the mesh, the whole
// frame sealed under the mesh key. So the broker between the sites can delay or drop, never read, forge,
// replay or duplicate: a relay's powers, no more.
//
// What it carries: coordination (calls, results, sensor reads and values, watches, leases, time) and app
// messages. Nothing else of the system kinds: reliable messages, transfers, streams and trust messages need
// the mesh's acknowledgements and links, which do not cross.
import type { Counters } from '../core/counters.js';
import { PeerUnreachableError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import { isPeerId } from '../core/peer-id.js';
import type { RouterTrust } from '../mesh/router.js';
import {
  decodeMessage,
  encodeMessage,
  ORIGIN_SIGNATURE_AUTH_BYTES,
  type RoutedMessage,
} from '../protocol/index.js';
import { type SystemMessage, systemServiceOf } from '../protocol/system-kind.js';
import { openTunnelFrame, sealTunnelFrame } from '../security/tunnel-seal.js';

/** What carries sealed frames between the sites. */
export interface TunnelCarrier {
  /** Whether frames go out now (an app message may also wait in the carrier's own queue). */
  isUp(): boolean;
  /**
   * Hands a frame for `destination` to the carrier; false when it refuses it. `expirySeconds`: after this long
   * undelivered, the frame is worthless (nobody waits for its answer any more) and may be dropped on the way.
   */
  carry(destination: string, frame: Uint8Array, options: { expirySeconds?: number }): boolean;
}

/** An app message that came through the tunnel; `from` is proven by its origin's signature. */
export interface TunnelAppMessage {
  from: string;
  payload: Uint8Array;
}

export interface SiteTunnelEvents {
  /** A coordination message for this agent. */
  system: (message: SystemMessage) => void;
  /** A message for this agent's apps. */
  message: (message: TunnelAppMessage) => void;
}

export interface SiteTunnelOptions {
  trust: Pick<RouterTrust, 'origin' | 'replay' | 'sequence' | 'isRevoked'>;
  /** The mesh keys accepted now, the current one first: frames are sealed under it, opened under any. */
  meshKeys(): readonly Uint8Array[];
  counters: Counters;
}

/**
 * How long a coordination message is worth carrying: a call's answer is awaited for its timeout, a read's
 * for 10 s; one held longer by a broker (the other site was away) would run a call nobody waits for.
 */
export const TUNNEL_SYSTEM_EXPIRY_S = 30;
/** Larger than any coordination message or MQTT app message the gateway takes; the carrier may allow less. */
export const MAX_TUNNEL_PAYLOAD_BYTES = 256 * 1024;

export class SiteTunnel extends TypedEmitter<SiteTunnelEvents> {
  readonly #options: SiteTunnelOptions;
  #carrier: TunnelCarrier | undefined;

  constructor(options: SiteTunnelOptions) {
    super();
    this.#options = options;
  }

  get selfId(): string {
    return this.#options.trust.origin.selfId;
  }

  /** Frames go through `carrier` until the returned function is called. */
  attach(carrier: TunnelCarrier): () => void {
    this.#carrier = carrier;
    return () => {
      if (this.#carrier === carrier) this.#carrier = undefined;
    };
  }

  /** Whether a carrier is attached and up: only then do calls and reads take the tunnel. */
  isOpen(): boolean {
    return this.#carrier?.isUp() === true;
  }

  /**
   * Sends one payload to `destination` through the tunnel. A coordination payload (`system`) goes only while
   * the carrier is up: a call is never queued for later. Throws PeerUnreachableError when nothing takes it.
   */
  send(destination: string, payload: Uint8Array, options: { system: boolean }): void {
    const { counters, trust } = this.#options;
    const carrier = this.#carrier;
    if (!isPeerId(destination) || destination === this.selfId)
      throw new PeerUnreachableError(destination, 'the site tunnel takes peer ids of other agents only');
    if (carrier === undefined || (options.system && !carrier.isUp()))
      throw new PeerUnreachableError(
        destination,
        'not in this mesh, and the upstream broker is not connected',
      );
    if (payload.length > MAX_TUNNEL_PAYLOAD_BYTES)
      throw new PeerUnreachableError(
        destination,
        `larger than the tunnel takes (${MAX_TUNNEL_PAYLOAD_BYTES} bytes)`,
      );
    const unsealed: RoutedMessage = {
      type: 'data',
      id: trust.sequence.next(),
      ackRequested: false,
      payload,
      route: { ttlHops: 1, source: this.selfId, destination },
      ...(options.system && { system: true }),
    };
    const message = encodeMessage({ ...unsealed, auth: trust.origin.seal(unsealed, true) });
    const [meshKey] = this.#options.meshKeys();
    if (meshKey === undefined) throw new PeerUnreachableError(destination, 'this agent has no mesh key');
    const frame = sealTunnelFrame(meshKey, destination, message);
    if (!carrier.carry(destination, frame, options.system ? { expirySeconds: TUNNEL_SYSTEM_EXPIRY_S } : {}))
      throw new PeerUnreachableError(destination, 'the upstream bridge refused the message');
    counters.increment('tunnel.sent');
  }

  /** A frame the carrier brought for this agent: delivered once if a member of the mesh sealed it. Never throws. */
  receive(frame: Uint8Array): void {
    const { counters } = this.#options;
    const opened = this.#open(frame);
    if (typeof opened === 'string') {
      counters.increment(`tunnel.dropped_${opened}`);
      return;
    }
    counters.increment('tunnel.received');
    if (opened.system === true)
      this.emit('system', { from: opened.source, payload: opened.payload, hops: 1, overDirectLink: false });
    else this.emit('message', { from: opened.source, payload: opened.payload });
  }

  /** The DATA inside a frame, once proven and fresh; otherwise why it is dropped (its counter's suffix). */
  #open(frame: Uint8Array): { source: string; payload: Uint8Array; system?: boolean } | string {
    const { trust } = this.#options;
    const opened = openTunnelFrame(this.#options.meshKeys(), this.selfId, frame);
    if (opened === undefined) return 'foreign';
    const decoded = decodeMessage(opened);
    if (decoded.kind !== 'message' || decoded.message.type !== 'data') return 'malformed';
    const message = decoded.message;
    const route = message.route;
    if (route === undefined || route.destination !== this.selfId || route.source === this.selfId)
      return 'misaddressed';
    if (trust.isRevoked(route.source)) return 'revoked';
    // Signed only: the destination may not know the origin's key, and a tag would prove nothing to it then.
    if (message.auth?.length !== ORIGIN_SIGNATURE_AUTH_BYTES || trust.origin.verify(message, false) !== 'ok')
      return 'bad_origin';
    if (trust.replay.accept(route.source, message.id) !== 'fresh') return 'replayed';
    if (message.system === true && systemServiceOf(message.payload) !== 'coordination') return 'kind';
    return {
      source: route.source,
      payload: message.payload,
      ...(message.system === true && { system: true }),
    };
  }
}
