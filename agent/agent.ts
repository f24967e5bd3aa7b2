// The daemon: wires config, identity, transports, resolvers, the link manager and the control socket
// together, and starts and stops them in order (SIGTERM closes links, then removes the socket).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BoardDetection, detectBoardSync } from '../boards/index.js';
import type { BleResolver } from '../transports/ble/ble-resolver.js';
import type { BleTransport } from '../transports/ble/ble-transport.js';
import { BleUnavailableError } from '../transports/ble/radio.js';
import type { Resolver } from '../transports/resolver.js';
import type { Transport } from '../transports/transport.js';
import type { MdnsResolver } from '../transports/wifi/mdns-resolver.js';
import { StaticResolver } from '../transports/wifi/static-resolver.js';
import { TcpTransport } from '../transports/wifi/tcp-transport.js';
import { openTrustState, routerTrust, type TrustState } from './assembly/trust-state.js';
import type { Config } from './config/index.js';
import { loadOrCreateMeshKey } from './config/mesh-key.js';
import type { MqttUpstreamConfig } from './config/schema.js';
import type { ConsoleContext, ConsoleIo } from './console/commands.js';
import type { SerialConsole } from './console/serial-console.js';
import { traceLink } from './console/trace.js';
import { type ControlHandlers, ControlServer } from './control/server.js';
import type { ControlRequest, ListenEvent, RouteInfo, TraceEvent } from './control/wire.js';
import { Coordinator, type SensorReadingEvent } from './coordination/coordinator.js';
import { registryFromConfig } from './coordination/registry.js';
import type { RuleEngine } from './coordination/rule-engine.js';
import { systemClock } from './coordination/time-sync.js';
import { Counters } from './core/counters.js';
import { NearmeshError, PeerUnreachableError } from './core/errors.js';
import { formatHostPort, type HostPort } from './core/host-port.js';
import type { Logger } from './core/logger.js';
import { VERSION } from './core/version.js';
import type { MqttGateway, MqttGatewayStatus } from './gateway/mqtt-gateway.js';
import type { UpstreamBridge } from './gateway/upstream-bridge.js';
import { type Identity, loadOrCreateIdentity } from './identity/identity.js';
import { LinkManager, type ReceivedMessage } from './links/link-manager.js';
import { localEndpoints } from './links/local-endpoints.js';
import { MAX_ROUTED_PAYLOAD_BYTES, type MeshMessage, Messenger } from './mesh/messenger.js';
import { Router } from './mesh/router.js';
import { DurableQueue } from './messaging/reliable/durable-queue.js';
import {
  DEFAULT_WAIT_MS,
  type QueuedSend,
  ReliableDelivery,
} from './messaging/reliable/reliable-delivery.js';
import { StreamService } from './messaging/stream/service.js';
import { StreamSessions, type StreamSink } from './messaging/stream/sessions.js';
import { type PushEvent, TransferManager } from './messaging/transfer/manager.js';
import { readTelemetry } from './ops/telemetry.js';
import { coexistenceQuirk, scanDutyFor, WifiActivity } from './ops/wifi-activity.js';
import { actsOnDevice } from './protocol/coordination.js';
import { PROTOCOL_VERSION } from './protocol/index.js';
import type { JsonObject } from './protocol/json-cbor.js';
import { systemKindOf, systemServiceOf } from './protocol/system-kind.js';
import type { SecureLink } from './security/secure-link.js';
import { TrustService } from './trust/trust-service.js';

export { BleUnavailableError };

type CallControlRequest = Extract<ControlRequest, { cmd: 'call' }>;
type LeaseControlRequest = Extract<ControlRequest, { cmd: 'lease' }>;
type PushControlRequest = Extract<ControlRequest, { cmd: 'push' }>;

/** How long one stream message may wait for its link-level acknowledgement. */
const STREAM_MESSAGE_TIMEOUT_MS = 15_000;

/** The durable queue of reliable messages, in data_dir. */
export const MESSAGE_QUEUE_FILE = 'messages.sqlite';

/** With ble.enabled = "auto", how long an adapter may take to power on before the agent runs without BLE. */
const AUTO_BLE_POWER_ON_TIMEOUT_MS = 3000;

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
  mesh: { ttl: number; relay: boolean; groups: readonly string[] };
  mqtt: MqttState;
  /** Reliable messages queued durably and not yet confirmed by their peers. */
  queued: { messages: number; bytes: number };
  security: SecurityStatus;
  counters: Record<string, number>;
}

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

/** The MQTT endpoint: serving, turned off in the config, or not serving for the reason given. */
export type MqttState =
  | ({ state: 'on' } & MqttGatewayStatus)
  | { state: 'off' }
  | { state: 'unavailable'; reason: string };

