// What the agent knows about each peer it has authenticated: name, addresses, its live connections
// (at most one per medium) and the one traffic uses. `peers` and `status` read it; the link manager is
// the only writer.
import type { Medium } from '../../transports/transport.js';
import type { PeerConnection } from './peer-connection.js';

export interface PeerRecord {
  readonly id: string;
  name: string;
  /** Addresses this peer was reached at (dialled "host:port" or the remote end of an inbound link). */
  readonly addresses: Set<string>;
  /** Open connections by medium: a Wi-Fi link for traffic and a BLE link on standby, for example. */
  readonly connections: Map<Medium, PeerConnection>;
  /** The connection traffic uses now (the best medium of `connections`); undefined when there is none. */
  connection: PeerConnection | undefined;
  lastSeenMs: number;
  connectedSinceMs: number | undefined;
}

/** The public view of a peer, as `nearmesh peers --json` prints it. */
export interface PeerInfo {
  id: string;
  name: string;
  /** connected: a direct link; routed: reachable through other agents (mesh); disconnected: neither. */
  state: 'connected' | 'routed' | 'disconnected';
  medium: Medium | null;
  address: string | null;
  direction: 'outbound' | 'inbound' | null;
  addresses: string[];
  rtt_ms: number | null;
  /** Signal strength (dBm) of the peer's last BLE advertisement heard, when the radio reports it. */
  rssi_dbm: number | null;
  last_seen: string;
  connected_since: string | null;
  /** Every medium with an open link to this peer, best first (the first carries the traffic). */
  media: Medium[];
  /** 1 over a direct link; more through the mesh; null when unreachable. */
  hops: number | null;
  /** The neighbour a routed peer is reached through. */
  next_hop: string | null;
  /** The name belongs to another identity, which claimed it first (PROTOCOL.md §13.2): a possible impostor. */
  name_conflict: boolean;
}

export class PeerDirectory {
  readonly #peers = new Map<string, PeerRecord>();

  get(id: string): PeerRecord | undefined {
    return this.#peers.get(id);
  }

  upsert(id: string, name: string): PeerRecord {
    let record = this.#peers.get(id);
    if (record === undefined) {
      record = {
        id,
        name,
        addresses: new Set(),
        connections: new Map(),
        connection: undefined,
        lastSeenMs: Date.now(),
        connectedSinceMs: undefined,
      };
      this.#peers.set(id, record);
    }
    record.name = name;
    return record;
  }

  /** Finds a peer by id, or by name when exactly one peer has it. */
  resolve(reference: string): PeerRecord | 'ambiguous' | undefined {
    const byId = this.#peers.get(reference);
    if (byId !== undefined) return byId;
    const named = [...this.#peers.values()].filter((peer) => peer.name === reference);
    if (named.length > 1) return 'ambiguous';
    return named[0];
  }

  records(): PeerRecord[] {
    return [...this.#peers.values()];
  }

  /** One peer's public view (without the whole list: a hub with many peers says one came up in O(1)). */
  info(record: PeerRecord): PeerInfo {
    return describePeer(record, undefined);
  }

  list(rssiOf?: (peerId: string) => number | undefined): PeerInfo[] {
    return this.records()
      .map((record) => describePeer(record, rssiOf?.(record.id)))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }
}

function describePeer(record: PeerRecord, rssiDbm: number | undefined): PeerInfo {
  const connection = record.connection?.isOpen === true ? record.connection : undefined;
  const lastSeenMs =
    connection !== undefined ? Math.max(record.lastSeenMs, connection.lastHeardAtMs) : record.lastSeenMs;
  return {
    id: record.id,
    name: record.name,
    state: connection !== undefined ? 'connected' : 'disconnected',
    medium: connection?.link.medium ?? null,
    media: connection === undefined ? [] : mediaOf(record),
    address: connection?.link.remoteAddress ?? null,
    direction: connection === undefined ? null : connection.link.isInitiator ? 'outbound' : 'inbound',
    addresses: [...record.addresses],
    rtt_ms: connection?.rttMs ?? null,
    rssi_dbm: rssiDbm ?? null,
    last_seen: new Date(lastSeenMs).toISOString(),
    connected_since:
      record.connectedSinceMs !== undefined && connection !== undefined
        ? new Date(record.connectedSinceMs).toISOString()
        : null,
    hops: connection !== undefined ? 1 : null,
    next_hop: null,
    name_conflict: false,
  };
}

/** Traffic prefers Wi-Fi (bandwidth), then the in-memory test medium, then BLE. */
const MEDIUM_PREFERENCE: readonly Medium[] = ['wifi', 'memory', 'ble'];

/** The open connection traffic should use: the best medium that has one. */
export function bestConnection(record: PeerRecord): PeerConnection | undefined {
  for (const medium of MEDIUM_PREFERENCE) {
    const connection = record.connections.get(medium);
    if (connection?.isOpen === true) return connection;
  }
  return undefined;
}

function mediaOf(record: PeerRecord): Medium[] {
  return MEDIUM_PREFERENCE.filter((medium) => record.connections.get(medium)?.isOpen === true);
}
