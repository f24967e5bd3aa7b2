// The daemon, assembled: builds every part from the config in dependency order (identity and trust, the
// media, links and mesh, the messaging services, coordination, then the front ends), starts each as it is
// built and stops them all in the reverse order. The parts know nothing of each other beyond the
// interfaces they are handed here; every front end reaches the agent through one AgentApi.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { detectBoardSync } from '../boards/index.js';
import type { Resolver } from '../transports/resolver.js';
import type { AgentApi } from './api.js';
import { selfAbout } from './assembly/agent-about.js';
import { execResolver } from './assembly/exec-resolver.js';
import { startFrontEnds } from './assembly/front-ends.js';
import { HttpEndpoint } from './assembly/http-endpoint.js';
import { withListenKey } from './assembly/listen-failure.js';
import { LocalAgentApi } from './assembly/local-api.js';
import { Media } from './assembly/media.js';
import { MeshMembership } from './assembly/mesh-membership.js';
import { MeshTrust } from './assembly/mesh-trust.js';
import { MqttEndpoint } from './assembly/mqtt-endpoint.js';
import { openRendezvous } from './assembly/rendezvous.js';
import { openTrustState, routerTrust } from './assembly/trust-state.js';
import type { Config } from './config/index.js';
import { loadMeshKey } from './config/mesh-key.js';
import { Coordinator } from './coordination/coordinator.js';
import { registryFromConfig } from './coordination/registry.js';
import { systemClock } from './coordination/time-sync.js';
import { Counters } from './core/counters.js';
import { mkdirDurable } from './core/durable-fs.js';
import { NearmeshError, PeerUnreachableError } from './core/errors.js';
import { Lifecycle } from './core/lifecycle.js';
import type { Logger } from './core/logger.js';
import { SYSTEM_ACK_TIMEOUT_MS } from './core/pending-acks.js';
import { VERSION } from './core/version.js';
import { loadOrCreateIdentity } from './identity/identity.js';
import { LinkManager } from './links/link-manager.js';
import { localEndpoints } from './links/local-endpoints.js';
import { BUILT_IN_RESOLVERS, ResolverError } from './links/resolver-book.js';
import { routeOverLinks } from './mesh/link-neighbours.js';
import { Router } from './mesh/router.js';
import { MAX_ROUTED_PAYLOAD_BYTES, Messenger } from './messaging/messenger.js';
import { AppInbox } from './messaging/reliable/app-inbox.js';
import { DurableQueue } from './messaging/reliable/durable-queue.js';
import { ReliableDelivery } from './messaging/reliable/reliable-delivery.js';
import { SiteTunnel } from './messaging/site-tunnel.js';
import { StreamService } from './messaging/stream/service.js';
import { StreamSessions } from './messaging/stream/sessions.js';
import { SystemInbox } from './messaging/system-inbox.js';
import { TransferManager } from './messaging/transfer/manager.js';
import { lockDataDir } from './ops/data-dir-lock.js';
import { EventLoopDelay } from './ops/event-loop-delay.js';
import { Invitations } from './trust/invitations.js';
import { loadMembership } from './trust/membership.js';

export { BleUnavailableError } from '../transports/ble/radio.js';

/** The durable queue of reliable messages, in data_dir. */
export const MESSAGE_QUEUE_FILE = 'messages.sqlite';

export interface AgentOptions {
  /** Resolvers of the embedding program's, besides the built-in and configured ones (docs/RESOLVERS.md). */
  resolvers?: readonly Resolver[];
}