export class Agent {
  readonly counters = new Counters();
  #links: LinkManager | undefined;
  #router: Router | undefined;
  /** The board this runs on (boards/): for status and doctor. */
  readonly #board = describeBoard(detectBoardSync());
  #messenger: Messenger | undefined;
  #queue: DurableQueue | undefined;
  #reliable: ReliableDelivery | undefined;
  #transfers: TransferManager | undefined;
  #streams: StreamService | undefined;
  #streamSessions: StreamSessions | undefined;
  #coordinator: Coordinator | undefined;
  #rules: RuleEngine | undefined;
  #control: ControlServer | undefined;
  #serialConsole: SerialConsole | undefined;
  #mqtt: MqttGateway | undefined;
  /** Why the default MQTT endpoint is not served (its port was taken), for status. */
  #mqttUnavailable: string | undefined;
  #tcp: TcpTransport | undefined;
  #ble: BleTransport | undefined;
  #mdns: MdnsResolver | undefined;
  #bleResolver: BleResolver | undefined;
  /** Watches the board's Wi-Fi for the coexistence quirk (lower BLE scan duty while Wi-Fi is busy). */
  #wifiActivity: WifiActivity | undefined;
  #identity: Identity | undefined;
  #trust: TrustState | undefined;
  #trustService: TrustService | undefined;
  #startedAtMs = 0;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {}

