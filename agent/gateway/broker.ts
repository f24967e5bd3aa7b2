// A small MQTT broker (3.1.1 and 5.0) for local apps: the core of the agent's MQTT gateway.
//
// Scope and deliberate choices:
// - Sessions, queued messages and retained messages live in memory only.
// - QoS: inbound QoS 2 is accepted with the full PUBREC/PUBREL/PUBCOMP exchange (exactly once into the
//   broker, for 3.1.1 and 5.0 alike); everything the broker sends is at most QoS 1, and a QoS 2
//   subscription is granted QoS 1 (allowed by both specs: the server may grant a lower QoS).
// - MQTT 5: no topic aliases (topicAliasMaximum 0), no shared subscriptions, no subscription ids,
//   no enhanced authentication, no will delay; message expiry is forwarded, not enforced.
// - Hostile input (malformed or oversize packets, protocol errors, silence) closes that client only,
//   and is counted, never logged per packet.

import { isUtf8 } from 'node:buffer';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import mqttPacket, {
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type Packet,
} from 'mqtt-packet';
import { NearmeshError } from '../errors.js';
import { Counters } from '../ops/counters.js';
import type { Logger } from '../ops/logger.js';
import { connectProtocolLevel, FrameReader, rawPublishTopic } from './frame-reader.js';
import { RetainedStore } from './retained-store.js';
import {
  type BrokerMessage,
  type PublishProperties,
  type Session,
  SessionStore,
  type SubscriptionOptions,
} from './session-store.js';
import { isValidTopicFilter, isValidTopicName, topicMatches } from './topic-match.js';

export type { PublishProperties } from './session-store.js';

export class MqttGatewayError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('mqtt-gateway', message, options);
  }
}

export type MqttAuthenticator = (
  username: string | undefined,
  password: Buffer | undefined,
  clientId: string,
) => boolean;

export interface MqttBrokerOptions {
  /** Required credentials, or a check; without it every client is accepted. */
  auth?: { username: string; password: string } | MqttAuthenticator;
  /** Largest packet accepted from a client, in bytes (told to MQTT 5 clients). Default 256 KiB. */
  maxPacketSize?: number;
  /** QoS 1 messages kept per session while offline or beyond the in-flight window. Default 1000. */
  maxQueuedMessages?: number;
  /** QoS 1 messages sent to one client and not yet acknowledged. Default 100. */
  maxInflight?: number;
  /** Sessions (connected or persistent) held at once. Default 10 000. */
  maxSessions?: number;
  maxRetainedMessages?: number;
  maxRetainedBytes?: number;
  /** How long a new connection may take to send CONNECT. Default 10 s. */
  connectTimeoutMs?: number;
  counters?: Counters;
  log?: Logger;
}

export interface PublishMeta {
  clientId: string;
  username: string | undefined;
  protocolVersion: 4 | 5;
  /** The QoS the client published with (0, 1 or 2). */
  qos: 0 | 1 | 2;
  retain: boolean;
  /** True when this is a client's last will, published by the broker after an abnormal disconnect. */
  will: boolean;
  properties?: PublishProperties;
}

export type PublishListener = (topic: string, payload: Buffer, meta: PublishMeta) => void;

export interface AgentPublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
  properties?: PublishProperties;
}

const DEFAULTS = {
  maxPacketSize: 256 * 1024,
  maxQueuedMessages: 1000,
  maxInflight: 100,
  maxSessions: 10_000,
  maxRetainedMessages: 10_000,
  maxRetainedBytes: 64 * 1024 * 1024,
  connectTimeoutMs: 10_000,
};
/** Outbound bytes buffered for one slow client before its QoS 0 messages are dropped. */
const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;
const NEVER_EXPIRES = 0xffff_ffff;

// MQTT 3.1.1 CONNACK return codes and MQTT 5 reason codes used here.
const RC = {
  unacceptableProtocol: 0x01,
  identifierRejected: 0x02,
  serverUnavailable: 0x03,
  badCredentials: 0x04,
} as const;
const REASON = {
  success: 0x00,
  disconnectWithWill: 0x04,
  noSubscriptionExisted: 0x11,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  badCredentials: 0x86,
  serverUnavailable: 0x88,
  badAuthMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdNotFound: 0x92,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  sharedNotSupported: 0x9e,
} as const;

