// The one typed face of a running agent. Every front end speaks it: the control socket (and through it the
// CLI), the serial console, the MQTT gateway and programs that embed the agent. Requests and results are
// the JSON shapes the CLI prints with --json, so one vocabulary runs from the socket to the embedding API.
// Peer references (an id or a name) are resolved here, once, by the implementation.
import type {
  ActionInfo,
  LeaseInfo,
  LeaseResult,
  SensorInfo,
  SensorReadingEvent,
  SensorReadResult,
} from './coordination/coordinator.js';
import type { TraceEvent, TraceStarted } from './links/link-trace.js';
import type { PeerInfo } from './links/peer-directory.js';
import type { ResolverInfo } from './links/resolver-book.js';
import type { StreamEvent, StreamSink } from './messaging/stream/sessions.js';
import type { PushEvent, PushStarted, TransferInfo } from './messaging/transfer/manager.js';
import type { EventLoopDelayReading } from './ops/event-loop-delay.js';
import type { Telemetry } from './ops/telemetry.js';
import type { JsonObject } from './protocol/json-cbor.js';

export type {
  ActionInfo,
  LeaseInfo,
  LeaseResult,
  PeerInfo,
  PushEvent,
  PushStarted,
  ResolverInfo,
  SensorInfo,
  SensorReadingEvent,
  SensorReadResult,
  StreamEvent,
  StreamSink,
  TraceEvent,
  TraceStarted,
  TransferInfo,
};

export interface AgentIdentity {
  id: string;
  name: string;
}

export interface AgentStatus {
  id: string;
  name: string;
  version: string;
  protocol: number;
  pid: number;
  uptime_s: number;
  data_dir: string;
  control_socket: string;
  wifi: { listen: string | null; discovery: string[] };
  ble: 'on' | 'unavailable' | 'off';
  /** The BLE scan duty in force (1: continuous; lower while a shared-chip Wi-Fi is busy); null: no scanning. */
  ble_scan_duty: number | null;
  peers: { connected: number; routed: number; known: number };
  /** Each resolver (where candidates come from), its state and how many candidates it holds. */
  resolvers: { name: string; state: string; candidates: number }[];
  mesh: {
    /** The mesh's name; null while the agent has no mesh yet (it waits to be invited). */
    name: string | null;
    ttl: number;
    relay: boolean;
    groups: readonly string[];
  };
  mqtt: MqttState;
  http: HttpState;
  /** Reliable messages queued durably and not yet confirmed by their peers. */
  queued: { messages: number; bytes: number };
  /** Reliable messages received and waiting in the app inbox for its consumers. */
  inbox: InboxStatus;
  security: SecurityStatus;
  /** How late the event loop ran over the last 10-20 s, in ms. */
  event_loop: EventLoopDelayReading;
  counters: Record<string, number>;
}

/** `status`: the agent's status with its board and a fresh telemetry reading. */
export type StatusReport = AgentStatus & {
  board: { id: string; name: string; model: string | null };
  telemetry: Telemetry;
};

/** The trust side of status: mesh key epoch, revocations, who may administer, neighbours that forged. */
export interface SecurityStatus {
  key_epoch: number;
  /** Until when the key the last rotation replaced is still accepted; null when none is. */
  previous_key_until: string | null;
  revoked: number;
  /** Peer ids allowed to revoke and rekey; empty: every member. */
  admins: readonly string[];
  members_known: number;
  neighbours_blamed: { peer: string; failures: number; shunned_until: string | null }[];
}

/** What the local MQTT endpoint reports while it serves. */
export interface MqttGatewayStatus {
  listen: string;
  clients: number;
  sessions: number;
  retained: number;
  /** Sensors watched because a client subscribed to one's topic exactly. */
  sensor_watches: number;
  upstream: { url: string; connected: boolean; queued: number } | null;
}

/** The HTTP endpoint (/metrics): serving on `listen`, turned off in the config, or not serving for the reason given. */
export type HttpState =
  | { state: 'on'; listen: string }
  | { state: 'off' }
  | { state: 'unavailable'; reason: string };

/** The MQTT endpoint: serving, turned off in the config, or not serving for the reason given. */
export type MqttState =
  | ({ state: 'on' } & MqttGatewayStatus)
  | { state: 'off' }
  | { state: 'unavailable'; reason: string };

/** The app inbox: what waits, its bounds, and how many consumers it keeps messages for. */
export interface InboxStatus {
  messages: number;
  bytes: number;
  /** When the oldest waiting message arrived; null when none waits. */
  oldest_at: string | null;
  consumers: number;
  max_messages: number;
  max_bytes: number;
  when_full: 'refuse' | 'drop-oldest';
}

/** One consumer of the app inbox: the id of the last message it took, and how many wait for it. */
export interface InboxConsumerRow {
  name: string;
  taken_up_to: number;
  waiting: number;
  seen_at: string;
}

/** `nearmesh inbox`: the inbox's status and its consumers. */
export interface InboxReport extends InboxStatus {
  consumer_list: InboxConsumerRow[];
}

