// The local MQTT endpoint as a part of the agent: the gateway (and the upstream bridge when configured),
// loaded only when served. The built-in default port may be taken (a local mosquitto): that costs a
// warning, not the agent; a port the config asked for must be served or the agent does not start.
import { readFile } from 'node:fs/promises';
import type { AgentApi, MqttState } from '../api.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { type HostPort, isLoopbackHost } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import { VERSION } from '../core/version.js';
import type { MqttConfig, MqttUpstreamConfig } from '../gateway/config.js';
import type { CoordinationPort } from '../gateway/coordination-port.js';
import type { HomeAssistantConfig } from '../gateway/homeassistant-config.js';
import type { HaAgent } from '../gateway/homeassistant-discovery.js';
import type { HomeAssistantPort, MqttGateway } from '../gateway/mqtt-gateway.js';
import {
  haAvailabilityTopic,
  haBirthTopic,
  haCommandFilter,
  haGatewayStatusTopic,
  sensorTopic,
  tunnelTopic,
} from '../gateway/topic-map.js';
import type { UpstreamBridge } from '../gateway/upstream-bridge.js';
import type { LinkManager } from '../links/link-manager.js';
import type { SiteTunnel } from '../messaging/site-tunnel.js';
import type { AgentAbout } from '../protocol/index.js';

export interface MqttEndpointOptions {
  mqtt: MqttConfig;
  listen: HostPort;
  homeAssistant: HomeAssistantConfig;
  /** What an agent says it runs on and which version (this one, or what another announced); undefined: unsaid. */
  about(peer: string): AgentAbout | undefined;
  /** Peer ids revoked in the mesh. */
  revoked(): Iterable<string>;
  api: AgentApi;
  groups: readonly string[];
  coordination: CoordinationPort;
  /** Agents of other sites: the bridge carries the tunnel's frames, when there is a bridge. */
  tunnel: SiteTunnel;
  links: LinkManager;
  counters: Counters;
  log: Logger;
}

export class MqttEndpoint {
  #gateway: MqttGateway | undefined;
  /** Why the default endpoint is not served (its port was taken), for status. */
  #unavailable: string | undefined;

  constructor(private readonly options: MqttEndpointOptions) {}