interface Will {
  message: BrokerMessage;
  qos: 0 | 1 | 2;
}

class Connection {
  state: 'awaiting-connect' | 'connected' | 'closed' = 'awaiting-connect';
  version: 4 | 5 = 4;
  clientId = '';
  username: string | undefined;
  session: Session | undefined;
  will: Will | undefined;
  keepAliveMs = 0;
  lastReceived = Date.now();
  sawFirstByte = false;
  readonly acceptedAt = Date.now();
  timer: NodeJS.Timeout | undefined;
  /** MQTT 5: the client's own limits. */
  clientMaxPacketSize: number | undefined;
  receiveMaximum = 65_535;
  readonly parser = mqttPacket.parser();
  readonly reader: FrameReader;

  constructor(
    readonly socket: Socket,
    maxPacketSize: number,
  ) {
    this.reader = new FrameReader(maxPacketSize);
  }
}

export class MqttBroker {
  readonly counters: Counters;
  readonly #options: typeof DEFAULTS & MqttBrokerOptions;
  readonly #sessions = new SessionStore();
  readonly #retained: RetainedStore;
  readonly #connections = new Map<string, Connection>();
  readonly #sockets = new Set<Connection>();
  readonly #listeners = new Set<PublishListener>();
  #server: Server | undefined;