  get identity(): Identity {
    if (this.#identity === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#identity;
  }

  get messenger(): Messenger {
    if (this.#messenger === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#messenger;
  }

  /** The route table for `nearmesh routes`, with names where the mesh knows them. */
  #routes(): RouteInfo[] {
    const router = this.#router;
    if (router === undefined) return [];
    const nameOf = (id: string): string | null =>
      router.agent(id)?.name ?? this.links.directory.get(id)?.name ?? null;
    return router.routes().map((route) => ({
      destination: route.destination,
      name: nameOf(route.destination),
      next_hop: route.nextHop,
      next_hop_name: nameOf(route.nextHop),
      hops: route.hops,
      age_s: Math.round(route.ageMs / 1000),
    }));
  }

  /** Reliable messages: queued durably, delivered once and in order, across restarts of either side. */
  get reliable(): ReliableDelivery {
    if (this.#reliable === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#reliable;
  }

  get links(): LinkManager {
    if (this.#links === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#links;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    this.#startedAtMs = Date.now();
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    this.#identity = await loadOrCreateIdentity(config.dataDir);
    const trust = await openTrustState({
      dataDir: config.dataDir,
      identity: this.#identity,
      baseMeshKey: config.meshKey ?? (await loadOrCreateMeshKey(config.dataDir)),
      security: config.security,
      counters: this.counters,
      log,
    });
    this.#trust = trust;
    // This agent's own name is its own: another identity announcing it is the conflict, not this one.
    this.#claimName(this.#identity.peerId, config.name);
    // Discovery seals its hints under the current key and opens them under every key still accepted.
    const meshKeys = (): Uint8Array[] => trust.keyRing.accepted();
    const transports: Transport[] = [];
    const resolvers: Resolver[] = [];
    let bleResolver: BleResolver | undefined;
    if (config.wifi.enabled) {
      this.#tcp = new TcpTransport({ listen: config.wifi.listen });
      transports.push(this.#tcp);
      resolvers.push(new StaticResolver(config.peers.map((peer) => formatHostPort(peer.address))));
    }
    if (config.ble.enabled !== false) {
      // Loaded only when configured, like mDNS: an agent without BLE never pays for its code.
      const [{ BleTransport }, { BleResolver }] = await Promise.all([
        import('../transports/ble/ble-transport.js'),
        import('../transports/ble/ble-resolver.js'),
      ]);
      const ble = await this.#startBle(new BleTransport(this.#bleOptions(meshKeys)));
      if (ble !== undefined) {
        transports.push(ble);
        bleResolver = new BleResolver(ble, { peerId: this.#identity.peerId, meshKeys });
        this.#bleResolver = bleResolver;
        resolvers.push(bleResolver);
        this.#applyCoexistence(ble);
      }
    }
    const registry = registryFromConfig(config, log, this.counters);
    const router = new Router({
      name: config.name,
      groups: config.groups,
      capabilities: registry.capabilities(),
      ttl: config.mesh.ttl,
      relay: config.mesh.relay,
      counters: this.counters,
      trust: routerTrust(trust),
    });
    this.#router = router;
    router.on('route-penalised', (destination, nextHop) =>
      log.info({ destination, next_hop: nextHop }, 'a next hop lost messages twice in a row: avoiding it'),
    );
    this.#links = new LinkManager({
      identity: this.#identity,
      name: config.name,
      meshKeys,
      onAuthenticated: (secure, usedRetiredKey) => this.#vetPeer(secure, usedRetiredKey),
      transports,
      resolvers,
      log,
      counters: this.counters,
      ...(bleResolver !== undefined && { rssiOf: (peerId: string) => bleResolver.rssiOf(peerId) }),
      router,
      localEndpoints: () => localEndpoints(this.#tcp?.address()),
    });
    const links = this.#links;
    const messenger = new Messenger(router, links, trust.members, this.counters, config.groups, (peer) =>
      trust.revocations.has(peer),
    );
    this.#messenger = messenger;
    const trustService = this.#startTrustService(trust, router, links, messenger);
    const nameOf = (peer: string): string =>
      links.directory.get(peer)?.name ?? router.agent(peer)?.name ?? peer;
    this.#queue = await DurableQueue.open(join(config.dataDir, MESSAGE_QUEUE_FILE));
    const reliable = new ReliableDelivery({
      queue: this.#queue,
      send: (peer, payload, timeoutMs) => messenger.send(peer, payload, { system: true, timeoutMs }),
      isReachable: (peer) => messenger.isReachable(peer),
      nameOf,
      maxPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
      counters: this.counters,
      log,
    });
    this.#reliable = reliable;
    const transfers = new TransferManager({
      dataDir: config.dataDir,
      inboxDir: config.transfer.inbox,
      maxBytes: config.transfer.maxBytes,
      accept: config.transfer.accept,
      send: (peer, payload, timeoutMs) => messenger.send(peer, payload, { system: true, timeoutMs }),
      mediumOf: (peer) => {
        const connection = links.directory.get(peer)?.connection;
        return connection?.isOpen === true ? connection.link.medium : undefined;
      },
      isReachable: (peer) => messenger.isReachable(peer),
      routedPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
      counters: this.counters,
      log,
    });
    this.#transfers = transfers;
    const streams = new StreamService({
      send: async (peer, payload) => {
        await messenger.send(peer, payload, { system: true, timeoutMs: STREAM_MESSAGE_TIMEOUT_MS });
      },
      maxPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
    });
    this.#streams = streams;
    this.#streamSessions = new StreamSessions(streams, nameOf);
    const coordinator = new Coordinator({
      selfId: this.#identity.peerId,
      name: config.name,
      groups: config.groups,
      registry,
      clock: systemClock,
      send: (peer, payload) => messenger.send(peer, payload, { system: true }),
      knownAgents: () => router.knownAgents(),
      resolvePeer: (reference) => {
        // An ambiguous name throws (the caller is told which ids claim it); an unknown peer is undefined.
        let id: string;
        try {
          id = messenger.resolvePeer(reference);
        } catch (error) {
          if (error instanceof PeerUnreachableError) return undefined;
          throw error;
        }
        const isKnown = links.directory.get(id) !== undefined || router.agent(id) !== undefined;
        return isKnown ? { id, name: nameOf(id) } : undefined;
      },
      ownsName: (peerId, name) => !trust.members.isImpostor(peerId, name),
      onCapabilitiesChanged: () => router.setCapabilities(registry.capabilities()),
      counters: this.counters,
      log,
    });
    this.#coordinator = coordinator;
    // System payloads name their service in their first bytes (PROTOCOL.md §13.5-§17).
    const onSystem = (
      message: { from: string; payload: Uint8Array; hops?: number },
      overDirectLink: boolean,
    ): void => {
      switch (systemServiceOf(message.payload)) {
        case 'trust':
          void trustService.handle(message.from, message.payload, overDirectLink);
          break;
        case 'queued':
          reliable.handle(message.from, message.payload, message.hops);
          break;
        case 'transfer':
          transfers.handle(message.from, message.payload);
          break;
        case 'stream':
          streams.handle(message.from, message.payload);
          break;
        default:
          // A call or lease runs something: its replay mark is on disk before it does, so not even a crash
          // right after lets the same routed message run it again (link-local ones ride a Noise session).
          if (!overDirectLink && actsOnDevice(systemKindOf(message.payload))) trust.replay.flush();
          coordinator.receive(message.from, message.payload);
      }
    };
    links.on('system', (message) => onSystem(message, true));
    messenger.on('system', (message) => onSystem(message, false));
    // A peer no link or route reaches any more: its streams (not resumable) fail and its transfers wait to
    // resume now, not at their timeouts.
    links.on('peer-down', (peer) => {
      if (messenger.isReachable(peer.id)) return;
      streams.linkDown(peer.id);
      transfers.unreachable(peer.id);
    });
    links.on('peer-up', (peer) => {
      reliable.reachable(peer.id);
      transfers.reachable(peer.id);
    });
    await this.#links.start();
    reliable.start();
    await transfers.start();
    router.start();
    coordinator.start();
    if (config.rules.length > 0) await this.#startRules(coordinator);
    // mDNS needs the port actually bound (the configured one may be 0), so it starts after the listener.
    const listening = this.#tcp?.address();
    if (listening !== undefined && config.wifi.discovery.includes('mdns')) {
      // Listening on one address means announcing (and browsing) on that interface only.
      const isWildcard = listening.host === '0.0.0.0' || listening.host === '::';
      // Loaded only when configured: the mDNS stack costs several MB that a static-peers agent never needs.
      const { MdnsResolver } = await import('../transports/wifi/mdns-resolver.js');
      this.#mdns = new MdnsResolver({
        peerId: this.#identity.peerId,
        meshKeys,
        port: listening.port,
        ...(isWildcard ? {} : { interfaceAddress: listening.host }),
      });
      await this.#links.addResolver(this.#mdns);
    }
    if (config.mqtt.listen !== false) await this.#startMqtt(config.mqtt.listen);
    const consoleContext = this.#consoleContext();
    this.#control = new ControlServer(config.control.socketPath, this.#controlHandlers(consoleContext), log);
    await this.#control.start();
    if (config.console.serial !== false) {
      // Loaded only when configured; a missing device is retried in the background, never fatal.
      const { SerialConsole } = await import('./console/serial-console.js');
      this.#serialConsole = new SerialConsole({
        path: config.console.serial,
        baud: config.console.baud,
        context: consoleContext,
        log,
      });
      await this.#serialConsole.start();
    }
    log.info(
      {
        id: this.#identity.peerId,
        name: config.name,
        version: VERSION,
        listen: listening === undefined ? null : formatHostPort(listening),
        control: config.control.socketPath,
      },
      'agent started',
    );
  }

  /**
   * Every completed handshake: the peer's key and name are recorded (a name already owned by another
   * identity is a conflict, logged once); a revoked or shunned identity is refused, and so is a stranger
   * using a mesh key that a rotation retired (a revoked device that made itself a new identity).
   */
  #vetPeer(secure: SecureLink, usedRetiredKey: boolean): string | undefined {
    const trust = this.#trust as TrustState;
    if (trust.revocations.has(secure.peerId)) return 'its identity is revoked';
    if (trust.blame.isShunned(secure.peerId)) return 'it is shunned for forging messages';
    if (usedRetiredKey && !trust.members.isKnownMember(secure.peerId)) {
      return 'an identity never met before, with a mesh key a rotation retired';
    }
    // Only an admitted peer becomes a member met: a refused one must stay a stranger at its next try.
    trust.keys.learn(secure.peerPublicKey);
    this.#claimName(secure.peerId, secure.peerName);
    return undefined;
  }