  async start(): Promise<void> {
    const { mqtt, listen, api, log } = this.options;
    // A bad password or ACL file rejects here: the agent does not start, and the error names the file.
    const [{ MqttGateway }, security, bridge] = await Promise.all([
      import('../gateway/mqtt-gateway.js'),
      import('../gateway/mqtt-security.js').then(({ loadMqttSecurity }) =>
        loadMqttSecurity({
          ...(mqtt.passwordFile !== undefined && { passwordFile: mqtt.passwordFile }),
          ...(mqtt.aclFile !== undefined && { aclFile: mqtt.aclFile }),
          ...(mqtt.anonymous !== undefined && { anonymous: mqtt.anonymous }),
          ...(mqtt.credentials !== undefined && { credentials: mqtt.credentials }),
          loopback: isLoopbackHost(listen.host),
        }),
      ),
      mqtt.upstream === undefined ? undefined : this.#createBridge(mqtt.upstream),
    ]);
    const gateway = new MqttGateway({
      listen,
      security,
      maxPacketSize: mqtt.maxPacketSize,
      limits: mqtt.limits,
      mesh: {
        id: () => api.id(),
        groups: this.options.groups,
        enqueue: (peer, payloads) => api.enqueue(peer, payloads),
        multicast: (group, payload) => api.multicast(group, payload),
        peers: () => api.peers(),
        subscribe: (listener) => api.subscribe(listener),
        listen: (listenOptions, listener) => api.listen(listenOptions, listener),
        inbox: () => api.inbox(),
        inboxForget: (consumer) => api.inboxForget(consumer),
        coordination: this.options.coordination,
        tunnel: this.options.tunnel,
      },
      ...(bridge !== undefined && { bridge }),
      ...(this.options.homeAssistant.enabled && { homeAssistant: this.#homeAssistantPort() }),
      counters: this.options.counters,
      log,
    });
    try {
      const address = await gateway.start();
      log.info({ listen: `${address.address}:${address.port}` }, 'MQTT: serving local apps');
    } catch (error) {
      await gateway.stop();
      if (!mqtt.listenIsDefault) throw error;
      this.#unavailable = error instanceof Error ? error.message : String(error);
      log.warn(`MQTT: not serving (${this.#unavailable}); set [mqtt] listen to a free "host:port", or false`);
      return;
    }
    this.#gateway = gateway;
    const peersChanged = (): void => gateway.peersChanged();
    this.options.links.on('peer-up', peersChanged);
    this.options.links.on('peer-down', peersChanged);
  }

  async stop(): Promise<void> {
    await this.#gateway?.stop();
  }

  state(): MqttState {
    if (this.#gateway !== undefined) return { state: 'on', ...this.#gateway.status() };
    if (this.#unavailable !== undefined) return { state: 'unavailable', reason: this.#unavailable };
    return { state: 'off' };
  }

  #homeAssistantPort(): HomeAssistantPort {
    const { api, coordination, homeAssistant, about, revoked } = this.options;
    return {
      discoveryPrefix: homeAssistant.discoveryPrefix,
      softwareVersion: VERSION,
      agents: () => homeAssistantAgents(api.id().id, coordination, about),
      revoked,
    };
  }

  async #createBridge(upstream: MqttUpstreamConfig): Promise<UpstreamBridge> {
    const [{ UpstreamBridge }, tls] = await Promise.all([
      import('../gateway/upstream-bridge.js'),
      readBridgeTls(upstream),
    ]);
    const { id } = this.options.api.id();
    const ha = this.options.homeAssistant;
    // Home Assistant's broker is the upstream: discovery, states and availability go up, its commands and
    // birth message come down, and the broker says "offline" for this gateway if it vanishes.
    const haOut = ha.enabled
      ? [
          `${ha.discoveryPrefix}/device/#`,
          sensorTopic('+', '+'),
          haGatewayStatusTopic(id),
          haAvailabilityTopic(id, '+'),
        ]
      : [];
    const haIn = ha.enabled ? [haCommandFilter(id), haBirthTopic(ha.discoveryPrefix)] : [];
    return new UpstreamBridge({
      url: upstream.url,
      clientId: upstream.clientId ?? `nearmesh-${id}`,
      ...(upstream.credentials !== undefined && upstream.credentials),
      ...(tls !== undefined && { tls }),
      out: [...new Set([...upstream.out, ...haOut])],
      // Frames of the site tunnel for this agent come in whatever `in` says.
      in: [...new Set([...upstream.in, ...haIn, tunnelTopic(id)])],
      ...(ha.enabled && {
        will: {
          topic: haGatewayStatusTopic(id),
          payload: Buffer.from('offline'),
          qos: 1 as const,
          retain: true,
        },
      }),
      remotePrefix: upstream.prefix,
      maxQueued: upstream.maxQueued,
      originId: id,
      counters: this.options.counters,
      log: this.options.log,
    });
  }
}

/** The agents Home Assistant gets a device for: this agent first, then each one whose capabilities are known. */
function homeAssistantAgents(
  selfId: string,
  coordination: Pick<CoordinationPort, 'sensors' | 'actions'>,
  about: (peer: string) => AgentAbout | undefined,
): HaAgent[] {
  type Entry = { name: string; sensors: { name: string; unit: string | null }[]; actions: string[] };
  const byPeer = new Map<string, Entry>();
  const entry = (peer: string, name: string): Entry => {
    let found = byPeer.get(peer);
    if (found === undefined) {
      found = { name, sensors: [], actions: [] };
      byPeer.set(peer, found);
    }
    return found;
  };
  for (const sensor of coordination.sensors())
    entry(sensor.peer, sensor.name).sensors.push({ name: sensor.sensor, unit: sensor.unit });
  for (const action of coordination.actions()) entry(action.peer, action.name).actions.push(action.action);
  const agents = [...byPeer].map(([id, found]) => {
    const said = about(id);
    return { id, ...found, model: said?.board ?? null, softwareVersion: said?.software ?? null };
  });
  return agents.sort((a, b) => (a.id === selfId ? -1 : b.id === selfId ? 1 : 0));
}

/** The bridge's PEM files, read once at start: a missing file stops the agent with its path named. */
export async function readBridgeTls(
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
