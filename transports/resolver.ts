// The discovery contract: anything that learns where peers are (static list, mDNS, BLE scan, a script, a site
// broker, or a user's own). Resolvers only report candidates; the link manager decides whether and when to
// dial them, and a candidate proves nothing: the secure channel authenticates whoever answers.
// This is the public contract (exported from the package, docs/RESOLVERS.md); its guarantees are checked
// for every resolver, built-in or not, by one shared suite (test/unit/transports/resolver-contract.ts).
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
  /** Which resolver found it. The agent sets it to the resolver's name whatever the resolver wrote. */
  source: string;
}

export interface ResolverEvents {
  /** A candidate appeared (or changed address). The same candidate may be reported again. */
  found: (candidate: PeerCandidate) => void;
  /**
   * A candidate went away (a goodbye, a record that expired, a BLE advertiser that stopped accepting links).
   * Losing a candidate stops redials only; an open link is judged by itself. Losing an address never reported
   * is harmless.
   */
  lost: (candidate: PeerCandidate) => void;
  /** A non-fatal problem (socket error, malformed record); the resolver keeps going. */
  warning: (error: Error) => void;
}

/** What `nearmesh resolvers` shows of a resolver's own health, when it has more to say than "running". */
export interface ResolverHealth {
  /** "running", or a resolver's own word for a pause: "restarting", "waiting", "failed"... */
  state: string;
  /** One line for a person: why it waits, what failed last. */
  detail?: string;
}

/**
 * A source of candidates. Guarantees the agent relies on (and the contract suite checks):
 * - `name` is stable, short (1..32 of [a-z0-9_-]) and unique among the agent's resolvers;
 * - `start()` resolves once the resolver runs (candidates may be reported before or after it resolves) and
 *   rejects only when it cannot run at all; it is called once per stop();
 * - `stop()` resolves once it has stopped: no event is emitted after it resolves; announcements it made are
 *   withdrawn; it is idempotent and may be called without a start;
 * - candidates are plain data: the agent validates each where it enters (a bad one is counted and logged,
 *   never dialled) and bounds how many one resolver may hold.
 * Any emitter works: extend node:events' EventEmitter, or the package's TypedEmitter for typed emit().
 */
export interface Resolver {
  readonly name: string;
  on<K extends keyof ResolverEvents>(event: K, listener: ResolverEvents[K]): unknown;
  off<K extends keyof ResolverEvents>(event: K, listener: ResolverEvents[K]): unknown;
  /** Optional: how many candidates it may hold at once (the agent's default, 256, otherwise). */
  readonly maxCandidates?: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Optional: the resolver's own state for `nearmesh resolvers`; "running" between start and stop otherwise. */
  health?(): ResolverHealth;
}
