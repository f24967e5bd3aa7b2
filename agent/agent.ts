// The daemon: wires config, identity, transports, resolvers, the link manager and the control socket
// together, and starts and stops them in order (SIGTERM closes links, then removes the socket).
import { mkdir } from 'node:fs/promises';
import { type BoardDetection, detectBoardSync } from '../boards/index.js';
import type { BleResolver } from '../transports/ble/ble-resolver.js';
import type { BleTransport } from '../transports/ble/ble-transport.js';
import { BleUnavailableError } from '../transports/ble/radio.js';
import type { Resolver } from '../transports/resolver.js';
import type { Transport } from '../transports/transport.js';
import { StaticResolver } from '../transports/wifi/static-resolver.js';
import { TcpTransport } from '../transports/wifi/tcp-transport.js';
import { formatHostPort } from './config/address.js';
import type { Config } from './config/index.js';
import { loadOrCreateMeshKey } from './config/mesh-key.js';
import { type ConsoleContext, completeConsoleLine, runConsoleLine } from './console/commands.js';
import type { SerialConsole } from './console/serial-console.js';
import { type ControlHandlers, ControlServer } from './control/server.js';
import type { ListenEvent, RouteInfo } from './control/wire.js';
import { NearmeshError } from './errors.js';
import { type Identity, loadOrCreateIdentity } from './identity/identity.js';
import { LinkManager, type ReceivedMessage } from './links/link-manager.js';
import { type MeshMessage, Messenger } from './mesh/messenger.js';
import { Router } from './mesh/router.js';
import { Counters } from './ops/counters.js';
import type { Logger } from './ops/logger.js';
import { readTelemetry } from './ops/telemetry.js';
import { PROTOCOL_VERSION } from './protocol/index.js';
import { VERSION } from './version.js';

export { BleUnavailableError };

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
  peers: { connected: number; routed: number; known: number };
  mesh: { ttl: number; relay: boolean; groups: readonly string[] };
  counters: Record<string, number>;
}

export class Agent {
  readonly counters = new Counters();
  #links: LinkManager | undefined;
  #router: Router | undefined;
  /** The board this runs on (boards/): for status and doctor. */
  readonly #board = describeBoard(detectBoardSync());
  #messenger: Messenger | undefined;
  #control: ControlServer | undefined;
  #serialConsole: SerialConsole | undefined;
  #tcp: TcpTransport | undefined;
  #ble: BleTransport | undefined;
  #identity: Identity | undefined;
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

  get links(): LinkManager {
    if (this.#links === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#links;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    this.#startedAtMs = Date.now();
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    this.#identity = await loadOrCreateIdentity(config.dataDir);
    const meshKey = config.meshKey ?? (await loadOrCreateMeshKey(config.dataDir));
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
      const ble = await this.#startBle(new BleTransport(this.#bleOptions(meshKey)));
      if (ble !== undefined) {
        transports.push(ble);
        bleResolver = new BleResolver(ble, { peerId: this.#identity.peerId, meshKey });
        resolvers.push(bleResolver);
      }
    }
    const router = new Router({
      selfId: this.#identity.peerId,
      name: config.name,
      groups: config.groups,
      ttl: config.mesh.ttl,
      relay: config.mesh.relay,
      counters: this.counters,
    });
    this.#router = router;
    this.#links = new LinkManager({
      identity: this.#identity,
      name: config.name,
      meshKey,
      transports,
      resolvers,
      log,
      counters: this.counters,
      ...(bleResolver !== undefined && { rssiOf: (peerId: string) => bleResolver.rssiOf(peerId) }),
      router,
    });
    this.#messenger = new Messenger(router, this.#links, this.counters, config.groups);
    await this.#links.start();
    router.start();
    // mDNS needs the port actually bound (the configured one may be 0), so it starts after the listener.
    const listening = this.#tcp?.address();
    if (listening !== undefined && config.wifi.discovery.includes('mdns')) {
      // Listening on one address means announcing (and browsing) on that interface only.
      const isWildcard = listening.host === '0.0.0.0' || listening.host === '::';
      // Loaded only when configured: the mDNS stack costs several MB that a static-peers agent never needs.
      const { MdnsResolver } = await import('../transports/wifi/mdns-resolver.js');
      await this.#links.addResolver(
        new MdnsResolver({
          peerId: this.#identity.peerId,
          name: config.name,
          port: listening.port,
          ...(isWildcard ? {} : { interfaceAddress: listening.host }),
        }),
      );
    }
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

  #bleOptions(meshKey: Uint8Array): ConstructorParameters<typeof BleTransport>[0] {
    const { config } = this;
    return {
      peripheral: config.ble.peripheral,
      central: config.ble.central,
      peerId: this.identity.peerId,
      name: config.name,
      meshKey,
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

  async stop(): Promise<void> {
    await this.#serialConsole?.stop();
    await this.#control?.stop();
    this.#router?.stop();
    this.#messenger?.stop();
    await this.#links?.stop();
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
      peers: {
        connected: peers.filter((peer) => peer.state === 'connected').length,
        routed: peers.filter((peer) => peer.state === 'routed').length,
        known: peers.length,
      },
      mesh: { ttl: this.config.mesh.ttl, relay: this.config.mesh.relay, groups: this.config.groups },
      counters: this.counters.snapshot(),
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
      send: handlers.send,
      multicast: handlers.multicast,
      logLevel: (level) => {
        if (level !== undefined) this.log.level = level;
        return this.log.level;
      },
    };
  }

  #controlHandlers(consoleContext: ConsoleContext): ControlHandlers {
    return {
      ...this.#baseHandlers(),
      consoleLine: async (line: string) => ({ output: await runConsoleLine(line, consoleContext) }),
      consoleComplete: (line: string) => {
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
      send: (peer: string, payload: Uint8Array, timeoutMs: number | undefined) =>
        this.messenger.send(peer, payload, timeoutMs === undefined ? {} : { timeoutMs }),
      multicast: (group: string | undefined, payload: Uint8Array) => this.messenger.multicast(group, payload),
      routes: () => this.#routes(),
      subscribe: (listener: (event: ListenEvent) => void) => {
        const onMessage = (message: ReceivedMessage | MeshMessage): void => listener(toListenEvent(message));
        this.links.on('message', onMessage);
        this.messenger.on('message', onMessage);
        return () => {
          this.links.off('message', onMessage);
          this.messenger.off('message', onMessage);
        };
      },
    };
  }
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