  constructor(options: MqttBrokerOptions = {}) {
    this.#options = { ...DEFAULTS, ...stripUndefined(options) };
    this.counters = options.counters ?? new Counters();
    this.#retained = new RetainedStore(this.#options.maxRetainedMessages, this.#options.maxRetainedBytes);
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    if (this.#server !== undefined) throw new MqttGatewayError('the MQTT broker is already listening');
    const server = createServer((socket) => this.#accept(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      throw new MqttGatewayError(`cannot listen on ${host}:${port}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    server.on('error', (error) => this.#options.log?.warn({ err: error }, 'mqtt gateway server error'));
    this.#server = server;
    return server.address() as AddressInfo;
  }

  /** Stops listening and drops every client; sessions and retained messages are discarded. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const connection of [...this.#sockets]) this.#close(connection, { graceful: true });
    this.#sessions.clear();
    this.#retained.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Calls `listener` for every PUBLISH accepted from a client (and every will published); returns an unsubscribe. */
  onPublish(listener: PublishListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Publishes from the agent side to the matching subscribers (and the retained store). */
  publish(topic: string, payload: Uint8Array | string, options: AgentPublishOptions = {}): void {
    if (!isValidTopicName(topic))
      throw new MqttGatewayError(`invalid MQTT topic name: ${JSON.stringify(topic)}`);
    const message: BrokerMessage = {
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload),
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
      ...(options.properties === undefined ? {} : { properties: options.properties }),
    };
    this.#route(message);
  }

  /** Counts for `status`: connected clients, sessions, retained messages. */
  stats(): { clients: number; sessions: number; retained: number } {
    return { clients: this.#connections.size, sessions: this.#sessions.size, retained: this.#retained.size };
  }

  #accept(socket: Socket): void {
    const connection = new Connection(socket, this.#options.maxPacketSize);
    this.#sockets.add(connection);
    this.counters.increment('mqtt.connections');
    socket.setNoDelay(true);
    connection.parser.on('packet', (packet: Packet) => this.#handle(connection, packet));
    connection.parser.on('error', () => this.#malformed(connection));
    socket.on('data', (chunk: Buffer) => this.#onData(connection, chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#close(connection, { graceful: false }));
    this.#armTimer(connection, this.#options.connectTimeoutMs);
  }

  #onData(connection: Connection, chunk: Buffer): void {
    connection.lastReceived = Date.now();
    if (!connection.sawFirstByte && chunk.length > 0) {
      connection.sawFirstByte = true;
      // Not a CONNECT (an HTTP request, TLS, noise): refuse now instead of waiting for a length it claims.
      if (chunk[0] !== 0x10) {
        this.#malformed(connection);
        return;
      }
    }
    const { frames, error } = connection.reader.push(chunk);
    for (const frame of frames) {
      if (connection.state === 'closed') return;
      if (connection.state === 'awaiting-connect') {
        const level = connectProtocolLevel(frame);
        if (level !== undefined && level !== 4 && level !== 5) {
          // Any other level (3.1, or a future one): the 3.1.1 form of CONNACK, which every version reads.
          this.counters.increment('mqtt.unsupported_protocol');
          this.#closeWith(connection, Buffer.from([0x20, 0x02, 0x00, RC.unacceptableProtocol]));
          return;
        }
      }
      if (((frame[0] as number) & 0xf0) === 0x30 && connection.state === 'connected') {
        const topic = rawPublishTopic(frame);
        if (topic === undefined || !isUtf8(topic)) {
          this.#malformed(connection);
          return;
        }
      }
      connection.parser.parse(frame);
    }
    if (error === 'oversize' && connection.state !== 'closed') {
      this.counters.increment('mqtt.oversize');
      this.#disconnect(connection, REASON.packetTooLarge);
    } else if (error === 'malformed') {
      this.#malformed(connection);
    }
  }

  #malformed(connection: Connection): void {
    if (connection.state === 'closed') return;
    this.counters.increment('mqtt.malformed');
    this.#disconnect(connection, REASON.malformed);
  }

  #protocolError(connection: Connection, reason: number = REASON.protocolError): void {
    if (connection.state === 'closed') return;
    this.counters.increment('mqtt.protocol_errors');
    this.#disconnect(connection, reason);
  }

  #handle(connection: Connection, packet: Packet): void {
    if (connection.state === 'closed') return;
    if (connection.state === 'awaiting-connect') {
      if (packet.cmd !== 'connect') {
        this.#protocolError(connection);
        return;
      }
      this.#onConnect(connection, packet);
      return;
    }
    switch (packet.cmd) {
      case 'publish': {
        this.#onPublish(connection, packet);
        return;
      }
      case 'puback': {
        this.#onPuback(connection, packet.messageId);
        return;
      }
      case 'pubrel': {
        const id = packet.messageId ?? 0;
        const known = connection.session?.inboundQos2.delete(id) ?? false;
        this.#send(connection, {
          cmd: 'pubcomp',
          messageId: id,
          ...(connection.version === 5 && !known ? { reasonCode: REASON.packetIdNotFound } : {}),
        });
        return;
      }
      case 'subscribe': {
        this.#onSubscribe(connection, packet);
        return;
      }
      case 'unsubscribe': {
        this.#onUnsubscribe(connection, packet.messageId ?? 0, packet.unsubscriptions);
        return;
      }
      case 'pingreq':
        this.#send(connection, { cmd: 'pingresp' });
        return;
      case 'disconnect': {
        const withWill = connection.version === 5 && packet.reasonCode === REASON.disconnectWithWill;
        const expiry = packet.properties?.sessionExpiryInterval;
        const session = connection.session;
        if (connection.version === 5 && expiry !== undefined && session !== undefined) {
          session.expirySeconds = expiry;
          session.persistent = expiry > 0;
        }
        this.#close(connection, { graceful: !withWill });
        return;
      }
      case 'pubrec':
      case 'pubcomp':
        return; // the broker never sends QoS 2
      default: {
        // A second CONNECT, AUTH (no enhanced authentication), or a server-to-client packet.
        this.#protocolError(connection);
        return;
      }
    }
  }

