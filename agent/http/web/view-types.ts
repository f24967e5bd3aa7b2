// The mesh as the web view shows it: one JSON snapshot the agent sends whenever it changes (server-sent events)
// and the page draws. Shared by the server (mesh-view.ts) and the page (app.ts): no imports, types only.

/** One agent: this one, or another the mesh told this one about. */
export interface ViewAgent {
  id: string;
  name: string;
  board: string | null;
  software: string | null;
  groups: readonly string[];
  /** self: this agent; connected: a direct link; routed: through others; disconnected: known, not reachable. */
  state: 'self' | 'connected' | 'routed' | 'disconnected';
  /** Hops from this agent (0 for itself); null when not reachable. */
  hops: number | null;
  /** Seconds since it last announced itself (0 for this agent). */
  heard_s: number;
}

/** A link between two agents: this agent's own (medium, RTT and RSSI measured here) or one another announced. */
export interface ViewLink {
  from: string;
  to: string;
  /** wifi / ble (memory in tests): this agent's link; mesh: a link two other agents announced (medium not told). */
  medium: 'wifi' | 'ble' | 'memory' | 'mesh';
  rtt_ms: number | null;
  rssi_dbm: number | null;
}

/** A reachable agent this one reaches through others: the neighbour it goes through. */
export interface ViewRoute {
  to: string;
  via: string;
  hops: number;
}

export interface ViewSensor {
  peer: string;
  sensor: string;
  unit: string | null;
  value: number | string | boolean | null;
  read_at: string | null;
}

/** A lease on an agent's action: who holds it, and for how long yet (null: renewed by this agent, its holder). */
export interface ViewLease {
  peer: string;
  resource: string;
  holder: string;
  holder_name: string | null;
  remaining_ms: number | null;
}

export interface ViewTransfer {
  id: string;
  direction: 'out' | 'in';
  peer: string;
  name: string;
  size: number;
  bytes_done: number;
  state: string;
}

/** This agent's own health. */
export interface ViewSelf {
  id: string;
  name: string;
  version: string;
  uptime_s: number;
  rss_bytes: number;
  /** null: the board does not report one. */
  cpu_temp_c: number | null;
  key_epoch: number;
  event_loop_p99_ms: number;
  queued_messages: number;
  inbox_messages: number;
  inbox_bytes: number;
  /** Counters of things that went wrong (errors, failures, drops, refusals), the largest first. */
  troubles: { name: string; count: number }[];
}

export interface MeshView {
  self: ViewSelf;
  agents: ViewAgent[];
  links: ViewLink[];
  routes: ViewRoute[];
  /** Action names by peer id. */
  actions: Record<string, string[]>;
  sensors: ViewSensor[];
  leases: ViewLease[];
  transfers: ViewTransfer[];
}

/** What POST /api/read takes (a sensor's "read now" button). */
export interface ViewReadRequest {
  peer: string;
  sensor: string;
}

/** What POST /api/call takes (the page's call form). */
export interface ViewCallRequest {
  target: string;
  action: string;
  args: Record<string, unknown>;
}