/** Which messages `listen` hands over, and whether it takes them. */
export interface ListenOptions {
  /** The consumer that takes them (default "listen"): each consumer gets every message once. */
  consumer?: string | undefined;
  /** Read without taking: everything waiting, then new messages; nothing leaves the inbox. */
  peek?: boolean | undefined;
  /** Only messages from this peer (an id or a name); implies peek. */
  from?: string | undefined;
  /** Only messages received at or after this time (ms since the epoch); implies peek. */
  sinceMs?: number | undefined;
}

export interface ListenStarted {
  /** The consumer taking the messages; null for a peek. */
  consumer: string | null;
}

/** One row of `nearmesh routes --json`. */
export interface RouteInfo {
  destination: string;
  name: string | null;
  next_hop: string;
  next_hop_name: string | null;
  hops: number;
  age_s: number;
}

/** One agent of the mesh as this agent knows it: itself, and every agent it has heard announcing itself. */
export interface MeshAgentInfo {
  id: string;
  name: string;
  /** What it runs on and which version, as it announced them; null when it did not. */
  board: string | null;
  software: string | null;
  groups: readonly string[];
  relays: boolean;
  /** The peer ids of its direct links, as it announced them (this agent's: its links now). */
  neighbours: string[];
  /** Seconds since its last announcement; 0 for this agent. */
  heard_s: number;
}

/** A group known in the mesh and the peer ids of its members (this agent included). */
export interface GroupInfo {
  name: string;
  members: string[];
}

export interface SendOptions {
  /** false: answer once the messages are queued durably, without waiting for the peer's confirmation. */
  wait: boolean;
  timeoutMs?: number | undefined;
}

/** Reliable messages queued (and, with `wait`, confirmed): the sequence numbers of the first and last. */
export interface SendResult {
  peer: string;
  seq: number | null;
  last_seq: number | null;
  count: number;
  acknowledged: boolean;
}

export interface UnreliableSendResult {
  peer: string;
  /** Whether a link took it (there is no acknowledgement). */
  sent: boolean;
}

export interface MulticastResult {
  /** The direct links it went out on. */
  links: number;
}

export interface RevokeResult {
  revoked: string;
  issued_at: string;
}

/** `invite`: an invitation for one device, open for a few minutes (the mesh is founded first if need be). */
export interface InviteResult {
  id: number;
  state: 'open' | 'joined' | 'expired' | 'failed' | 'cancelled';
  /** 11 digits as 1234-5678-901; empty once the invitation closed. */
  code: string;
  expires_at: string;
  attempts_left: number;
  mesh: string;
  /** True when this invite founded the mesh (the device had none). */
  founded: boolean;
  /** Who joined, once someone did. */
  joined: { peer: string; name: string } | null;
}

/** `join`: the mesh this agent is now in, and through whom. */
export interface JoinResult {
  mesh: string;
  inviter: { peer: string; name: string };
  address: string;
}

export interface MeshKeyResult {
  epoch: number;
  mesh_key: string;
}

export interface RekeyResult {
  epoch: number;
  key_id: string;
  overlap_ms: number;
}

/** A remote call: `target` is a peer id or name, "group:NAME" or "all". */
export interface CallRequest {
  target: string;
  action: string;
  args: JsonObject;
  timeout_ms: number;
  /** Fire this long after the agent receives the request, or at this time (ms since the epoch). */
  in_ms?: number | undefined;
  at_ms?: number | undefined;
  /** Idempotency key: the same key is the same call. */
  key?: string | undefined;
}

/** One target's outcome of a call. */
export interface CallResultRow {
  peer: string;
  name: string;
  status: 'ok' | 'error' | 'timeout';
  result?: unknown;
  error?: { code: string; message: string };
  fired_at: string | null;
  /** The same instant in ms since the epoch (the caller's clock), for programs. */
  fired_at_ms: number | null;
}

/**
 * A lease on a peer's action. acquire: one lease time, or renewed by this agent for `for_ms`; hold: renewed
 * until the returned stop is called; release: given back.
 */
export interface LeaseRequest {
  peer: string;
  resource: string;
  op: 'acquire' | 'hold' | 'release';
  ttl_ms: number;
  for_ms?: number | undefined;
}

export interface PushRequest {
  peer: string;
  /** An absolute path the agent can read. */
  path: string;
  /** The name to offer (default: the file's base name). */
  name?: string | undefined;
  /** Let the chunks take BLE (or the mesh) when the peer has no Wi-Fi link. */
  allow_ble?: boolean | undefined;
}

/** A sensor reading as `watch` streams it. */
export type WatchEvent = SensorReadingEvent & { read_at: string };

/** A message for this agent's apps, however it came: a direct link, the mesh, or reliable delivery. */
export interface AppMessage {
  from: string;
  fromName: string;
  payload: Uint8Array;
  receivedAtMs: number;
  /** Through the mesh: a group name, or "*" for a message to everyone; absent for a direct message. */
  to?: string | undefined;
  /** Hops it travelled (1 over a direct link). */
  hops: number;
  /** Its place in the app inbox, for a reliable message (one that waits there until taken). */
  inboxId?: number | undefined;
}

