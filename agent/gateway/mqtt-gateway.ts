// The agent's MQTT face: the local broker for apps, the topic map that joins it to the mesh (docs/MQTT.md),
// and the optional upstream bridge that joins it to other sites' meshes.
//
// Apps publish to nearmesh/send/<target>; the mesh delivers. Messages from the mesh appear on
// nearmesh/inbox/<from>. The peer table is retained on nearmesh/peers. With coordination, apps call
// actions on nearmesh/call/<target>/<action> (call-endpoint.ts), sensor values are retained on
// nearmesh/sensor/<peer>/<sensor>, and apps provide their own sensors and actions on nearmesh/provide/...
// and nearmesh/invoke/... (app-capabilities.ts). With a bridge, what matches its
// `out` filters goes upstream and what its `in` filters bring back is published here; a send that comes
// back from upstream is delivered only when it is addressed to this agent.

import type { AddressInfo } from 'node:net';
import type { AgentApi, AppMessage, MqttGatewayStatus, PeerInfo } from '../api.js';
import type { SensorReadingEvent } from '../coordination/coordinator.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import type { HostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import { isPeerId } from '../core/peer-id.js';
import { QueueFullError } from '../messaging/reliable/queue-errors.js';
import type { SiteTunnel, TunnelAppMessage } from '../messaging/site-tunnel.js';
import { AppCapabilities } from './app-capabilities.js';
import {
  type AgentPublishOptions,
  MqttBroker,
  type PublishMeta,
  type PublishProperties,
  type PublishRefusal,
} from './broker.js';
import { CallEndpoint } from './call-endpoint.js';
import { DEFAULT_MQTT_LIMITS, type MqttLimits } from './config.js';
import type { CoordinationPort } from './coordination-port.js';
import type { HaAgent } from './homeassistant-discovery.js';
import { HomeAssistantGateway } from './homeassistant-gateway.js';
import { type InboxPort, inboxProperties, MqttInboxConsumers } from './inbox-consumers.js';
import type { MqttSecurity } from './mqtt-security.js';
import { REASON } from './reason-codes.js';
import { SensorWatches } from './sensor-watches.js';
import {
  inboxTopic,
  isTunnelTopic,
  PEERS_TOPIC,
  parseCallTopic,
  parseInvokeAnswerTopic,
  parseProvideTopic,
  parseReadTopic,
  parseSendTopic,
  type SendTarget,
  sensorTopic,
  tunnelTopic,
  UPSTREAM_SENDER,
} from './topic-map.js';
import type { BridgedMessage, UpstreamBridge } from './upstream-bridge.js';

/** How often the peer table and Home Assistant's configs are compared with what was last published. */
const PEERS_CHECK_MS = 2_000;

/** What a request on a send topic gets on its response topic. */
type SendOutcome =
  | { ok: true; peer?: string; via?: 'upstream'; seq?: number | undefined; queued?: true }
  | { ok: false; error: { code: string; message: string } };

function failure(error: unknown): SendOutcome {
  return error instanceof NearmeshError
    ? { ok: false, error: { code: error.code, message: error.message } }
    : { ok: false, error: { code: 'internal', message: String(error) } };
}

/** The PUBACK's reason for a send that could not be queued: a full queue, a peer nobody knows, or else. */
function refusalOf(error: unknown): PublishRefusal {
  if (!(error instanceof NearmeshError)) return { refusedWith: REASON.unspecified };
  const reason = error.message;
  if (error instanceof QueueFullError) return { refusedWith: REASON.quotaExceeded, reason };
  if (error.code === 'peer-unreachable') return { refusedWith: REASON.topicNameInvalid, reason };
  // Larger than the mesh carries (the MQTT packet itself was within max_packet_size): the client may go on.
  if (error.code === 'frame-too-large') return { refusedWith: REASON.implementationSpecific, reason };
  return { refusedWith: REASON.unspecified, reason };
}