  #onConnect(connection: Connection, packet: IConnectPacket): void {
    const version = packet.protocolVersion === 5 ? 5 : 4;
    connection.version = version;
    const refuse = (rc4: number, reason5: number): void => {
      this.counters.increment('mqtt.connects_refused');
      const connack: Packet =
        version === 5
          ? { cmd: 'connack', sessionPresent: false, reasonCode: reason5 }
          : { cmd: 'connack', sessionPresent: false, returnCode: rc4 };
      this.#closeWith(connection, mqttPacket.generate(connack, { protocolVersion: version }));
    };
    if (packet.protocolVersion !== 4 && packet.protocolVersion !== 5) {
      this.counters.increment('mqtt.unsupported_protocol');
      refuse(RC.unacceptableProtocol, 0x84);
      return;
    }
    if (version === 5 && packet.properties?.authenticationMethod !== undefined) {
      refuse(RC.badCredentials, REASON.badAuthMethod);
      return;
    }
    let clientId = packet.clientId ?? '';
    let assigned = false;
    if (clientId === '') {
      if (version === 4 && !packet.clean) {
        refuse(RC.identifierRejected, REASON.unspecified);
        return;
      }
      clientId = `nearmesh-${randomBytes(8).toString('hex')}`;
      assigned = true;
    }
    if (!this.#authenticate(packet.username, packet.password, clientId)) {
      this.counters.increment('mqtt.auth_failed');
      refuse(RC.badCredentials, REASON.badCredentials);
      return;
    }
    let will: Will | undefined;
    if (packet.will) {
      if (!isValidTopicName(packet.will.topic)) {
        refuse(RC.identifierRejected, REASON.topicNameInvalid);
        return;
      }
      const willQos = packet.will.qos ?? 0;
      will = {
        qos: willQos,
        message: {
          topic: packet.will.topic,
          payload: Buffer.from(packet.will.payload),
          qos: willQos === 0 ? 0 : 1,
          retain: packet.will.retain === true,
          origin: clientId,
          ...(version === 5 && packet.will.properties
            ? { properties: forwardableProperties(packet.will.properties as PublishProperties) }
            : {}),
        },
      };
    }

    // Session takeover: the older connection with this client id goes (its will is published).
    const previous = this.#connections.get(clientId);
    if (previous !== undefined) {
      this.counters.increment('mqtt.takeovers');
      this.#disconnect(previous, REASON.sessionTakenOver);
    }
    let session = packet.clean ? undefined : this.#sessions.get(clientId);
    const sessionPresent = session !== undefined;
    if (session === undefined) {
      if (this.#sessions.get(clientId) === undefined && !this.#makeRoomForSession()) {
        refuse(RC.serverUnavailable, REASON.serverUnavailable);
        return;
      }
      session = this.#sessions.create(clientId);
    }
    clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
    if (version === 5) {
      session.expirySeconds = packet.properties?.sessionExpiryInterval ?? 0;
      session.persistent = session.expirySeconds > 0;
      connection.clientMaxPacketSize = packet.properties?.maximumPacketSize;
      connection.receiveMaximum = packet.properties?.receiveMaximum ?? 65_535;
    } else {
      session.expirySeconds = undefined;
      session.persistent = !packet.clean;
    }

    connection.state = 'connected';
    connection.clientId = clientId;
    connection.username = packet.username;
    connection.session = session;
    connection.will = will;
    connection.keepAliveMs = (packet.keepalive ?? 0) * 1000;
    this.#connections.set(clientId, connection);
    this.#armTimer(connection, connection.keepAliveMs * 1.5);