export class Agent {
  readonly counters = new Counters();
  readonly #lifecycle: Lifecycle;
  #api: LocalAgentApi | undefined;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    private readonly options: AgentOptions = {},
  ) {
    for (const resolver of options.resolvers ?? []) {
      if ((BUILT_IN_RESOLVERS as readonly string[]).includes(resolver.name))
        throw new ResolverError(resolver.name, "that is a built-in resolver's name");
    }
    this.#lifecycle = new Lifecycle(log);
  }

  /** The agent's typed API, the one every front end uses; available once started. */
  get api(): AgentApi {
    if (this.#api === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#api;
  }

  /** Builds and starts every part; on a failure, what already started is stopped before the error is thrown. */
  async start(): Promise<void> {
    try {
      await this.#assemble();
    } catch (error) {
      await this.#lifecycle.stopAll();
      throw error;
    }
  }

  /** Stops every part, the last started first; the trust store closes last. */
  async stop(): Promise<void> {
    await this.#lifecycle.stopAll();
    this.log.info('agent stopped');
  }

  /** The status without a telemetry reading. */
  status() {
    if (this.#api === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#api.agentStatus();
  }

  async #assemble(): Promise<void> {
    const { config, log, counters } = this;
    const lifecycle = this.#lifecycle;
    const startedAtMs = Date.now();
    const eventLoop = await lifecycle.start('event loop monitor', new EventLoopDelay());
    await mkdirDurable(config.dataDir);
    const lock = await lockDataDir(config.dataDir);
    await lifecycle.start('data_dir lock', { stop: () => lock.release() });
    const identity = await loadOrCreateIdentity(config.dataDir);
    const meshKey = config.meshKey ?? (await loadMeshKey(config.dataDir));
    const membership = new MeshMembership({
      config,
      identity,
      hasMesh: meshKey !== undefined,
      saved: await loadMembership(config.dataDir),
      counters,
      log,
    });
    const trust = new MeshTrust(
      await openTrustState({
        dataDir: config.dataDir,
        identity,
        // With no mesh yet, a random key held in memory: no handshake succeeds with it, and the first
        // invite on this device makes it the new mesh's key.
        baseMeshKey: meshKey ?? Uint8Array.from(randomBytes(32)),
        admins: () => membership.admins(),
        security: config.security,
        counters,
        log,
      }),
      counters,
      log,
    );
    const invitations = new Invitations({ grant: () => membership.grant(), counters, log });
    await lifecycle.start('invitations', { stop: () => invitations.stop() });
    await lifecycle.start('trust store', trust);
    // This agent's own name is its own: another identity announcing it is the conflict, not this one.
    trust.claimName(identity.peerId, config.name);
    const meshKeys = (): Uint8Array[] => trust.state.keyRing.accepted();
    const media = await Media.open({
      config,
      peerId: identity.peerId,
      meshKeys,
      learnedPeers: membership.addresses,
      invitation: () => invitations.openInvitation?.discriminator,
      lifecycle,
      counters,
      log,
    });
    // Show or withdraw the invitation's discriminator on the LAN at once.
    invitations.on('change', () => media.rotateDiscoveryHints());

    const registry = registryFromConfig(config, log, counters);
    const board = detectBoardSync();
    const about = selfAbout(board);
    const router = new Router({
      name: config.name,
      groups: config.groups,
      capabilities: registry.capabilities(),
      about,
      ttl: config.mesh.ttl,
      relay: config.mesh.relay,
      counters,
      trust: routerTrust(trust.state),
    });
    router.on('route-penalised', (destination, nextHop) =>
      log.info({ destination, next_hop: nextHop }, 'a next hop lost messages twice in a row: avoiding it'),
    );
    const bleResolver = media.bleResolver;
    const links = new LinkManager({
      identity,
      name: config.name,
      meshKeys,
      onAuthenticated: (secure, usedRetiredKey) => trust.vetPeer(secure, usedRetiredKey),
      transports: media.transports,
      resolvers: [
        ...media.resolvers,
        ...config.resolvers.map((resolver) => execResolver(resolver, log)),
        ...(this.options.resolvers ?? []),
      ],
      log,
      counters,
      ...(bleResolver !== undefined && { rssiOf: (peerId: string) => bleResolver.rssiOf(peerId) }),
      localEndpoints: () => localEndpoints(media.tcp?.address()),
      joins: {
        isOpen: () => invitations.openInvitation !== undefined,
        answererFor: (discriminator) => invitations.answererFor(discriminator),
      },
      mayDial: () => membership.hasMesh,
    });
    membership.attach({ keyRing: trust.state.keyRing, links, media });
    routeOverLinks(router, links);
    const messenger = new Messenger(router, links, trust.state.members, counters, config.groups, (peer) =>
      trust.state.revocations.has(peer),
    );
    const trustService = trust.createService({
      identity,
      router,
      links,
      messenger,
      onKeyAdopted: () => media.meshChanged(),
    });
    const nameOf = (peer: string): string =>
      links.directory.get(peer)?.name ?? router.agent(peer)?.name ?? peer;
    const queue = await DurableQueue.open(join(config.dataDir, MESSAGE_QUEUE_FILE), { inbox: config.inbox });
    await lifecycle.start('message queue', { stop: () => queue.close() });
    const appInbox = new AppInbox({ store: queue.inbox, counters, log });
    const systemSend = (peer: string, payload: Uint8Array, timeoutMs?: number) =>
      messenger.send(peer, payload, { system: true, ...(timeoutMs !== undefined && { timeoutMs }) });
    const reliable = new ReliableDelivery({
      queue,
      send: systemSend,
      isReachable: (peer) => messenger.isReachable(peer),
      nameOf,
      maxPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
      counters,
      log,
    });
    const transfers = new TransferManager({
      dataDir: config.dataDir,
      inboxDir: config.transfer.inbox,
      maxBytes: config.transfer.maxBytes,
      maxBytesPerPeer: config.transfer.maxBytesPerPeer,
      accept: config.transfer.accept,
      send: systemSend,
      mediumOf: (peer) => {
        const connection = links.directory.get(peer)?.connection;
        return connection?.isOpen === true ? connection.link.medium : undefined;
      },
      isReachable: (peer) => messenger.isReachable(peer),
      routedPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
      counters,
      log,
    });
    const streams = new StreamService({
      send: async (peer, payload) => {
        await systemSend(peer, payload, SYSTEM_ACK_TIMEOUT_MS);
      },
      maxPayloadBytes: MAX_ROUTED_PAYLOAD_BYTES,
    });
    // Agents of other sites, through the upstream bridge when there is one (it attaches itself as the carrier).
    const tunnel = new SiteTunnel({ trust: routerTrust(trust.state), meshKeys, counters });
    const coordinator = new Coordinator({
      selfId: identity.peerId,
      name: config.name,
      groups: config.groups,
      registry,
      clock: systemClock,
      // What the mesh does not reach goes through the tunnel while it is open; the mesh wins when both reach.
      send: async (peer, payload) => {
        if (messenger.isReachable(peer) || !tunnel.isOpen()) return systemSend(peer, payload);
        tunnel.send(peer, payload, { system: true });
      },
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
        if (isKnown) return { id, name: nameOf(id) };
        // A peer id of another site: its name is not known here, its id stands for it.
        return id === reference && tunnel.isOpen() ? { id, name: id } : undefined;
      },
      ownsName: (peerId, name) => !trust.state.members.isImpostor(peerId, name),
      onCapabilitiesChanged: () => router.setCapabilities(registry.capabilities()),
      limits: config.coordination,
      counters,
      log,
    });

    const inbox = new SystemInbox({ counters, beforeActing: () => trust.state.replay.flush() });
    for (const service of [trustService, reliable, transfers, streams, coordinator])
      service.registerWith(inbox);
    links.on('system', (message) => inbox.deliver({ ...message, hops: 1, overDirectLink: true }));
    messenger.on('system', (message) => inbox.deliver({ ...message, overDirectLink: false }));
    tunnel.on('system', (message) => inbox.deliver(message));
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

    await withListenKey('[wifi] listen', config.wifi.listen, () => lifecycle.start('links', links));
    await lifecycle.start('messenger', messenger);
    await lifecycle.start('streams', { stop: () => streams.close() });
    await lifecycle.start('app inbox', appInbox);
    reliable.on('message', () => appInbox.stored());
    await lifecycle.start('reliable delivery', reliable);
    await lifecycle.start('transfers', { start: () => transfers.start(), stop: () => transfers.close() });
    await lifecycle.start('router', router);
    await lifecycle.start('coordinator', coordinator);
    if (config.rules.length > 0) {
      // Rules run only where configured: an agent without them never loads the engine.
      const { RuleEngine, ruleHostOf } = await import('./coordination/rule-engine.js');
      await lifecycle.start('rules', new RuleEngine(config.rules, ruleHostOf(coordinator), log, counters));
    }
    await media.startMdns(links);
    const rendezvous = await openRendezvous({
      config,
      identity,
      media,
      meshKeys,
      hasMesh: () => membership.hasMesh,
      isRevoked: (peer) => trust.state.revocations.has(peer),
      counters,
      log,
    });
    if (rendezvous !== undefined) {
      await links.addResolver(rendezvous);
      media.rendezvous = rendezvous;
    }

    let mqtt: MqttEndpoint | undefined;
    let http: HttpEndpoint | undefined;
    const api = new LocalAgentApi({
      board,
      about,
      config,
      log,
      counters,
      peerId: identity.peerId,
      startedAtMs,
      media,
      router,
      links,
      messenger,
      reliable,
      inbox: appInbox,
      transfers,
      streams: new StreamSessions(streams, nameOf),
      coordinator,
      trust,
      trustService,
      membership,
      invitations,
      eventLoop,
      mqttState: () => mqtt?.state() ?? { state: 'off' },
      httpState: () => http?.state() ?? { state: 'off' },
    });
    this.#api = api;
    if (config.mqtt.listen !== false) {
      mqtt = new MqttEndpoint({
        mqtt: config.mqtt,
        listen: config.mqtt.listen,
        homeAssistant: config.homeAssistant,
        about: (peer) => (peer === identity.peerId ? about : router.agent(peer)?.about),
        revoked: () => trust.state.revocations.entries().map((revocation) => revocation.revoked),
        api,
        groups: config.groups,
        coordination: coordinator,
        tunnel,
        links,
        counters,
        log,
      });
      const endpoint = mqtt;
      await withListenKey('[mqtt] listen', config.mqtt.listen, () => lifecycle.start('MQTT', endpoint));
    }
    if (config.http.listen !== false) {
      const endpoint = new HttpEndpoint({
        http: config.http,
        listen: config.http.listen,
        api,
        counters,
        log,
      });
      http = endpoint;
      await withListenKey('[http] listen', config.http.listen, () => lifecycle.start('HTTP', endpoint));
    }
    await startFrontEnds({ api, config, lifecycle, log, counters });
    log.info(
      {
        id: identity.peerId,
        name: config.name,
        version: VERSION,
        listen: media.listening(),
        control: config.control.socketPath,
      },
      'agent started',
    );
    if (!membership.hasMesh) {
      log.info(
        'no mesh yet: this agent serves its own device and waits to be invited. To join a mesh, run ' +
          '"nearmesh invite" on one of its agents, then "nearmesh join CODE" here; to start a new mesh, run ' +
          '"nearmesh invite" here',
      );
    }
  }
}