/** What the gateway needs of the agent: part of its typed API, its own groups, and coordination. */
export type MeshPort = Pick<AgentApi, 'id' | 'enqueue' | 'multicast' | 'peers' | 'subscribe'> &
  InboxPort & {
    readonly groups: readonly string[];
    /** Calls, sensors and app-provided capabilities (the call, sensor, provide and invoke topics). */
    readonly coordination?: CoordinationPort;
    /** Agents of other sites, through the bridge: it carries the tunnel's frames (needs a bridge). */
    readonly tunnel?: TunnelPort;
  };

/** What the gateway needs of the site tunnel: a carrier to attach, frames in, app messages both ways. */
export type TunnelPort = Pick<SiteTunnel, 'attach' | 'send' | 'receive' | 'on' | 'off'>;

/** Home Assistant discovery: the prefix HA listens on, what the gateway says of each agent, who is revoked. */
export interface HomeAssistantPort {
  discoveryPrefix: string;
  softwareVersion: string;
  /** The agents this agent knows, itself first, with what each offers. */
  agents(): HaAgent[];
  revoked(): Iterable<string>;
}

export interface MqttGatewayOptions {
  listen: HostPort;
  /** Who may connect and what each client may do (mqtt-security.ts); without it, anyone anything. */
  security?: MqttSecurity;
  maxPacketSize: number;
  limits?: MqttLimits;
  mesh: MeshPort;
  bridge?: UpstreamBridge;
  /** Publish Home Assistant discovery for the mesh (needs coordination). */
  homeAssistant?: HomeAssistantPort;
  counters: Counters;
  log: Logger;
}

export class MqttGateway {
  readonly #options: MqttGatewayOptions;
  readonly #broker: MqttBroker;
  readonly #inboxConsumers: MqttInboxConsumers;
  readonly #unsubscribe: (() => void)[] = [];
  #address: AddressInfo | undefined;
  #peersJson = '';
  #peersTimer: NodeJS.Timeout | undefined;
  readonly #calls: CallEndpoint | undefined;
  readonly #apps: AppCapabilities | undefined;
  readonly #watches: SensorWatches | undefined;
  readonly #homeAssistant: HomeAssistantGateway | undefined;

