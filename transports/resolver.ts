// The discovery contract: anything that learns where peers are (static list, mDNS, BLE scan, custom).
// Resolvers only report candidates; the link manager decides whether and when to dial them.
import type { TypedEmitter } from '../agent/core/events.js';
import type { Medium } from './transport.js';

/** The protocol version BLE advertisements and mDNS records are written in (PROTOCOL.md §10, §12.2). */
export const DISCOVERY_PROTOCOL_VERSION = 2;

/** A place a peer may be reached; not yet authenticated, so peerId is only a hint. */
export interface PeerCandidate {
  medium: Medium;
  /** What Transport.dial() takes for this medium: "host:port" / "[v6]:port" for Wi-Fi. */
  address: string;
  /** The peer id the remote claims (16 lowercase hex); the secure channel proves it or not. */
  peerId?: string;
  /** A human name for logs and the peer table. */
  name?: string;
  /** Which resolver found it: "static", "mdns", ... */
  source: string;
}

export interface ResolverEvents {
  /** A candidate appeared (or changed address). The same candidate may be reported again. */
  found: (candidate: PeerCandidate) => void;
  /**
   * A candidate said goodbye, or (BLE, where a futile dial blocks the central) stopped accepting links or
   * went unheard for a while. Losing a candidate stops redials only; an open link is judged by itself.
   */
  lost: (candidate: PeerCandidate) => void;
  /** A non-fatal problem (socket error, malformed record); the resolver keeps going. */
  warning: (error: Error) => void;
}

export interface Resolver extends TypedEmitter<ResolverEvents> {
  /** Stable short name, used as PeerCandidate.source and in logs. */
  readonly name: string;
  start(): Promise<void>;
  /** Stops reporting; resolvers that announce us also withdraw the announcement. */
  stop(): Promise<void>;
}