  /** Records that `id` calls itself `name`; a name another identity owns is logged once as a conflict. */
  #claimName(id: string, name: string): void {
    const members = (this.#trust as TrustState).members;
    if (members.claim(id, name) !== 'conflict' || !members.isNewConflict(id, name)) return;
    this.counters.increment('trust.name_conflicts');
    this.log.warn(
      { name, claimed_by: id, owner: members.ownerOf(name) },
      'name conflict: another identity claims a name this agent saw first; it stays ambiguous until one goes',
    );
  }

  /** Revocation and key rotation, over the links and the mesh, and what follows from them. */
  #startTrustService(
    trust: TrustState,
    router: Router,
    links: LinkManager,
    messenger: Messenger,
  ): TrustService {
    const service = new TrustService({
      identity: this.identity,
      keyRing: trust.keyRing,
      revocations: trust.revocations,
      members: trust.members,
      sendToNeighbour: (peer, payload) => links.send(peer, payload, { system: true, timeoutMs: 15_000 }),
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
      // Hints sealed under the old key would stop opening for agents that dropped it: new ones at once.
      this.#ble
        ?.rotateDiscoveryHint()
        .catch((error: unknown) => this.log.warn({ err: error }, 'BLE: new hint'));
      this.#mdns?.rotate().catch((error: unknown) => this.log.warn({ err: error }, 'mDNS: new hint'));
    });
    router.on('announcement', (source, announcement, neighbour) => {
      this.#claimName(source, announcement.name);
      service.onAnnouncement(source, announcement, neighbour);
    });
    router.on('auth-failure', (failure) => {
      if (trust.blame.record(failure)) links.disconnect(failure.neighbour, 'shunned for forging messages');
    });
    this.#trustService = service;
    return service;
  }

  #securityStatus(): SecurityStatus {
    const trust = this.#trust as TrustState;
    const until = trust.keyRing.retiredUntilMs();
    return {
      key_epoch: trust.keyRing.current.epoch,
      previous_key_until: until === undefined ? null : new Date(until).toISOString(),
      revoked: trust.revocations.size,
      admins: this.config.security.admins,
      members_known: trust.members.size,
      neighbours_blamed: trust.blame.rows(),
    };
  }

  #bleOptions(meshKeys: () => readonly Uint8Array[]): ConstructorParameters<typeof BleTransport>[0] {
    const { config } = this;
    return {
      peripheral: config.ble.peripheral,
      central: config.ble.central,
      peerId: this.identity.peerId,
      meshKeys,
      isWifiAvailable: config.wifi.enabled,
      maxLinks: config.ble.maxLinks,
      ...(config.ble.enabled === 'auto' && { powerOnTimeoutMs: AUTO_BLE_POWER_ON_TIMEOUT_MS }),
    };
  }

  /**
   * Starts the BLE transport before the link manager (which starts it again, a no-op) to learn whether BLE works
   * here: with "auto", missing libraries or adapters cost one log line; with true they stop the agent.
   */
  async #startBle(transport: BleTransport): Promise<BleTransport | undefined> {
    const { config } = this;
    try {
      await transport.start();
    } catch (error) {
      if (config.ble.enabled === true) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      this.log.info(`BLE: not available, running without it (${reason})`);
      return undefined;
    }
    this.#ble = transport;
    transport.on('adapter', (change) => {
      const fields = { role: change.role, adapter: change.adapter };
      if (change.state === 'lost') {
        this.counters.increment('ble.adapters_lost');
        this.log.warn(fields, `BLE ${change.role} adapter lost: ${change.detail}`);
      } else {
        this.counters.increment('ble.adapters_reopened');
        this.log.info(fields, `BLE ${change.role} adapter back: ${change.detail}`);
      }
    });
    return transport;
  }

  /**
   * The board's 'wifi-ble-coexistence' quirk (boards/profiles.ts): while its Wi-Fi is busy, BLE scans with the
   * quirk's lower duty, continuously again once Wi-Fi is idle. Boards without the quirk scan continuously.
   */
  #applyCoexistence(ble: BleTransport): void {
    const profile = detectBoardSync().profile;
    const quirk = coexistenceQuirk(profile);
    if (quirk === undefined || profile.wifiInterface === null || !ble.hasCentral) return;
    const activity = new WifiActivity({ interface: profile.wifiInterface });
    activity.on('change', (wifi) => {
      const duty = scanDutyFor(quirk, wifi);
      if (!ble.setScanDuty(duty)) return;
      this.counters.increment('ble.scan_duty_changes');
      const why = wifi.isBusy
        ? `${wifi.interface} busy (${Math.round(wifi.bytesPerS / 1000)} kB/s, assumed ${wifi.band}), ${quirk.chip} shared with Bluetooth`
        : `${wifi.interface} idle`;
      this.log.info(
        { duty: ble.scanDuty, wifi: wifi.interface, busy: wifi.isBusy },
        `BLE: scan duty ${Math.round(ble.scanDuty * 100)}% (${why})`,
      );
    });
    activity.start();
    this.#wifiActivity = activity;
  }

  async stop(): Promise<void> {
    this.#wifiActivity?.stop();
    await this.#serialConsole?.stop();
    await this.#control?.stop();
    await this.#mqtt?.stop();
    this.#router?.stop();
    this.#rules?.stop();
    this.#coordinator?.stop();
    this.#messenger?.stop();
    this.#reliable?.stop();
    await this.#transfers?.close();
    await this.#streams?.close();
    await this.#links?.stop();
    this.#queue?.close();
    // Last: until the links are down, messages still arrive and move replay marks and members.
    this.#trust?.replay.flush();
    this.#trust?.store.close();
    this.log.info('agent stopped');
  }

  status(): AgentStatus {
    const peers = this.messenger.peers();
    const listening = this.#tcp?.address();
    return {
      id: this.identity.peerId,
      name: this.config.name,
      version: VERSION,
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - this.#startedAtMs) / 1000),
      data_dir: this.config.dataDir,
      control_socket: this.config.control.socketPath,
      wifi: {
        listen: listening === undefined ? null : formatHostPort(listening),
        discovery: this.config.wifi.discovery,
      },
      ble: this.#ble !== undefined ? 'on' : this.config.ble.enabled === false ? 'off' : 'unavailable',
      ble_scan_duty: this.#ble?.hasCentral === true ? this.#ble.scanDuty : null,
      peers: {
        connected: peers.filter((peer) => peer.state === 'connected').length,
        routed: peers.filter((peer) => peer.state === 'routed').length,
        known: peers.length,
      },
      mesh: { ttl: this.config.mesh.ttl, relay: this.config.mesh.relay, groups: this.config.groups },
      mqtt: this.#mqttState(),
      queued: this.#reliable?.queued() ?? { messages: 0, bytes: 0 },
      security: this.#securityStatus(),
      counters: {
        ...this.counters.snapshot(),
        // Discovery records that did not open under our keys: other meshes, or agents not yet rekeyed.
        'discovery.ble_ignored': this.#bleResolver?.ignoredCount ?? 0,
        'discovery.mdns_ignored': this.#mdns?.ignoredCount ?? 0,
      },
    };
  }

  /** What the console (serial and `nearmesh console`) runs its commands against. */
  #consoleContext(): ConsoleContext {
    const handlers = this.#baseHandlers();
    return {
      id: handlers.id,
      status: handlers.status,
      peers: handlers.peers,
      routes: handlers.routes,
      send: async (peer, payload, timeoutMs) => {
        const [sent] = await this.#sendReliable(peer, [payload], { wait: true, timeoutMs });
        return { peer: sent?.peer ?? peer };
      },
      multicast: handlers.multicast,
      logLevel: (level) => {
        if (level !== undefined) this.log.level = level;
        return this.log.level;
      },
      call: handlers.call,
      actions: handlers.actions,
      groups: () => {
        const members = new Map(this.config.groups.map((group) => [group, [this.identity.peerId]]));
        for (const agent of this.#router?.knownAgents() ?? [])
          for (const group of agent.groups) members.set(group, [...(members.get(group) ?? []), agent.id]);
        return [...members].map(([name, ids]) => ({ name, members: ids }));
      },
      trace: handlers.trace,
    };
  }

  #controlHandlers(consoleContext: ConsoleContext): ControlHandlers {
    return {
      ...this.#baseHandlers(),
      // The console's command table loads on first use: most agents never see a console client.
      consoleLine: async (line: string, io?: ConsoleIo) => {
        const { runConsoleLine } = await import('./console/commands.js');
        return { output: await runConsoleLine(line, consoleContext, io) };
      },
      consoleComplete: async (line: string) => {
        const { completeConsoleLine } = await import('./console/commands.js');
        const [completions, word] = completeConsoleLine(line, consoleContext);
        return { completions, word };
      },
    };
  }

  #baseHandlers() {
    return {
      id: () => ({ id: this.identity.peerId, name: this.config.name }),
      // With the board and a fresh telemetry reading (a few small file reads; vcgencmd on a Pi).
      status: async () => ({
        ...this.status(),
        board: this.#board,
        telemetry: await readTelemetry({ diskPath: this.config.dataDir }),
      }),
      peers: () => this.messenger.peers(),
      send: async (peer: string, payloads: Uint8Array[], options: { wait: boolean; timeoutMs?: number }) => {
        const sent = await this.#sendReliable(peer, payloads, options);
        const first = sent[0];
        const last = sent[sent.length - 1];
        return {
          peer: first?.peer ?? peer,
          seq: first?.seq ?? null,
          last_seq: last?.seq ?? null,
          count: sent.length,
          acknowledged: options.wait,
        };
      },
      multicast: (group: string | undefined, payload: Uint8Array) => this.messenger.multicast(group, payload),
      sendUnreliable: (peer: string, payload: Uint8Array) => this.messenger.sendUnreliable(peer, payload),
      routes: () => this.#routes(),
      revoke: (peer: string, reason: string) => {
        const id = this.messenger.resolvePeer(peer);
        const revocation = this.#trusted().revoke(id, reason);
        return { revoked: revocation.revoked, issued_at: new Date(revocation.issuedAtMs).toISOString() };
      },
      meshKey: () => {
        const current = (this.#trust as TrustState).keyRing.current;
        return { epoch: current.epoch, mesh_key: Buffer.from(current.key).toString('base64url') };
      },
      rekey: async (overlapMs: number | undefined) => {
        const overlap = overlapMs ?? this.config.security.rekeyOverlapMs;
        const rotated = await this.#trusted().rekey(overlap);
        return { epoch: rotated.epoch, key_id: rotated.keyId, overlap_ms: overlap };
      },
      streamOpen: (peer: string, name: string) =>
        this.#sessions().open(this.messenger.resolvePeer(peer), name),
      streamWrite: (stream: number, bytes: Uint8Array) => this.#sessions().write(stream, bytes),
      streamEnd: (stream: number) => this.#sessions().end(stream),
      streamReceive: (name: string, sink: StreamSink) => this.#sessions().receive(name, sink),
      push: (request: PushControlRequest, listener: (event: PushEvent) => void) =>
        this.#push(request, listener),
      call: (request: CallControlRequest) => this.#call(request),
      actions: () => this.#coordination().actions(),
      sensors: () => this.#coordination().sensors(),
      read: (peer: string, sensor: string) => this.#coordination().read(peer, sensor),
      lease: (request: LeaseControlRequest) => this.#lease(request),
      watch: (peer: string, sensor: string, intervalMs: number, listener: (event: unknown) => void) => {
        const coordinator = this.#coordination();
        const target = coordinator.resolve(peer);
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
      },
      subscribe: (listener: (event: ListenEvent) => void) =>
        this.#onAnyMessage((message) => listener(toListenEvent(message))),
      trace: (peer: string, listener: (event: TraceEvent) => void) => traceLink(this.links, peer, listener),
    };
  }

  /** Rules run only where configured: an agent without them never loads the engine. */
  async #startRules(coordinator: Coordinator): Promise<void> {
    const { RuleEngine } = await import('./coordination/rule-engine.js');
    this.#rules = new RuleEngine(
      this.config.rules,
      {
        tryResolve: (reference) => coordinator.tryResolve(reference),
        watch: (peerId, sensor, intervalMs) => coordinator.watch(peerId, sensor, intervalMs),
        latestValue: (peerId, sensor) => coordinator.latestValue(peerId, sensor),
        call: (request) => coordinator.call(request),
        onReading: (listener) => {
          coordinator.on('reading', listener);
          return () => coordinator.off('reading', listener);
        },
      },
      this.log,
      this.counters,
    );
    this.#rules.start();
  }

  #sessions(): StreamSessions {
    if (this.#streamSessions === undefined)
      throw new NearmeshError('not-started', 'the agent has not started');
    return this.#streamSessions;
  }

  #trusted(): TrustService {
    if (this.#trustService === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#trustService;
  }

  #coordination(): Coordinator {
    if (this.#coordinator === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#coordinator;
  }

  async #lease(request: LeaseControlRequest): Promise<{ result: unknown; stop?: () => void }> {
    const coordinator = this.#coordination();
    if (request.op === 'release') {
      return { result: await coordinator.lease(request.peer, request.resource, 'release', 0) };
    }
    // "acquire" alone is one lease time; with for_ms this agent renews it that long; "hold" renews it for as
    // long as the client stays connected.
    if (request.op === 'acquire' && request.for_ms === undefined) {
      return { result: await coordinator.lease(request.peer, request.resource, 'acquire', request.ttl_ms) };
    }
    const forMs = request.op === 'hold' ? undefined : request.for_ms;
    const held = await coordinator.hold(request.peer, request.resource, request.ttl_ms, forMs);
    if (request.op === 'hold') return { result: held.result, stop: () => void held.stop() };
    return { result: held.result };
  }

  /** A remote call from the control socket: `in_ms` and `at_ms` become an instant of this agent's clock. */
  async #call(request: CallControlRequest) {
    const coordinator = this.#coordination();
    const now = coordinator.timeSync.now();
    const fireAt = request.in_ms !== undefined ? now + request.in_ms : request.at_ms;
    const outcomes = await coordinator.call({
      target: request.target,
      action: request.action,
      args: request.args as JsonObject,
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

  /**
   * Starts a push and streams its events to `listener` until it is sent or fails for good; resumable
   * interruptions come as 'waiting' events while the transfer waits for the peer.
   */
  async #push(request: PushControlRequest, listener: (event: PushEvent) => void) {
    const transfers = this.#transfers;
    if (transfers === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    const peer = this.messenger.resolvePeer(request.peer);
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

  /** Reliable messages to a peer (id or name): queued durably, then waited for when `wait` says so. */
  #sendReliable(
    reference: string,
    payloads: readonly Uint8Array[],
    options: { wait: boolean; timeoutMs?: number | undefined },
  ): Promise<QueuedSend[]> {
    const peer = this.messenger.resolvePeer(reference);
    return this.reliable.send(
      peer,
      payloads,
      options.wait ? (options.timeoutMs ?? DEFAULT_WAIT_MS) : undefined,
    );
  }

  /** Every message for this agent: over a direct link, through the mesh, or reliable. Returns an unsubscribe. */
  #onAnyMessage(listener: (message: ReceivedMessage | MeshMessage) => void): () => void {
    this.links.on('message', listener);
    this.messenger.on('message', listener);
    this.reliable.on('message', listener);
    return () => {
      this.links.off('message', listener);
      this.messenger.off('message', listener);
      this.reliable.off('message', listener);
    };
  }

  /**
   * Serves MQTT to local apps. The built-in default port may be taken (a local mosquitto): that costs a
   * warning, not the agent; a port the config asked for must be served or the agent does not start.
   */
  async #startMqtt(listen: HostPort): Promise<void> {
    const { config, log } = this;
    // Loaded only when served, like mDNS and BLE.
    const [{ MqttGateway }, bridge] = await Promise.all([
      import('./gateway/mqtt-gateway.js'),
      config.mqtt.upstream === undefined ? undefined : this.#createBridge(config.mqtt.upstream),
    ]);
    const gateway = new MqttGateway({
      listen,
      ...(config.mqtt.credentials !== undefined && { credentials: config.mqtt.credentials }),
      maxPacketSize: config.mqtt.maxPacketSize,
      mesh: {
        selfId: this.identity.peerId,
        selfName: config.name,
        groups: config.groups,
        send: (reference, payload) => this.messenger.send(reference, payload),
        multicast: (group, payload) => {
          this.messenger.multicast(group, payload);
        },
        peers: () => this.messenger.peers(),
        onMessage: (listener) =>
          this.#onAnyMessage((message) =>
            listener({
              from: message.from,
              fromName: message.fromName,
              payload: message.payload,
              hops: 'hops' in message ? message.hops : 1,
              ...('to' in message && message.to !== undefined && { to: message.to }),
            }),
          ),
        ...(this.#coordinator !== undefined && { coordination: this.#coordinator }),
      },
      ...(bridge !== undefined && { bridge }),
      counters: this.counters,
      log,
    });
    try {
      const address = await gateway.start();
      log.info({ listen: `${address.address}:${address.port}` }, 'MQTT: serving local apps');
    } catch (error) {
      await gateway.stop();
      if (!config.mqtt.listenIsDefault) throw error;
      this.#mqttUnavailable = error instanceof Error ? error.message : String(error);
      log.warn(
        `MQTT: not serving (${this.#mqttUnavailable}); set [mqtt] listen to a free "host:port", or false`,
      );
      return;
    }
    this.#mqtt = gateway;
    const peersChanged = (): void => gateway.peersChanged();
    this.links.on('peer-up', peersChanged);
    this.links.on('peer-down', peersChanged);
  }

  async #createBridge(upstream: MqttUpstreamConfig): Promise<UpstreamBridge> {
    const [{ UpstreamBridge }, tls] = await Promise.all([
      import('./gateway/upstream-bridge.js'),
      readBridgeTls(upstream),
    ]);
    return new UpstreamBridge({
      url: upstream.url,
      clientId: upstream.clientId ?? `nearmesh-${this.identity.peerId}`,
      ...(upstream.credentials !== undefined && upstream.credentials),
      ...(tls !== undefined && { tls }),
      out: upstream.out,
      in: upstream.in,
      remotePrefix: upstream.prefix,
      maxQueued: upstream.maxQueued,
      originId: this.identity.peerId,
      counters: this.counters,
      log: this.log,
    });
  }

  #mqttState(): MqttState {
    if (this.#mqtt !== undefined) return { state: 'on', ...this.#mqtt.status() };
    if (this.#mqttUnavailable !== undefined) return { state: 'unavailable', reason: this.#mqttUnavailable };
    return { state: 'off' };
  }
}