  constructor(options: MqttGatewayOptions) {
    this.#options = options;
    this.#broker = new MqttBroker({
      ...(options.security !== undefined && {
        auth: options.security.authenticate,
        access: options.security.access,
      }),
      maxPacketSize: options.maxPacketSize,
      ...options.limits,
      counters: options.counters,
      log: options.log,
    });
    this.#inboxConsumers = new MqttInboxConsumers(this.#broker, options.mesh, options.counters, options.log);
    const { coordination } = options.mesh;
    if (coordination !== undefined) {
      const { counters, log } = options;
      this.#calls = new CallEndpoint({
        coordination,
        publish: (topic, payload, properties) => this.#broker.publish(topic, payload, { qos: 1, properties }),
        counters,
        log,
      });
      this.#apps = new AppCapabilities({
        coordination,
        selfId: options.mesh.id().id,
        publish: (topic, payload, publishOptions) => this.#publishLocal(topic, payload, publishOptions),
        sensorValue: (sensor, reading) => {
          const self = options.mesh.id();
          if (reading !== undefined)
            this.#publishReading({ peer: self.id, name: self.name, sensor, ...reading });
          else this.#publishSafely(sensorTopic(self.id, sensor), Buffer.alloc(0), { qos: 0, retain: true });
        },
        counters,
        log,
      });
      const ha = options.homeAssistant;
      this.#homeAssistant =
        ha === undefined
          ? undefined
          : new HomeAssistantGateway({
              discoveryPrefix: ha.discoveryPrefix,
              gateway: { id: options.mesh.id().id, softwareVersion: ha.softwareVersion },
              agents: () => ha.agents(),
              reaches: (peer) => this.#reaches(peer),
              revoked: () => ha.revoked(),
              call: (request) => coordination.call(request),
              read: (peer, sensor) => coordination.read(peer, sensor),
              publish: (topic, payload, retain) =>
                this.#publishSafely(topic, Buffer.from(payload), { qos: 1, retain }),
              counters,
              log,
            });
      this.#watches = new SensorWatches({
        coordination,
        // Home Assistant subscribes on its own broker, beyond the bridge: its sensors are watched as if here.
        subscribed: (topic) =>
          this.#broker.hasConnectedSubscriber(topic) || this.#homeAssistant?.wantsSensor(topic) === true,
        maxWatches: (options.limits ?? DEFAULT_MQTT_LIMITS).maxSensorWatches,
        counters,
        log,
      });
    }
  }

  /** Listens (a taken port rejects with MqttGatewayError), then joins the mesh and the bridge. */
  async start(): Promise<AddressInfo> {
    const { listen, mesh, bridge } = this.#options;
    this.#address = await this.#broker.listen(listen.host, listen.port);
    this.#unsubscribe.push(
      this.#broker.onPublish((topic, payload, meta) => this.#fromApp(topic, payload, meta)),
      this.#inboxConsumers.start(),
      mesh.subscribe((message) => this.#fromMesh(message)),
    );
    if (bridge !== undefined) {
      const onBridged = (message: BridgedMessage): void => this.#fromUpstream(message);
      const onState = (state: { connected: boolean }): void => {
        if (state.connected) this.#homeAssistant?.reconnected();
      };
      bridge.on('message', onBridged);
      bridge.on('state', onState);
      this.#unsubscribe.push(
        () => bridge.off('message', onBridged),
        () => bridge.off('state', onState),
      );
      const { tunnel } = mesh;
      if (tunnel !== undefined) {
        const onTunnelled = (message: TunnelAppMessage): void => this.#fromTunnel(message);
        tunnel.on('message', onTunnelled);
        this.#unsubscribe.push(
          tunnel.attach({
            isUp: () => bridge.state().connected,
            carry: (destination, frame, { expirySeconds }) =>
              bridge.publish({
                topic: tunnelTopic(destination),
                payload: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength),
                qos: 1,
                retain: false,
                ...(expirySeconds !== undefined && { properties: { messageExpiryInterval: expirySeconds } }),
              }),
          }),
          () => tunnel.off('message', onTunnelled),
        );
      }
      bridge.start();
    }
    const { coordination } = mesh;
    const apps = this.#apps;
    const watches = this.#watches;
    if (coordination !== undefined && apps !== undefined && watches !== undefined) {
      const onReading = (reading: SensorReadingEvent): void => this.#publishReading(reading);
      coordination.on('reading', onReading);
      this.#unsubscribe.push(
        () => coordination.off('reading', onReading),
        this.#broker.onClientGone((clientId) => apps.clientGone(clientId)),
        this.#broker.onHolds((_clientId, _session, held) => watches.held(held.map(({ filter }) => filter))),
        () => watches.stop(),
      );
      for (const reading of coordination.latest()) this.#publishReading(reading);
      this.#homeAssistant?.start();
    }
    this.#checkChanges();
    this.#peersTimer = setInterval(() => this.#checkChanges(), PEERS_CHECK_MS);
    this.#peersTimer.unref();
    return this.#address;
  }

  async stop(): Promise<void> {
    clearInterval(this.#peersTimer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#apps?.stop();
    this.#homeAssistant?.stop(); // before the bridge drains: Home Assistant hears "offline" at once
    await this.#options.bridge?.stop();
    await this.#broker.close();
  }

  /** Call when the peer table may have changed (a link came or went): republishes it if it did. */
  peersChanged(): void {
    this.#checkChanges();
  }

  status(): MqttGatewayStatus {
    const address = this.#address;
    const bridge = this.#options.bridge?.state();
    return {
      listen: address === undefined ? '' : `${address.address}:${address.port}`,
      ...this.#broker.stats(),
      sensor_watches: this.#watches?.size ?? 0,
      upstream:
        bridge === undefined ? null : { url: bridge.url, connected: bridge.connected, queued: bridge.queued },
    };
  }

  /** A publish from a local app (or a client's last will); the reason code of a send that was refused. */
  #fromApp(topic: string, payload: Buffer, meta: PublishMeta): PublishRefusal | undefined {
    const target = parseSendTopic(topic);
    const forwarded = this.#toUpstream(
      {
        topic,
        payload,
        qos: meta.qos === 0 ? 0 : 1,
        retain: meta.retain,
        ...bridgedProperties(meta.properties),
      },
      target,
    );
    if (target === undefined) {
      if (this.#homeAssistant?.handle(topic, payload) !== true) this.#coordinationTopic(topic, payload, meta);
      return;
    }
    if (target === 'invalid') {
      this.#options.counters.increment('mqtt.send_invalid_topic');
      return;
    }
    this.#options.counters.increment('mqtt.sends');
    const reply = (outcome: SendOutcome): void => this.#reply(meta, outcome);
    if (target.kind !== 'peer') {
      reply(this.#multicast(target, payload));
      return;
    }
    if (this.#isSelf(target.reference)) {
      const self = this.#options.mesh.id();
      this.#publishLocal(inboxTopic(self.id), payload, {
        qos: 1,
        properties: { userProperties: { from_name: self.name, hops: '0' } },
      });
      reply({ ok: true, peer: self.id });
      return;
    }
    // A peer the mesh does not reach went upstream instead; the bridge takes it from here.
    if (forwarded) {
      reply({ ok: true, via: 'upstream' });
      return;
    }
    // Stored in the durable queue before the PUBACK goes: from here on it is delivered once, even across
    // restarts of either agent; a refusal (unknown peer, full queue) goes back in the PUBACK (MQTT 5).
    try {
      const queued = this.#options.mesh.enqueue(target.reference, [payload]);
      reply({ ok: true, peer: queued.peer, seq: queued.seq ?? undefined, queued: true });
      return undefined;
    } catch (error) {
      this.#options.counters.increment('mqtt.sends_failed');
      this.#options.log.debug(
        { err: error, target: target.reference, client: meta.clientId },
        'mqtt: a send from an app was not queued',
      );
      reply(failure(error));
      return refusalOf(error);
    }
  }

  /** Calls from apps, and the sensors and actions apps provide; other topics are only the broker's. */
  #coordinationTopic(topic: string, payload: Buffer, meta: PublishMeta): void {
    const calls = this.#calls;
    const apps = this.#apps;
    if (calls === undefined || apps === undefined) return;
    const call = parseCallTopic(topic);
    if (call !== undefined) {
      calls.handle(call, payload, meta);
      return;
    }
    const read = parseReadTopic(topic);
    if (read !== undefined) {
      calls.read(read, payload, meta);
      return;
    }
    const provided = parseProvideTopic(topic);
    if (provided !== undefined) {
      this.#reply(
        meta,
        provided === 'invalid'
          ? {
              ok: false,
              error: {
                code: 'invalid-topic',
                message: 'expected nearmesh/provide/sensor/<name> or nearmesh/provide/action/<name>',
              },
            }
          : apps.provide(provided, payload, meta),
      );
      return;
    }
    const answer = parseInvokeAnswerTopic(topic);
    if (answer !== undefined) apps.answer(answer, payload, meta);
  }

  /** The latest value of a sensor, retained on `nearmesh/sensor/<peer>/<sensor>`. */
  #publishReading(reading: SensorReadingEvent): void {
    const payload = {
      value: reading.value,
      unit: reading.unit,
      read_at: new Date(reading.readAtMs).toISOString(),
      peer_name: reading.name,
    };
    this.#publishSafely(sensorTopic(reading.peer, reading.sensor), Buffer.from(JSON.stringify(payload)), {
      qos: 1,
      retain: true,
    });
  }

  /** #publishLocal for topics built from names the mesh told us: one that is not a topic is counted, not thrown. */
  #publishSafely(
    topic: string,
    payload: Buffer,
    options: { qos: 0 | 1; retain?: boolean; properties?: PublishProperties },
  ): void {
    try {
      this.#publishLocal(topic, payload, options);
    } catch {
      this.#options.counters.increment('mqtt.invalid_topic_dropped');
    }
  }

  #multicast(target: Exclude<SendTarget, { kind: 'peer' }>, payload: Buffer): SendOutcome {
    try {
      this.#options.mesh.multicast(target.kind === 'group' ? target.name : undefined, payload);
      return { ok: true };
    } catch (error) {
      this.#options.counters.increment('mqtt.sends_failed');
      this.#options.log.debug({ err: error }, 'mqtt: a multicast from an app was not sent');
      return failure(error);
    }
  }

  /** MQTT 5 request/response: the outcome of a send goes to the publisher's response topic, if it gave one. */
  #reply(meta: PublishMeta, outcome: SendOutcome): void {
    const responseTopic = meta.properties?.responseTopic;
    if (responseTopic === undefined || meta.will) return;
    const correlationData = meta.properties?.correlationData;
    try {
      this.#broker.publish(responseTopic, JSON.stringify(outcome), {
        qos: 1,
        properties: {
          contentType: 'application/json',
          ...(correlationData !== undefined && { correlationData }),
        },
      });
    } catch {
      // An invalid response topic (a wildcard) is the app's mistake: counted, never thrown at the mesh.
      this.#options.counters.increment('mqtt.replies_invalid_topic');
    }
  }

  /**
   * A message from the mesh: into the inbox topic of its sender. A reliable one skips the inbox's MQTT
   * consumers, which get it from the inbox itself.
   */
  #fromMesh(message: AppMessage): void {
    const consumers = this.#inboxConsumers;
    this.#publishLocal(inboxTopic(message.from), Buffer.from(message.payload), {
      qos: 1,
      properties: inboxProperties(message),
      ...(message.inboxId !== undefined && { skip: (clientId: string) => consumers.isConsumer(clientId) }),
    });
  }

  /** A message the bridge brought in from the upstream broker. */
  #fromUpstream(message: BridgedMessage): void {
    const { counters } = this.#options;
    // Sealed frames of the site tunnel are the tunnel's alone: never published here.
    if (isTunnelTopic(message.topic)) {
      const tunnel = this.#options.mesh.tunnel;
      if (tunnel !== undefined && message.topic === tunnelTopic(this.#options.mesh.id().id))
        tunnel.receive(message.payload);
      else counters.increment('mqtt.upstream.tunnel_not_for_us');
      return;
    }
    const target = parseSendTopic(message.topic);
    if (target === undefined) {
      this.#homeAssistant?.handle(message.topic, message.payload);
      // Published here only: what came from upstream never goes back out.
      this.#broker.publish(message.topic, message.payload, {
        qos: message.qos,
        retain: message.retain,
        ...(message.properties !== undefined && { properties: toPublishProperties(message.properties) }),
      });
      return;
    }
    if (target === 'invalid' || !this.#isAddressedToSelf(target)) {
      counters.increment('mqtt.upstream.sends_not_for_us');
      return;
    }
    // The origin is the upstream's word: only a peer id may become an inbox topic level.
    const from = message.origin !== undefined && isPeerId(message.origin) ? message.origin : UPSTREAM_SENDER;
    // An agent this mesh reaches sent its group or broadcast message over the mesh as well.
    if (message.origin !== undefined && target.kind !== 'peer' && this.#reaches(message.origin)) {
      counters.increment('mqtt.upstream.sends_also_meshed');
      return;
    }
    const to = target.kind === 'all' ? '*' : target.kind === 'group' ? target.name : undefined;
    this.#deliverFromUpstream(from, message.payload, to);
  }

  /** An app message from another site's agent, its sender proven by the tunnel: into its inbox topic. */
  #fromTunnel(message: TunnelAppMessage): void {
    this.#deliverFromUpstream(message.from, Buffer.from(message.payload), undefined);
  }

  /** A message that came through the upstream broker, into `from`'s inbox topic (`to`: its group or `*`). */
  #deliverFromUpstream(from: string, payload: Buffer, to: string | undefined): void {
    this.#options.counters.increment('mqtt.upstream.sends_delivered');
    this.#broker.publish(inboxTopic(from), payload, {
      qos: 1,
      properties: { userProperties: { via: 'upstream', ...(to !== undefined && { to }) } },
    });
  }

  /** Publishes to local subscribers and, when it matches the bridge's `out` filters, upstream. */
  #publishLocal(topic: string, payload: Buffer, options: AgentPublishOptions & { qos: 0 | 1 }): void {
    this.#broker.publish(topic, payload, options);
    this.#toUpstream(
      {
        topic,
        payload,
        qos: options.qos,
        retain: options.retain ?? false,
        ...bridgedProperties(options.properties),
      },
      undefined,
    );
  }

  /**
   * Hands a local message to the bridge when its filters want it; true when it went. A send to a peer this
   * mesh reaches stays on the mesh (the peer would otherwise get it twice).
   */
  #toUpstream(message: BridgedMessage, target: SendTarget | 'invalid' | undefined): boolean {
    const bridge = this.#options.bridge;
    if (bridge === undefined || !bridge.matchesOut(message.topic)) return false;
    if (target === 'invalid') return false;
    if (target?.kind === 'peer' && (this.#isSelf(target.reference) || this.#reaches(target.reference))) {
      return false;
    }
    // To one agent by peer id: sealed through the site tunnel, so the sender is proven and a copy the broker
    // delivers twice arrives once. Names, groups and `all` go as they are (other sites' names are unknown here).
    const tunnel = this.#options.mesh.tunnel;
    if (target?.kind === 'peer' && tunnel !== undefined && isPeerId(target.reference)) {
      try {
        tunnel.send(target.reference, message.payload, { system: false });
        return true;
      } catch {
        this.#options.counters.increment('mqtt.upstream.tunnel_refused');
        return false;
      }
    }
    return bridge.forward(message);
  }

  /** What changes without an event (routed agents, announced capabilities): the peer table, Home Assistant. */
  #checkChanges(): void {
    const ha = this.#homeAssistant;
    if (ha !== undefined) {
      ha.refresh();
      this.#watches?.held(ha.sensorTopics());
    }
    this.#publishPeersIfChanged();
  }

  #publishPeersIfChanged(): void {
    const rows = this.#options.mesh.peers().map(stablePeerRow);
    const json = JSON.stringify(rows);
    if (json === this.#peersJson) return;
    this.#peersJson = json;
    this.#publishLocal(PEERS_TOPIC, Buffer.from(json), { qos: 1, retain: true });
  }

  #isSelf(reference: string): boolean {
    const self = this.#options.mesh.id();
    return reference === self.id || reference === self.name;
  }

  #isAddressedToSelf(target: SendTarget): boolean {
    switch (target.kind) {
      case 'all':
        return true;
      case 'group':
        return this.#options.mesh.groups.includes(target.name);
      case 'peer':
        return this.#isSelf(target.reference);
    }
  }

  /** True when the mesh has a live path to this peer (id or name). */
  #reaches(reference: string): boolean {
    return this.#options.mesh
      .peers()
      .some((peer) => (peer.id === reference || peer.name === reference) && peer.state !== 'disconnected');
  }
}

/** The peer table as apps see it: what identifies a peer and how it is reached, without fast-changing figures. */
function stablePeerRow(peer: PeerInfo) {
  return {
    id: peer.id,
    name: peer.name,
    state: peer.state,
    medium: peer.medium,
    hops: peer.hops,
    next_hop: peer.next_hop,
    connected_since: peer.connected_since,
  };
}

/** The MQTT 5 properties worth carrying across a bridge (response topics and aliases are local matters). */
function bridgedProperties(properties: PublishProperties | undefined): Pick<BridgedMessage, 'properties'> {
  if (properties === undefined) return {};
  const carried: NonNullable<BridgedMessage['properties']> = {
    ...(properties.contentType !== undefined && { contentType: properties.contentType }),
    ...(properties.userProperties !== undefined && { userProperties: properties.userProperties }),
  };
  return Object.keys(carried).length === 0 ? {} : { properties: carried };
}

function toPublishProperties(properties: NonNullable<BridgedMessage['properties']>): PublishProperties {
  return {
    ...(properties.contentType !== undefined && { contentType: properties.contentType }),
    ...(properties.userProperties !== undefined && { userProperties: properties.userProperties }),
  };
}