    if (version === 5) {
      this.#send(connection, {
        cmd: 'connack',
        sessionPresent,
        reasonCode: REASON.success,
        properties: {
          maximumPacketSize: this.#options.maxPacketSize,
          retainAvailable: true,
          wildcardSubscriptionAvailable: true,
          subscriptionIdentifiersAvailable: false,
          sharedSubscriptionAvailable: false,
          ...(assigned ? { assignedClientIdentifier: clientId } : {}),
        },
      });
    } else {
      this.#send(connection, { cmd: 'connack', sessionPresent, returnCode: 0 });
    }
    // Resume the session: unacknowledged messages again (DUP set), then the queue.
    for (const [messageId, message] of session.inflight)
      this.#sendPublish(connection, message, messageId, true);
    this.#drainQueue(connection);
  }

  #authenticate(username: string | undefined, password: Buffer | undefined, clientId: string): boolean {
    const auth = this.#options.auth;
    if (auth === undefined) return true;
    if (typeof auth === 'function') {
      try {
        return auth(username, password, clientId);
      } catch {
        return false;
      }
    }
    if (username === undefined || password === undefined) return false;
    return (
      safeEqual(Buffer.from(username), Buffer.from(auth.username)) &&
      safeEqual(password, Buffer.from(auth.password))
    );
  }

  /** True when a new session fits, evicting the oldest offline one if needed. */
  #makeRoomForSession(): boolean {
    if (this.#sessions.size < this.#options.maxSessions) return true;
    for (const session of this.#sessions.values()) {
      if (!this.#connections.has(session.clientId)) {
        this.#sessions.delete(session.clientId);
        this.counters.increment('mqtt.sessions_evicted');
        return true;
      }
    }
    return false;
  }

  #onPublish(connection: Connection, packet: IPublishPacket): void {
    const properties = packet.properties;
    if (properties?.topicAlias !== undefined) {
      this.#protocolError(connection, REASON.topicAliasInvalid);
      return;
    }
    if (!isValidTopicName(packet.topic)) {
      this.#protocolError(connection, REASON.topicNameInvalid);
      return;
    }
    const session = connection.session as Session;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const messageId = packet.messageId ?? 0;
    const fresh = packet.qos !== 2 || !session.inboundQos2.has(messageId);
    if (fresh) {
      this.counters.increment('mqtt.messages_in');
      const message: BrokerMessage = {
        topic: packet.topic,
        payload,
        qos: packet.qos === 0 ? 0 : 1,
        retain: packet.retain,
        origin: connection.clientId,
        ...(connection.version === 5 && properties ? { properties: forwardableProperties(properties) } : {}),
      };
      this.#route(message);
      this.#notify(message, {
        clientId: connection.clientId,
        username: connection.username,
        protocolVersion: connection.version,
        qos: packet.qos,
        retain: packet.retain,
        will: false,
        ...(message.properties ? { properties: message.properties } : {}),
      });
    }
    if (packet.qos === 1) this.#send(connection, { cmd: 'puback', messageId });
    if (packet.qos === 2) {
      session.inboundQos2.add(messageId);
      this.#send(connection, { cmd: 'pubrec', messageId });
    }
  }

  #onPuback(connection: Connection, messageId: number | undefined): void {
    const session = connection.session;
    if (session === undefined || messageId === undefined) return;
    session.inflight.delete(messageId);
    this.#drainQueue(connection);
  }

  #onSubscribe(connection: Connection, packet: ISubscribePacket): void {
    const session = connection.session as Session;
    const granted: number[] = [];
    const retainedToSend: Array<{ message: BrokerMessage; qos: 0 | 1 }> = [];
    for (const subscription of packet.subscriptions) {
      const filter = subscription.topic;
      if (connection.version === 5 && filter.startsWith('$share/')) {
        granted.push(REASON.sharedNotSupported);
        continue;
      }
      if (!isValidTopicFilter(filter)) {
        granted.push(connection.version === 5 ? REASON.topicFilterInvalid : 0x80);
        continue;
      }
      const qos: 0 | 1 = subscription.qos === 0 ? 0 : 1;
      const existed = session.subscriptions.has(filter);
      session.subscriptions.set(filter, {
        qos,
        noLocal: connection.version === 5 && subscription.nl === true,
        retainAsPublished: connection.version === 5 && subscription.rap === true,
      });
      granted.push(qos);
      const retainHandling = connection.version === 5 ? (subscription.rh ?? 0) : 0;
      if (retainHandling === 0 || (retainHandling === 1 && !existed)) {
        for (const message of this.#retained.match(filter)) retainedToSend.push({ message, qos });
      }
    }
    this.#send(connection, { cmd: 'suback', messageId: packet.messageId ?? 0, granted });
    for (const { message, qos } of retainedToSend) {
      this.#deliver(session, { ...message, qos: Math.min(message.qos, qos) as 0 | 1, retain: true });
    }
  }

  #onUnsubscribe(connection: Connection, messageId: number, filters: string[]): void {
    const session = connection.session as Session;
    const codes = filters.map((filter) =>
      session.subscriptions.delete(filter) ? REASON.success : REASON.noSubscriptionExisted,
    );
    this.#send(connection, {
      cmd: 'unsuback',
      messageId,
      ...(connection.version === 5 ? { granted: codes } : {}),
    } as Packet);
  }

  /** Stores a retained message and hands a message to every session with a matching subscription. */
  #route(message: BrokerMessage): void {
    if (message.retain && !this.#retained.set(message)) this.counters.increment('mqtt.retained_dropped');
    for (const session of this.#sessions.values()) {
      let best: SubscriptionOptions | undefined;
      let keepRetain = false;
      for (const [filter, options] of session.subscriptions) {
        if (options.noLocal && message.origin === session.clientId) continue;
        if (!topicMatches(filter, message.topic)) continue;
        if (best === undefined || options.qos > best.qos) best = options;
        keepRetain ||= options.retainAsPublished;
      }
      if (best === undefined) continue;
      this.#deliver(session, {
        ...message,
        qos: Math.min(message.qos, best.qos) as 0 | 1,
        retain: message.retain && keepRetain,
      });
    }
  }

  #deliver(session: Session, message: BrokerMessage): void {
    const connection = this.#connections.get(session.clientId);
    if (connection === undefined || connection.session !== session) {
      if (message.qos === 1 && session.persistent) this.#enqueue(session, message);
      else this.counters.increment('mqtt.offline_dropped');
      return;
    }
    if (message.qos === 0) {
      if (connection.socket.writableLength > MAX_WRITE_BACKLOG) {
        this.counters.increment('mqtt.backpressure_dropped');
        return;
      }
      this.#sendPublish(connection, message, undefined, false);
      return;
    }
    if (session.inflight.size >= this.#window(connection) || session.queue.length > 0) {
      this.#enqueue(session, message);
      this.#drainQueue(connection);
      return;
    }
    this.#sendQos1(connection, session, message);
  }

  #enqueue(session: Session, message: BrokerMessage): void {
    const dropped = session.enqueue(message, this.#options.maxQueuedMessages);
    if (dropped > 0) this.counters.increment('mqtt.queue_dropped', dropped);
  }

  #window(connection: Connection): number {
    return Math.min(this.#options.maxInflight, connection.receiveMaximum);
  }

  #drainQueue(connection: Connection): void {
    const session = connection.session;
    if (session === undefined || connection.state !== 'connected') return;
    while (session.queue.length > 0 && session.inflight.size < this.#window(connection)) {
      this.#sendQos1(connection, session, session.queue.shift() as BrokerMessage);
    }
  }

  #sendQos1(connection: Connection, session: Session, message: BrokerMessage): void {
    const messageId = session.allocatePacketId();
    if (messageId === undefined) {
      this.#enqueue(session, message);
      return;
    }
    session.inflight.set(messageId, message);
    this.#sendPublish(connection, message, messageId, false);
  }

  #sendPublish(
    connection: Connection,
    message: BrokerMessage,
    messageId: number | undefined,
    dup: boolean,
  ): void {
    this.counters.increment('mqtt.messages_out');
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      dup,
      ...(messageId === undefined ? {} : { messageId }),
      ...(connection.version === 5 && message.properties ? { properties: message.properties } : {}),
    };
    if (!this.#send(connection, packet) && messageId !== undefined) {
      // Too large for this client: it can never be delivered, so it must not stay in flight.
      connection.session?.inflight.delete(messageId);
    }
  }

  #notify(message: BrokerMessage, meta: PublishMeta): void {
    for (const listener of this.#listeners) {
      try {
        listener(message.topic, message.payload, meta);
      } catch (error) {
        this.counters.increment('mqtt.listener_errors');
        this.#options.log?.warn({ err: error }, 'mqtt gateway publish listener failed');
      }
    }
  }

  #send(connection: Connection, packet: Packet): boolean {
    if (connection.state === 'closed' || connection.socket.destroyed) return false;
    let bytes: Buffer;
    try {
      bytes = mqttPacket.generate(packet, { protocolVersion: connection.version });
    } catch {
      this.counters.increment('mqtt.encode_errors');
      return false;
    }
    if (connection.clientMaxPacketSize !== undefined && bytes.length > connection.clientMaxPacketSize) {
      this.counters.increment('mqtt.outbound_too_large');
      return false;
    }
    connection.socket.write(bytes);
    return true;
  }

  /** Closes a client after an error: MQTT 5 clients past CONNECT are told why with a DISCONNECT. */
  #disconnect(connection: Connection, reason: number): void {
    if (connection.state === 'closed') return;
    if (connection.state === 'connected' && connection.version === 5) {
      this.#closeWith(
        connection,
        mqttPacket.generate({ cmd: 'disconnect', reasonCode: reason }, { protocolVersion: 5 }),
      );
    } else {
      this.#close(connection, { graceful: false });
    }
  }

  /** Writes a last packet, then closes. */
  #closeWith(connection: Connection, bytes: Buffer): void {
    if (!connection.socket.destroyed) connection.socket.end(bytes);
    this.#close(connection, { graceful: false });
  }

  #close(connection: Connection, { graceful }: { graceful: boolean }): void {
    if (connection.state === 'closed') return;
    const wasConnected = connection.state === 'connected';
    connection.state = 'closed';
    clearTimeout(connection.timer);
    this.#sockets.delete(connection);
    const socket = connection.socket;
    if (socket.writableEnded) setTimeout(() => socket.destroy(), 1000).unref();
    else socket.destroy();
    if (!wasConnected) return;
    if (this.#connections.get(connection.clientId) === connection)
      this.#connections.delete(connection.clientId);
    const will = connection.will;
    if (!graceful && will !== undefined && this.#server !== undefined) {
      this.counters.increment('mqtt.wills_published');
      this.#route(will.message);
      this.#notify(will.message, {
        clientId: connection.clientId,
        username: connection.username,
        protocolVersion: connection.version,
        qos: will.qos,
        retain: will.message.retain,
        will: true,
        ...(will.message.properties ? { properties: will.message.properties } : {}),
      });
    }
    const session = connection.session;
    if (session === undefined || this.#sessions.get(session.clientId) !== session) return;
    if (this.#connections.has(session.clientId)) return; // taken over: the new connection owns it now
    if (!session.persistent) {
      this.#sessions.delete(session.clientId);
    } else if (session.expirySeconds !== undefined && session.expirySeconds !== NEVER_EXPIRES) {
      session.expiryTimer = setTimeout(
        () => this.#sessions.delete(session.clientId),
        session.expirySeconds * 1000,
      );
      session.expiryTimer.unref();
    }
  }

  /** Closes the connection after `ms` without receiving anything (0: never). */
  #armTimer(connection: Connection, ms: number): void {
    clearTimeout(connection.timer);
    connection.timer = undefined;
    if (ms <= 0) return;
    const check = (): void => {
      if (connection.state === 'closed') return;
      // Before CONNECT the clock runs from accept, so trickled bytes cannot hold a connection open.
      const since = connection.state === 'connected' ? connection.lastReceived : connection.acceptedAt;
      const silent = Date.now() - since;
      if (silent >= ms) {
        this.counters.increment(
          connection.state === 'connected' ? 'mqtt.keepalive_timeouts' : 'mqtt.connect_timeouts',
        );
        this.#disconnect(connection, REASON.keepAliveTimeout);
        return;
      }
      connection.timer = setTimeout(check, ms - silent);
    };
    connection.timer = setTimeout(check, ms);
  }
}

/** The properties a broker forwards: not the topic alias nor subscription identifiers. */
function forwardableProperties(properties: PublishProperties): PublishProperties {
  const { topicAlias: _alias, subscriptionIdentifier: _ids, ...rest } = properties;
  return rest;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