/** The bridge's PEM files, read once at start: a missing file stops the agent with its path named. */
async function readBridgeTls(
  upstream: MqttUpstreamConfig,
): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined> {
  const read = async (key: string, path: string | undefined): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new NearmeshError(
        'mqtt-upstream-tls',
        `mqtt.upstream.${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  };
  const [ca, cert, key] = await Promise.all([
    read('ca_file', upstream.caFile),
    read('cert_file', upstream.certFile),
    read('key_file', upstream.keyFile),
  ]);
  if (ca === undefined && cert === undefined) return undefined;
  return {
    ...(ca !== undefined && { ca }),
    ...(cert !== undefined && { cert }),
    ...(key !== undefined && { key }),
  };
}

function toListenEvent(message: ReceivedMessage | MeshMessage): ListenEvent {
  const payload = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  return {
    from: message.from,
    from_name: message.fromName,
    payload: payload.toString('utf8'),
    payload_base64: payload.toString('base64'),
    received_at: new Date(message.receivedAtMs).toISOString(),
    ...('to' in message && message.to !== undefined && { to: message.to }),
    hops: 'hops' in message ? message.hops : 1,
  };
}

function describeBoard(detection: BoardDetection): { id: string; name: string; model: string | null } {
  return { id: detection.profile.id, name: detection.profile.name, model: detection.model };
}