/** Something that runs until `stop` (a hold, a push's events, an open stream), with its first answer. */
export interface Running<T> {
  result: T;
  stop: () => void;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export interface AgentApi {
  id(): AgentIdentity;
  status(): Promise<StatusReport>;
  /** Linked peers and those the mesh reaches. */
  peers(): PeerInfo[];
  routes(): RouteInfo[];
  /** Every agent this one knows, itself first, with the links each announced: the mesh as a graph. */
  topology(): MeshAgentInfo[];
  /** Each resolver: its state, the candidates it holds, found, lost, refused, dialled and linked. */
  resolvers(): ResolverInfo[];
  groups(): GroupInfo[];
  /** The running agent's log level; sets it first when `level` is given. */
  logLevel(level?: LogLevelName): string;

  /** Reliable: queued durably, delivered once and in order; with `wait`, answered once the peer confirmed. */
  send(peer: string, payloads: readonly Uint8Array[], options: SendOptions): Promise<SendResult>;
  /**
   * Reliable, like send without waiting, but at once: when it returns the messages are stored in the
   * durable queue (what an MQTT PUBACK promises); throws when they cannot be.
   */
  enqueue(peer: string, payloads: readonly Uint8Array[]): SendResult;
  /** One attempt now, no acknowledgement. */
  sendUnreliable(peer: string, payload: Uint8Array): UnreliableSendResult;
  /** To a group's members, or to everyone (group undefined): best effort. */
  multicast(group: string | undefined, payload: Uint8Array): MulticastResult;
  /** Every message for this agent's apps as it arrives, until the returned function is called. */
  subscribe(listener: (message: AppMessage) => void): () => void;
  /**
   * The app inbox's reliable messages for a consumer, what waits first (oldest first), then new ones, and
   * best-effort messages as they arrive. `take(id)` says the consumer has every message up to that inbox
   * id: once all consumers have one, it leaves the inbox. Until taken, a message comes again to the next
   * listen of that consumer.
   */
  listen(
    options: ListenOptions,
    listener: (message: AppMessage) => void,
  ): Running<ListenStarted> & { take: (upTo: number) => void };
  inbox(): InboxReport;
  /** Waiting messages, oldest first; nothing is taken. */
  inboxList(options: {
    from?: string | undefined;
    sinceMs?: number | undefined;
    limit: number;
  }): AppMessage[];
  /** Removes waiting messages up to an inbox id (all without one), whoever waits for them. */
  inboxClear(upTo: number | undefined): { removed: number };
  /** Forgets a consumer: messages no longer wait for it. */
  inboxForget(consumer: string): { forgotten: boolean };

  /** Opens an invitation for one new device; on a device with no mesh it founds one named `meshName`. */
  invite(options: { ttlMs?: number; attempts?: number; meshName?: string }): Promise<InviteResult>;
  /** The invitation `id` (the latest when omitted): whether someone joined. Throws when there is none. */
  invitation(id: number | undefined): InviteResult;
  /** Closes the open invitation at once. */
  inviteCancel(): { cancelled: boolean };
  /** Joins the mesh of the agent showing the invitation with this code, found on the LAN or at `address`. */
  join(code: string, options: { address?: string; timeoutMs?: number }): Promise<JoinResult>;
  /** Revokes an identity across the mesh (admins only). */
  revoke(peer: string, reason: string): RevokeResult;
  /** The mesh key in use now and its epoch: a secret, to give a new device. */
  meshKey(): MeshKeyResult;
  /** Rotates the mesh key; the old one stays accepted for `overlapMs` (default: the config's) (admins only). */
  rekey(overlapMs: number | undefined): Promise<RekeyResult>;

  /** Streams: open one to a peer, write to it, end it; receive those opened to a name. */
  streamOpen(peer: string, name: string): Promise<Running<{ stream: number; stream_id: string }>>;
  streamWrite(stream: number, bytes: Uint8Array): Promise<{ bytes_sent: number }>;
  streamEnd(stream: number): Promise<{ bytes: number }>;
  streamReceive(name: string, sink: StreamSink): () => void;
  /** Starts a bulk transfer; `listener` gets its progress, waits and outcome until `stop`. */
  push(request: PushRequest, listener: (event: PushEvent) => void): Promise<Running<PushStarted>>;
  /** Files on their way, out (pushes, running or waiting for their peer) and in. */
  transfers(): TransferInfo[];

  call(request: CallRequest): Promise<CallResultRow[]>;
  /** The actions every known agent (this one included) offers. */
  actions(): ActionInfo[];
  /** Leases granted on this agent's actions, and those it holds on other agents'. */
  leases(): LeaseInfo[];
  sensors(): SensorInfo[];
  read(peer: string, sensor: string): Promise<SensorReadResult>;
  lease(request: LeaseRequest): Promise<{ result: LeaseResult; stop?: () => void }>;
  /** Streams a sensor's readings to `listener` until the returned function is called. */
  watch(peer: string, sensor: string, intervalMs: number, listener: (event: WatchEvent) => void): () => void;
  /** Frames on the direct link to `peer` reach `listener` until `stop`; throws without such a link. */
  trace(peer: string, listener: (event: TraceEvent) => void): TraceStarted & { stop: () => void };
}
