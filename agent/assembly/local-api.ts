// The AgentApi of an agent running in this process: every front end's request lands here, on the parts
// the assembly built. Peer names are resolved here, once per request, before any part sees them.
import type { BoardDetection } from '../../boards/index.js';
import type {
  AgentApi,
  AgentIdentity,
  AgentStatus,
  AppMessage,
  CallRequest,
  CallResultRow,
  GroupInfo,
  HttpState,
  InboxReport,
  InviteResult,
  LeaseRequest,
  ListenOptions,
  LogLevelName,
  MeshAgentInfo,
  MqttState,
  PushRequest,
  RouteInfo,
  SendOptions,
  SendResult,
  StatusReport,
  TransferInfo,
  WatchEvent,
} from '../api.js';
import type { Config } from '../config/index.js';
import type { Coordinator, SensorReadingEvent } from '../coordination/coordinator.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { VERSION } from '../core/version.js';
import type { LinkManager } from '../links/link-manager.js';
import { traceLink } from '../links/link-trace.js';
import type { Router } from '../mesh/router.js';
import type { Messenger } from '../messaging/messenger.js';
import type { AppInbox } from '../messaging/reliable/app-inbox.js';
import {
  DEFAULT_WAIT_MS,
  type QueuedSend,
  type ReliableDelivery,
} from '../messaging/reliable/reliable-delivery.js';
import type { StreamSessions } from '../messaging/stream/sessions.js';
import type { PushEvent, TransferManager } from '../messaging/transfer/manager.js';
import type { EventLoopDelay } from '../ops/event-loop-delay.js';
import { readTelemetry } from '../ops/telemetry.js';
import { type AgentAbout, PROTOCOL_VERSION } from '../protocol/index.js';
import type { InvitationStatus, Invitations } from '../trust/invitations.js';
import type { TrustService } from '../trust/trust-service.js';
import { type InboxApiParts, inboxList, inboxReport, inboxStatus, listen } from './inbox-api.js';
import type { Media } from './media.js';
import type { MeshMembership } from './mesh-membership.js';
import type { MeshTrust } from './mesh-trust.js';

/** The parts the API runs on, all built and started by the assembly. */
export interface LocalApiParts {
  config: Config;
  /** The board this runs on (boards/), detected once at start. */
  board: BoardDetection;
  /** What this agent announces about itself (board, software version). */
  about: AgentAbout;
  log: Logger;
  counters: Counters;
  peerId: string;
  startedAtMs: number;
  media: Media;
  router: Router;
  links: LinkManager;
  messenger: Messenger;
  reliable: ReliableDelivery;
  inbox: AppInbox;
  transfers: TransferManager;
  streams: StreamSessions;
  coordinator: Coordinator;
  trust: MeshTrust;
  trustService: TrustService;
  membership: MeshMembership;
  invitations: Invitations;
  eventLoop: EventLoopDelay;
  /** The MQTT endpoint's state, once it exists. */
  mqttState: () => MqttState;
  httpState: () => HttpState;
}

export class LocalAgentApi implements AgentApi {
  constructor(private readonly parts: LocalApiParts) {}

  id(): AgentIdentity {
    return { id: this.parts.peerId, name: this.parts.config.name };
  }

  /** With the board and a fresh telemetry reading (a few small file reads; vcgencmd on a Pi). */
  async status(): Promise<StatusReport> {
    return {
      ...this.agentStatus(),
      board: {
        id: this.parts.board.profile.id,
        name: this.parts.board.profile.name,
        model: this.parts.board.model,
      },
      telemetry: await readTelemetry({ diskPath: this.parts.config.dataDir }),
    };
  }

  /** The status without telemetry: cheap, synchronous. */
  agentStatus(): AgentStatus {
    const { config, media, counters } = this.parts;
    const peers = this.parts.messenger.peers();
    const ble = media.ble;
    return {
      id: this.parts.peerId,
      name: config.name,
      version: VERSION,
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - this.parts.startedAtMs) / 1000),
      data_dir: config.dataDir,
      control_socket: config.control.socketPath,
      wifi: { listen: media.listening(), discovery: config.wifi.discovery },
      ble: ble !== undefined ? 'on' : config.ble.enabled === false ? 'off' : 'unavailable',
      ble_scan_duty: ble?.hasCentral === true ? ble.scanDuty : null,
      peers: {
        connected: peers.filter((peer) => peer.state === 'connected').length,
        routed: peers.filter((peer) => peer.state === 'routed').length,
        known: peers.length,
      },
      resolvers: this.parts.links
        .resolvers()
        .map(({ name, state, candidates }) => ({ name, state, candidates })),
      mesh: {
        name: this.parts.membership.hasMesh ? this.parts.membership.name : null,
        ttl: config.mesh.ttl,
        relay: config.mesh.relay,
        groups: config.groups,
      },
      mqtt: this.parts.mqttState(),
      http: this.parts.httpState(),
      queued: this.parts.reliable.queued(),
      inbox: inboxStatus(this.#inboxParts()),
      security: this.parts.trust.status(this.parts.membership.admins()),
      event_loop: this.parts.eventLoop.read(),
      counters: { ...counters.snapshot(), ...media.ignoredCounts() },
    };
  }

  resolvers() {
    return this.parts.links.resolvers();
  }

  peers() {
    return this.parts.messenger.peers();
  }

  /** The route table, with names where the mesh knows them. */
  routes(): RouteInfo[] {
    const { router } = this.parts;
    return router.routes().map((route) => ({
      destination: route.destination,
      name: this.#knownName(route.destination),
      next_hop: route.nextHop,
      next_hop_name: this.#knownName(route.nextHop),
      hops: route.hops,
      age_s: Math.round(route.ageMs / 1000),
    }));
  }

  topology(): MeshAgentInfo[] {
    const { config, peerId, router, about } = this.parts;
    const nowMs = Date.now();
    const self: MeshAgentInfo = {
      id: peerId,
      name: config.name,
      board: about.board,
      software: about.software,
      groups: config.groups,
      relays: config.mesh.relay,
      neighbours: this.peers()
        .filter((peer) => peer.state === 'connected')
        .map((peer) => peer.id),
      heard_s: 0,
    };
    const others = router.knownAgents().map(
      (agent): MeshAgentInfo => ({
        id: agent.id,
        name: agent.name,
        board: agent.about?.board ?? null,
        software: agent.about?.software ?? null,
        groups: agent.groups,
        relays: agent.relays,
        neighbours: [...agent.neighbours],
        heard_s: Math.max(0, Math.round((nowMs - agent.heardAtMs) / 1000)),
      }),
    );
    return [self, ...others];
  }

  transfers(): TransferInfo[] {
    return this.parts.transfers.transfers();
  }

  groups(): GroupInfo[] {
    const { config, peerId, router } = this.parts;
    const members = new Map(config.groups.map((group) => [group, [peerId]]));
    for (const agent of router.knownAgents())
      for (const group of agent.groups) members.set(group, [...(members.get(group) ?? []), agent.id]);
    return [...members].map(([name, ids]) => ({ name, members: ids }));
  }

  logLevel(level?: LogLevelName): string {
    if (level !== undefined) this.parts.log.level = level;
    return this.parts.log.level;
  }

  async send(reference: string, payloads: readonly Uint8Array[], options: SendOptions): Promise<SendResult> {
    const peer = this.parts.messenger.resolvePeer(reference);
    const waitMs = options.wait ? (options.timeoutMs ?? DEFAULT_WAIT_MS) : undefined;
    return sendResult(peer, await this.parts.reliable.send(peer, payloads, waitMs), options.wait);
  }

  enqueue(reference: string, payloads: readonly Uint8Array[]): SendResult {
    const peer = this.parts.messenger.resolvePeer(reference);
    return sendResult(peer, this.parts.reliable.queue(peer, payloads), false);
  }

  sendUnreliable(reference: string, payload: Uint8Array) {
    return this.parts.messenger.sendUnreliable(reference, payload);
  }

  multicast(group: string | undefined, payload: Uint8Array) {
    return this.parts.messenger.multicast(group, payload);
  }

  /** Every message for this agent's apps: over a direct link, through the mesh, or reliable. */
  subscribe(listener: (message: AppMessage) => void): () => void {
    const { links, messenger, reliable } = this.parts;
    const forward = (message: Omit<AppMessage, 'hops'> & { hops?: number }): void =>
      listener({ ...message, hops: message.hops ?? 1 });
    links.on('message', forward);
    messenger.on('message', forward);
    reliable.on('message', forward);
    return () => {
      links.off('message', forward);
      messenger.off('message', forward);
      reliable.off('message', forward);
    };
  }

  listen(options: ListenOptions, listener: (message: AppMessage) => void) {
    return listen(this.#inboxParts(), options, listener);
  }

  inbox(): InboxReport {
    return inboxReport(this.#inboxParts());
  }

  inboxList(options: { from?: string | undefined; sinceMs?: number | undefined; limit: number }) {
    return inboxList(this.#inboxParts(), options);
  }

  inboxClear(upTo: number | undefined) {
    return { removed: this.parts.inbox.clear(upTo) };
  }

  inboxForget(consumer: string) {
    return { forgotten: this.parts.inbox.forget(consumer) };
  }

  /** A mesh key and a rekey mean nothing before the agent is in a mesh (its key is a placeholder). */
  #requireMesh(): void {
    if (!this.parts.membership.hasMesh) {
      throw new NearmeshError(
        'no-mesh',
        'this agent has no mesh yet: "nearmesh invite" founds one, "nearmesh join CODE" joins one',
      );
    }
  }

  #inboxParts(): InboxApiParts {
    const { inbox, config, links, messenger } = this.parts;
    return { inbox, limits: config.inbox, links, messenger, nameOf: (peer) => this.#knownName(peer) ?? peer };
  }

  revoke(reference: string, reason: string) {
    const id = this.parts.messenger.resolvePeer(reference);
    const revocation = this.parts.trustService.revoke(id, reason);
    return { revoked: revocation.revoked, issued_at: new Date(revocation.issuedAtMs).toISOString() };
  }

  async invite(options: { ttlMs?: number; attempts?: number; meshName?: string }) {
    const opened = await this.parts.membership.invite(this.parts.invitations, options);
    return inviteResult(opened, opened.mesh, opened.founded);
  }

  invitation(id: number | undefined) {
    const status = this.parts.invitations.status(id);
    if (status === undefined) {
      throw new NearmeshError(
        'no-invitation',
        id === undefined ? 'no invitation was opened' : `no invitation ${id}`,
      );
    }
    return inviteResult(status, this.parts.membership.name, false);
  }

  inviteCancel() {
    return { cancelled: this.parts.invitations.cancel() };
  }

  join(code: string, options: { address?: string; timeoutMs?: number }) {
    return this.parts.membership.join(code, options);
  }

  meshKey() {
    this.#requireMesh();
    const current = this.parts.trust.state.keyRing.current;
    return { epoch: current.epoch, mesh_key: Buffer.from(current.key).toString('base64url') };
  }

  async rekey(overlapMs: number | undefined) {
    this.#requireMesh();
    const overlap = overlapMs ?? this.parts.config.security.rekeyOverlapMs;
    const rotated = await this.parts.trustService.rekey(overlap);
    return { epoch: rotated.epoch, key_id: rotated.keyId, overlap_ms: overlap };
  }

  streamOpen(reference: string, name: string) {
    return this.parts.streams.open(this.parts.messenger.resolvePeer(reference), name);
  }

  streamWrite(stream: number, bytes: Uint8Array) {
    return this.parts.streams.write(stream, bytes);
  }

  streamEnd(stream: number) {
    return this.parts.streams.end(stream);
  }

  streamReceive(name: string, sink: Parameters<StreamSessions['receive']>[1]) {
    return this.parts.streams.receive(name, sink);
  }

  /**
   * Starts a push and streams its events to `listener` until it is sent or fails for good; resumable
   * interruptions come as 'waiting' events while the transfer waits for the peer.
   */
  async push(request: PushRequest, listener: (event: PushEvent) => void) {
    const { transfers } = this.parts;
    const peer = this.parts.messenger.resolvePeer(request.peer);
    let transferId: string | undefined;
    const early: PushEvent[] = [];
    const onEvent = (event: PushEvent): void => {
      if (transferId === undefined) early.push(event);
      else if (event.transferId === transferId) forward(event);
    };
    const forward = (event: PushEvent): void => {
      listener(event);
      if (event.type === 'sent' || event.type === 'failed') transfers.off('push', onEvent);
    };
    transfers.on('push', onEvent);
    try {
      const started = await transfers.push(peer, request.path, {
        ...(request.name !== undefined && { name: request.name }),
        allowSlowMedia: request.allow_ble === true,
      });
      transferId = started.transferId;
      for (const event of early.splice(0)) if (event.transferId === transferId) forward(event);
      return { result: started, stop: () => transfers.off('push', onEvent) };
    } catch (error) {
      transfers.off('push', onEvent);
      throw error;
    }
  }

  /** `in_ms` and `at_ms` become an instant of this agent's clock. */
  async call(request: CallRequest): Promise<CallResultRow[]> {
    const { coordinator } = this.parts;
    const now = coordinator.timeSync.now();
    const fireAt = request.in_ms !== undefined ? now + request.in_ms : request.at_ms;
    const outcomes = await coordinator.call({
      target: request.target,
      action: request.action,
      args: request.args,
      timeoutMs: request.timeout_ms,
      ...(fireAt !== undefined && { fireAt }),
      ...(request.key !== undefined && { key: request.key }),
    });
    return outcomes.map((outcome) => ({
      peer: outcome.peer,
      name: outcome.name,
      status: outcome.status,
      ...(outcome.value !== undefined && { result: outcome.value }),
      ...(outcome.error !== undefined && { error: outcome.error }),
      fired_at: outcome.firedAtMs === null ? null : new Date(outcome.firedAtMs).toISOString(),
      fired_at_ms: outcome.firedAtMs,
    }));
  }

  actions() {
    return this.parts.coordinator.actions();
  }

  leases() {
    return this.parts.coordinator.leases();
  }

  sensors() {
    return this.parts.coordinator.sensors();
  }

  read(peer: string, sensor: string) {
    return this.parts.coordinator.read(peer, sensor);
  }

  /**
   * "acquire" alone is one lease time; with for_ms this agent renews it that long; "hold" renews it for as
   * long as the caller keeps it (until stop).
   */
  async lease(request: LeaseRequest) {
    const { coordinator } = this.parts;
    if (request.op === 'release') {
      return { result: await coordinator.lease(request.peer, request.resource, 'release', 0) };
    }
    if (request.op === 'acquire' && request.for_ms === undefined) {
      return { result: await coordinator.lease(request.peer, request.resource, 'acquire', request.ttl_ms) };
    }
    const forMs = request.op === 'hold' ? undefined : request.for_ms;
    const held = await coordinator.hold(request.peer, request.resource, request.ttl_ms, forMs);
    if (request.op === 'hold') return { result: held.result, stop: () => void held.stop() };
    return { result: held.result };
  }

  watch(reference: string, sensor: string, intervalMs: number, listener: (event: WatchEvent) => void) {
    const { coordinator } = this.parts;
    const target = coordinator.resolve(reference);
    const onReading = (reading: SensorReadingEvent): void => {
      if (reading.peer !== target.id || reading.sensor !== sensor) return;
      listener({ ...reading, read_at: new Date(reading.readAtMs).toISOString() });
    };
    coordinator.on('reading', onReading);
    const stop = coordinator.watch(target.id, sensor, intervalMs);
    return () => {
      coordinator.off('reading', onReading);
      stop();
    };
  }

  trace(reference: string, listener: Parameters<AgentApi['trace']>[1]) {
    return traceLink(this.parts.links, reference, listener);
  }

  #knownName(id: string): string | null {
    return this.parts.router.agent(id)?.name ?? this.parts.links.directory.get(id)?.name ?? null;
  }
}

function sendResult(peer: string, sent: readonly QueuedSend[], acknowledged: boolean): SendResult {
  const first = sent[0];
  const last = sent[sent.length - 1];
  return {
    peer: first?.peer ?? peer,
    seq: first?.seq ?? null,
    last_seq: last?.seq ?? null,
    count: sent.length,
    acknowledged,
  };
}

function inviteResult(status: InvitationStatus, mesh: string, founded: boolean): InviteResult {
  return {
    id: status.id,
    state: status.state,
    code: status.code,
    expires_at: new Date(status.expiresAtMs).toISOString(),
    attempts_left: status.attemptsLeft,
    mesh,
    founded,
    joined: status.joined ?? null,
  };
}
