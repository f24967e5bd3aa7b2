// One client socket: frame reading, the CONNECT handshake, keep-alive, packet dispatch and the will.
// Hostile input (malformed or oversize packets, protocol errors, silence, a packet never finished)
// closes this client only.

import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import mqttPacket, {
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type Packet,
} from 'mqtt-packet';
import type { Counters } from '../core/counters.js';
import { isValidTopicFilter, isValidTopicName, topicLevels } from '../core/topic-match.js';
import type { TurnBudget } from '../core/turn-budget.js';
import type { MqttClientIdentity, TopicAccess } from './access-control.js';
import { authenticate, type MqttAuth } from './auth.js';
import type { ByteBudget } from './byte-budget.js';
import type { Delivery } from './delivery.js';
import { connectProtocolLevel, FrameReader, rawPublishTopic } from './frame-reader.js';
import { RC, REASON, REASON_TEXT } from './reason-codes.js';
import type { BrokerMessage, PublishProperties, Session, Subscription } from './session-store.js';

/** Unfinished bytes per connection that do not count against the broker's total (see #holdUnfinished). */
const FREE_UNFINISHED_BYTES = 64 * 1024;

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

/** A listener could not take a message (a send the durable queue refused): the PUBACK's MQTT 5 reason. */
export interface PublishRefusal {
  readonly refusedWith: number;
  /** Why, for the PUBACK's Reason String; the reason code's own text when absent. */
  readonly reason?: string;
}

export interface ConnectionSettings {
  auth?: MqttAuth;
  /** Who may publish, subscribe to and receive which topics; without it, everyone everything. */
  access?: TopicAccess;
  /** Largest packet accepted from the client, in bytes (told to MQTT 5 clients). */
  maxPacketSize: number;
  /** How long the client may take to send CONNECT. */
  connectTimeoutMs: number;
  /** How long one packet may take from its first byte to its last. */
  packetTimeoutMs: number;
  /** Longest keep alive an MQTT 5 client gets (a Server Keep Alive cuts a longer one to it). */
  maxKeepAliveMs: number;
  /**
   * QoS 2 messages a client may have unreleased (PUBREC sent, no PUBREL yet): the Receive Maximum told to
   * MQTT 5 clients; past it the client is disconnected.
   */
  maxInflight: number;
  /** Levels a topic name or filter may have; deeper ones are refused as invalid. */
  maxTopicLevels: number;
}

/** What a connection needs of the broker that accepted it. */
export interface ConnectionHost {
  readonly counters: Counters;
  readonly delivery: Delivery;
  /** Bytes of unfinished packets held, over all connections. */
  readonly unfinishedBytes: ByteBudget;
  /** Work for clients per event-loop turn, shared by all connections. */
  readonly turn: TurnBudget;
  /**
   * Takes over `clientId` (its older connection goes) and returns its session (a fresh one when it was
   * another user's); undefined when no room.
   */
  claimSession(
    clientId: string,
    clean: boolean,
    username: string | undefined,
  ): { session: Session; present: boolean } | undefined;
  /** The connection completed CONNECT under its client id. */
  attach(connection: ClientConnection): void;
  /** The connection is closed: the broker forgets it. */
  detach(connection: ClientConnection): void;
  /**
   * The connected client holds these subscriptions (granted): all of its session's when it connects, then
   * each one it adds.
   */
  holds(connection: ClientConnection, subscriptions: readonly Subscription[]): void;
  /** A message published by the client: route it and tell the listeners; a reason code if one refused it. */
  received(message: BrokerMessage, meta: PublishMeta): PublishRefusal | undefined;
  /** The client's last will, after an abnormal disconnect. */
  publishWill(message: BrokerMessage, meta: PublishMeta): void;
  /** The connection no longer holds `session`: drop it, or start its expiry. */
  releaseSession(session: Session): void;
}

interface Will {
  message: BrokerMessage;
  /** MQTT 5 Will Delay Interval, seconds. */
  delaySeconds: number;
}

export class ClientConnection {
  state: 'awaiting-connect' | 'connected' | 'closed' = 'awaiting-connect';
  version: 4 | 5 = 4;
  clientId = '';
  username: string | undefined;
  session: Session | undefined;
  /** MQTT 5: the client's receive maximum. */
  receiveMaximum = 65_535;
  #will: Will | undefined;
  #lastReceived = Date.now();
  #sawFirstByte = false;
  readonly #acceptedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  /** Bytes of an unfinished packet taken from the host's budget, and since when that packet is coming. */
  #unfinishedBytes = 0;
  #unfinishedSince: number | undefined;
  #packetTimer: NodeJS.Timeout | undefined;
  /** Stops reading until a later turn of the broker's budget, then goes on with #work. */
  readonly #waitForTurn: () => void;
  /** What a packet left to do in steps (a SUBSCRIBE's filters and retained messages), before the next packet. */
  #steps: Iterator<void> | undefined;
  /** MQTT 5: the client's own packet size limit. */
  #clientMaxPacketSize: number | undefined;
  /** MQTT 5: topic aliases given to the client for the topics sent to it (up to its Topic Alias Maximum). */
  #topicAliases: Map<string, number> | undefined;
  #topicAliasMaximum = 0;
  /** MQTT 5 Request Problem Information: reason strings only on CONNACK and DISCONNECT when false. */
  #problemInformation = true;
  readonly #parser = mqttPacket.parser();
  readonly #reader: FrameReader;
  readonly #settings: ConnectionSettings;
  readonly #host: ConnectionHost;

  constructor(
    readonly socket: Socket,
    settings: ConnectionSettings,
    host: ConnectionHost,
  ) {
    this.#settings = settings;
    this.#host = host;
    this.#reader = new FrameReader(settings.maxPacketSize);
    this.#waitForTurn = host.turn.pausingWaiter(
      socket,
      () => this.#work(),
      () => this.#isClosed(),
    );
    socket.setNoDelay(true);
    this.#parser.on('packet', (packet: Packet) => this.#handle(packet));
    this.#parser.on('error', () => this.#malformed());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.close({ graceful: false }));
    this.#armTimer(settings.connectTimeoutMs);
  }

  /** Encodes and writes a packet; false when it was not sent (closed, unencodable, too large for the client). */
  send(packet: Packet): boolean {
    const bytes = this.encode(packet);
    return bytes !== undefined && this.sendEncoded(bytes);
  }

  /** False when the client takes topic aliases: its PUBLISH bytes depend on what it was sent before. */
  get sharesEncodings(): boolean {
    return this.#topicAliases === undefined;
  }

  /** A packet's bytes for this client's protocol version; undefined (counted) when it cannot be encoded. */
  encode(packet: Packet): Buffer | undefined {
    try {
      const aliasesBefore = this.#topicAliases?.size;
      const shaped = packet.cmd === 'publish' ? this.#withTopicAlias(packet) : shortAcknowledgement(packet);
      const bytes = mqttPacket.generate(shaped, { protocolVersion: this.version });
      // A new alias goes with a packet too large for the client, which it will never see: take it back.
      const tooLarge = this.#clientMaxPacketSize !== undefined && bytes.length > this.#clientMaxPacketSize;
      if (tooLarge && packet.cmd === 'publish' && this.#topicAliases?.size !== aliasesBefore)
        this.#topicAliases?.delete(packet.topic);
      return bytes;
    } catch {
      this.#host.counters.increment('mqtt.encode_errors');
      return undefined;
    }
  }

  /** Writes an encoded packet; false when it was not sent (closed, too large for the client). */
  sendEncoded(bytes: Buffer): boolean {
    if (this.state === 'closed' || this.socket.destroyed) return false;
    if (this.#clientMaxPacketSize !== undefined && bytes.length > this.#clientMaxPacketSize) {
      this.#host.counters.increment('mqtt.outbound_too_large');
      return false;
    }
    this.socket.write(bytes);
    return true;
  }

  /** Closes a client after an error: MQTT 5 clients past CONNECT are told why with a DISCONNECT. */
  disconnect(reason: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'connected' && this.version === 5) {
      this.#closeWith(
        mqttPacket.generate(
          { cmd: 'disconnect', reasonCode: reason, ...reasonString(reason) },
          { protocolVersion: 5 },
        ),
      );
    } else {
      this.close({ graceful: false });
    }
  }

  /** A method, not a comparison, so that checking it does not narrow `state` for the code after it. */
  #isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Closes the socket; after an abnormal close of a connected client its will is published. */
  close({ graceful }: { graceful: boolean }): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearTimeout(this.#timer);
    clearTimeout(this.#packetTimer);
    this.#host.unfinishedBytes.give(this.#unfinishedBytes);
    this.#unfinishedBytes = 0;
    const socket = this.socket;
    if (socket.writableEnded) setTimeout(() => socket.destroy(), 1000).unref();
    else socket.destroy();
    this.#host.detach(this);
    if (!wasConnected) return;
    const will = this.#will;
    const session = this.session;
    if (!graceful && will !== undefined) {
      const publish = (): void =>
        this.#host.publishWill(stampExpiry(will.message), this.#meta(will.message, true));
      // A delayed will waits on the session: the client may come back first, or the session end first.
      if (will.delaySeconds > 0 && session?.persistent === true)
        session.delayWill(will.delaySeconds * 1000, publish);
      else publish();
    }
    if (session !== undefined) this.#host.releaseSession(session);
  }

  /** A PUBLISH with this client's topic alias for its topic: given on first use, the topic left out after. */
  #withTopicAlias(packet: IPublishPacket): IPublishPacket {
    const aliases = this.#topicAliases;
    if (aliases === undefined) return packet;
    const known = aliases.get(packet.topic);
    if (known !== undefined)
      return { ...packet, topic: '', properties: { ...packet.properties, topicAlias: known } };
    if (aliases.size >= this.#topicAliasMaximum) return packet;
    const alias = aliases.size + 1;
    aliases.set(packet.topic, alias);
    return { ...packet, properties: { ...packet.properties, topicAlias: alias } };
  }

  #onData(chunk: Buffer): void {
    // A closed connection's socket may still deliver bytes until it is destroyed: they are not ours to hold
    // (close() gave its budget back).
    if (this.#isClosed()) return;
    this.#lastReceived = Date.now();
    if (!this.#sawFirstByte && chunk.length > 0) {
      this.#sawFirstByte = true;
      // Not a CONNECT (an HTTP request, TLS, noise): refuse now instead of waiting for a length it claims.
      if (chunk[0] !== 0x10) {
        this.#malformed();
        return;
      }
    }
    this.#reader.append(chunk);
    if (this.#holdUnfinished(false)) this.#work();
  }

  /**
   * Handles what the client sent and sends what its subscriptions brought, while the broker's budget for
   * this turn lasts; past it, stops reading and goes on in a later turn, so that no client (nor many at
   * once) holds the event loop.
   */
  #work(): void {
    let completed = false;
    for (;;) {
      if (this.state === 'closed') return;
      if (!this.#host.turn.available()) {
        this.#waitForTurn();
        break;
      }
      if (this.#steps !== undefined) {
        if (this.#steps.next().done === true) this.#steps = undefined;
        continue;
      }
      const next = this.#reader.next();
      if (next === 'incomplete') break;
      if (next === 'oversize') {
        this.#host.counters.increment('mqtt.oversize');
        this.disconnect(REASON.packetTooLarge);
        return;
      }
      if (next === 'malformed') {
        this.#malformed();
        return;
      }
      completed = true;
      this.#onFrame(next);
    }
    if (!this.#isClosed()) this.#holdUnfinished(completed);
  }

  #onFrame(frame: Buffer): void {
    if (this.state === 'awaiting-connect') {
      const level = connectProtocolLevel(frame);
      if (level !== undefined && level !== 4 && level !== 5) {
        // Any other level (3.1, or a future one): the 3.1.1 form of CONNACK, which every version reads.
        this.#host.counters.increment('mqtt.unsupported_protocol');
        this.#closeWith(Buffer.from([0x20, 0x02, 0x00, RC.unacceptableProtocol]));
        return;
      }
    }
    if (((frame[0] as number) & 0xf0) === 0x30 && this.state === 'connected') {
      const topic = rawPublishTopic(frame);
      if (topic === undefined || !isUtf8(topic)) {
        this.#malformed();
        return;
      }
    }
    this.#parser.parse(frame);
  }

  /**
   * Accounts the bytes of the packet still unfinished against the host's budget and starts its clock
   * (again when packets completed: what is left belongs to a new one). False when it went over the budget
   * and the client was disconnected.
   */
  #holdUnfinished(completedPackets: boolean): boolean {
    const pending = this.#reader.pendingBytes;
    // The first 64 KiB of each connection's unfinished packet are free: an attacker who fills the budget
    // with big unfinished packets must not cut off every app whose ordinary packet arrives in two reads
    // (max_connections bounds the free part).
    const counted = Math.max(0, pending - FREE_UNFINISHED_BYTES);
    const added = counted - this.#unfinishedBytes;
    if (added > 0 && !this.#host.unfinishedBytes.take(added)) {
      this.#host.counters.increment('mqtt.unfinished_bytes_refused');
      this.disconnect(REASON.quotaExceeded);
      return false;
    }
    if (added < 0) this.#host.unfinishedBytes.give(-added);
    this.#unfinishedBytes = counted;
    if (pending === 0) {
      this.#unfinishedSince = undefined;
    } else if (completedPackets || this.#unfinishedSince === undefined) {
      this.#unfinishedSince = Date.now();
      if (this.#packetTimer === undefined) this.#armPacketTimer(this.#settings.packetTimeoutMs);
    }
    return true;
  }

  /** Disconnects a client whose packet is still unfinished `packetTimeoutMs` after its first byte. */
  #armPacketTimer(ms: number): void {
    this.#packetTimer = setTimeout(() => {
      this.#packetTimer = undefined;
      const since = this.#unfinishedSince;
      if (this.state === 'closed' || since === undefined) return;
      const elapsed = Date.now() - since;
      if (elapsed < this.#settings.packetTimeoutMs) {
        this.#armPacketTimer(this.#settings.packetTimeoutMs - elapsed);
        return;
      }
      this.#host.counters.increment('mqtt.packet_timeouts');
      this.disconnect(REASON.keepAliveTimeout);
    }, ms);
  }

  #malformed(): void {
    if (this.state === 'closed') return;
    this.#host.counters.increment('mqtt.malformed');
    this.disconnect(REASON.malformed);
  }

  #protocolError(reason: number = REASON.protocolError): void {
    if (this.state === 'closed') return;
    this.#host.counters.increment('mqtt.protocol_errors');
    this.disconnect(reason);
  }

  #handle(packet: Packet): void {
    if (this.state === 'closed') return;
    if (this.state === 'awaiting-connect') {
      if (packet.cmd !== 'connect') {
        this.#protocolError();
        return;
      }
      this.#onConnect(packet);
      return;
    }
    switch (packet.cmd) {
      case 'publish': {
        this.#onPublish(packet);
        return;
      }
      case 'puback':
      case 'pubcomp': {
        this.#host.delivery.acknowledge(this, packet.messageId);
        return;
      }
      case 'pubrec': {
        const id = packet.messageId ?? 0;
        // An error reason ends the exchange: the client will not take this message.
        if ((packet.reasonCode ?? 0) >= 0x80) {
          this.#host.delivery.acknowledge(this, id);
          return;
        }
        const known = this.#host.delivery.received(this, id);
        this.send({
          cmd: 'pubrel',
          messageId: id,
          ...(this.version === 5 && !known ? this.#withReason(REASON.packetIdNotFound) : {}),
        });
        return;
      }
      case 'pubrel': {
        const id = packet.messageId ?? 0;
        const known = this.session?.inboundQos2.delete(id) ?? false;
        this.send({
          cmd: 'pubcomp',
          messageId: id,
          ...(this.version === 5 && !known ? this.#withReason(REASON.packetIdNotFound) : {}),
        });
        return;
      }
      case 'subscribe': {
        this.#steps = this.#subscribeSteps(packet);
        return;
      }
      case 'unsubscribe': {
        this.#onUnsubscribe(packet.messageId ?? 0, packet.unsubscriptions);
        return;
      }
      case 'pingreq':
        this.send({ cmd: 'pingresp' });
        return;
      case 'disconnect': {
        const withWill = this.version === 5 && packet.reasonCode === REASON.disconnectWithWill;
        const expiry = packet.properties?.sessionExpiryInterval;
        const session = this.session;
        if (this.version === 5 && expiry !== undefined && session !== undefined) {
          // §3.14.2.2.2: a session that was to end with the connection cannot be made to outlive it.
          if (session.expirySeconds === 0 && expiry > 0) {
            this.#protocolError();
            return;
          }
          session.expirySeconds = expiry;
          session.persistent = expiry > 0;
        }
        this.close({ graceful: !withWill });
        return;
      }
      default: {
        // A second CONNECT, AUTH (no enhanced authentication), or a server-to-client packet.
        this.#protocolError();
        return;
      }
    }
  }

  #onConnect(packet: IConnectPacket): void {
    const counters = this.#host.counters;
    const version = packet.protocolVersion === 5 ? 5 : 4;
    this.version = version;
    const refuse = (rc4: number, reason5: number): void => {
      counters.increment('mqtt.connects_refused');
      const connack: Packet =
        version === 5
          ? { cmd: 'connack', sessionPresent: false, reasonCode: reason5, ...reasonString(reason5) }
          : { cmd: 'connack', sessionPresent: false, returnCode: rc4 };
      this.#closeWith(mqttPacket.generate(connack, { protocolVersion: version }));
    };
    if (packet.protocolVersion !== 4 && packet.protocolVersion !== 5) {
      counters.increment('mqtt.unsupported_protocol');
      refuse(RC.unacceptableProtocol, REASON.unsupportedProtocol);
      return;
    }
    if (version === 5 && packet.properties?.authenticationMethod !== undefined) {
      refuse(RC.badCredentials, REASON.badAuthMethod);
      return;
    }
    // §3.1.2.11: a Receive Maximum or Maximum Packet Size of 0 is a protocol error.
    if (
      version === 5 &&
      (packet.properties?.receiveMaximum === 0 || packet.properties?.maximumPacketSize === 0)
    ) {
      counters.increment('mqtt.protocol_errors');
      refuse(RC.unacceptableProtocol, REASON.protocolError);
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
    if (!authenticate(this.#settings.auth, packet.username, packet.password, clientId)) {
      counters.increment('mqtt.auth_failed');
      // 3.1.1: "not authorized", as mosquitto answers a wrong password or a refused anonymous client.
      refuse(RC.notAuthorized, REASON.badCredentials);
      return;
    }
    let will: Will | undefined;
    if (packet.will) {
      const topic = packet.will.topic;
      if (!isValidTopicName(topic) || topicLevels(topic) > this.#settings.maxTopicLevels) {
        refuse(RC.identifierRejected, REASON.topicNameInvalid);
        return;
      }
      const willProperties = version === 5 ? packet.will.properties : undefined;
      will = {
        delaySeconds: willProperties?.willDelayInterval ?? 0,
        message: {
          topic: packet.will.topic,
          payload: Buffer.from(packet.will.payload),
          qos: packet.will.qos ?? 0,
          retain: packet.will.retain === true,
          origin: clientId,
          ...(willProperties
            ? { properties: forwardableProperties(willProperties as PublishProperties) }
            : {}),
        },
      };
    }

    // A will is a publish the client makes by going: it needs the same right as one made by PUBLISH.
    if (
      will !== undefined &&
      !this.#may('mayPublish', { clientId, username: packet.username }, will.message.topic)
    ) {
      counters.increment('mqtt.acl_denied_will');
      refuse(RC.notAuthorized, REASON.notAuthorized);
      return;
    }
    const claimed = this.#host.claimSession(clientId, packet.clean === true, packet.username);
    if (claimed === undefined) {
      refuse(RC.serverUnavailable, REASON.serverUnavailable);
      return;
    }
    const { session, present: sessionPresent } = claimed;
    session.stopExpiry();
    if (version === 5) {
      session.expirySeconds = packet.properties?.sessionExpiryInterval ?? 0;
      session.persistent = session.expirySeconds > 0;
      this.#clientMaxPacketSize = packet.properties?.maximumPacketSize;
      this.receiveMaximum = packet.properties?.receiveMaximum ?? 65_535;
      this.#problemInformation = packet.properties?.requestProblemInformation !== false;
      this.#topicAliasMaximum = packet.properties?.topicAliasMaximum ?? 0;
      if (this.#topicAliasMaximum > 0) this.#topicAliases = new Map();
    } else {
      session.expirySeconds = undefined;
      session.persistent = !packet.clean;
    }

    this.state = 'connected';
    this.clientId = clientId;
    this.username = packet.username;
    this.session = session;
    this.#will = will;
    this.#host.attach(this);
    // MQTT 5 clients are held to the longest keep alive allowed; a 3.1.1 client cannot be told, and keeps its
    // own. Keep alive 0 (none) is left alone, as the Paho reference broker does: MQTT.js ignores a Server
    // Keep Alive when it asked for none, and would be cut off, its will sent, whenever it is quiet.
    const maxKeepAlive = Math.floor(this.#settings.maxKeepAliveMs / 1000);
    const asked = packet.keepalive ?? 0;
    const keepAlive = version === 5 && asked > maxKeepAlive ? maxKeepAlive : asked;
    this.#armTimer(keepAlive * 1000 * 1.5);

    if (version === 5) {
      this.send({
        cmd: 'connack',
        sessionPresent,
        reasonCode: REASON.success,
        properties: {
          maximumPacketSize: this.#settings.maxPacketSize,
          receiveMaximum: this.#settings.maxInflight,
          topicAliasMaximum: 0,
          retainAvailable: true,
          wildcardSubscriptionAvailable: true,
          subscriptionIdentifiersAvailable: true,
          sharedSubscriptionAvailable: true,
          ...(keepAlive !== asked ? { serverKeepAlive: keepAlive } : {}),
          ...(assigned ? { assignedClientIdentifier: clientId } : {}),
        },
      });
    } else {
      this.send({ cmd: 'connack', sessionPresent, returnCode: 0 });
    }
    this.#host.delivery.resume(this, session);
    this.#host.holds(this, [...session.subscriptions.values()]);
  }

  #onPublish(packet: IPublishPacket): void {
    const properties = packet.properties;
    if (properties?.topicAlias !== undefined) {
      this.#protocolError(REASON.topicAliasInvalid);
      return;
    }
    // §3.3.4: a Subscription Identifier is the server's to send, never a client's.
    if (properties?.subscriptionIdentifier !== undefined) {
      this.#protocolError();
      return;
    }
    if (!isValidTopicName(packet.topic)) {
      this.#protocolError(REASON.topicNameInvalid);
      return;
    }
    if (topicLevels(packet.topic) > this.#settings.maxTopicLevels) {
      this.#host.counters.increment('mqtt.topics_too_deep');
      this.disconnect(REASON.topicNameInvalid);
      return;
    }
    const session = this.session as Session;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const messageId = packet.messageId ?? 0;
    // §3.3.2.3.2: a payload that says it is UTF-8 and is not is refused (0x99), not passed on.
    if (properties?.payloadFormatIndicator === true && !isUtf8(payload)) {
      this.#host.counters.increment('mqtt.payload_format_invalid');
      this.#acknowledge(packet.qos, messageId, { refusedWith: REASON.payloadFormatInvalid });
      return;
    }
    const fresh = packet.qos !== 2 || !session.inboundQos2.has(messageId);
    if (packet.qos === 2 && fresh && session.inboundQos2.size >= this.#settings.maxInflight) {
      this.#host.counters.increment('mqtt.receive_maximum_exceeded');
      this.#protocolError(REASON.receiveMaximumExceeded);
      return;
    }
    const allowed = this.#may('mayPublish', this.#identity(), packet.topic);
    if (!allowed) this.#host.counters.increment('mqtt.acl_denied_publish');
    let refusal: PublishRefusal | undefined = allowed ? undefined : { refusedWith: REASON.notAuthorized };
    if (fresh && allowed) {
      this.#host.counters.increment('mqtt.messages_in');
      const message = stampExpiry({
        topic: packet.topic,
        payload,
        qos: packet.qos,
        retain: packet.retain,
        origin: this.clientId,
        ...(this.version === 5 && properties ? { properties: forwardableProperties(properties) } : {}),
      });
      refusal = this.#host.received(message, this.#meta(message, false));
    }
    // A refused publish is answered as mosquitto does: with the reason on MQTT 5 (which ends a QoS 2
    // exchange there), an ordinary acknowledgement on 3.1.1, which has no way to say it.
    this.#acknowledge(packet.qos, messageId, refusal);
  }

  /** The PUBACK (QoS 1) or PUBREC (QoS 2) of a PUBLISH, saying why when it was refused (MQTT 5). */
  #acknowledge(qos: 0 | 1 | 2, messageId: number, refusal: PublishRefusal | undefined): void {
    const answer: { reasonCode?: number } =
      refusal !== undefined && this.version === 5
        ? this.#withReason(refusal.refusedWith, refusal.reason)
        : {};
    if (qos === 1) this.send({ cmd: 'puback', messageId, ...answer });
    if (qos === 2) {
      if (answer.reasonCode === undefined) this.session?.inboundQos2.add(messageId);
      this.send({ cmd: 'pubrec', messageId, ...answer });
    }
  }

  /**
   * A SUBSCRIBE, a filter per step, then its SUBACK, then the retained messages it brought, a message per
   * step: the connection's work loop runs the steps within the broker's turn budget.
   */
  *#subscribeSteps(packet: ISubscribePacket): Generator<void> {
    const session = this.session as Session;
    // §3.8.2.1.2: a Subscription Identifier of 0 is a protocol error.
    if (packet.properties?.subscriptionIdentifier === 0) {
      this.#protocolError();
      return;
    }
    const subscriptionId = this.version === 5 ? subscriptionIdOf(packet) : undefined;
    const granted: number[] = [];
    const retainedToSend: Subscription[] = [];
    for (const subscription of packet.subscriptions) {
      const shared = sharedSubscription(subscription.topic);
      // §3.8.3.1: No Local on a shared subscription is a protocol error.
      if (shared !== undefined && shared !== null && subscription.nl === true) {
        this.#protocolError();
        return;
      }
      granted.push(this.#grant(session, subscription, shared, subscriptionId, retainedToSend));
      yield;
    }
    this.send({ cmd: 'suback', messageId: packet.messageId ?? 0, granted });
    yield* this.#host.delivery.deliverRetained(session, retainedToSend);
  }

  /** One filter of a SUBSCRIBE: its SUBACK code; a granted one may bring retained messages. */
  #grant(
    session: Session,
    subscription: ISubscribePacket['subscriptions'][number],
    shared: SharedFilter | null | undefined,
    subscriptionId: number | undefined,
    retainedToSend: Subscription[],
  ): number {
    const filter = subscription.topic;
    const topicFilter = shared?.topicFilter ?? filter;
    if (shared === null || !isValidTopicFilter(topicFilter))
      return this.version === 5 ? REASON.topicFilterInvalid : 0x80;
    if (topicLevels(topicFilter) > this.#settings.maxTopicLevels) {
      this.#host.counters.increment('mqtt.topics_too_deep');
      return this.version === 5 ? REASON.topicFilterInvalid : 0x80;
    }
    if (!this.#may('maySubscribe', this.#identity(), topicFilter)) {
      this.#host.counters.increment('mqtt.acl_denied_subscribe');
      return this.version === 5 ? REASON.notAuthorized : 0x80;
    }
    const qos = subscription.qos;
    const existed = session.subscriptions.has(filter);
    const subscribed = this.#host.delivery.subscribe(session, filter, topicFilter, {
      qos,
      noLocal: this.version === 5 && subscription.nl === true,
      retainAsPublished: this.version === 5 && subscription.rap === true,
      ...(subscriptionId === undefined ? {} : { subscriptionId }),
      ...(shared === undefined ? {} : { shareGroup: shared.group }),
    });
    if (!subscribed) return this.version === 5 ? REASON.quotaExceeded : 0x80;
    const held = session.subscriptions.get(filter);
    if (held !== undefined) this.#host.holds(this, [held]);
    // §4.8.2: a shared subscription gets no retained messages when it is made.
    const retainHandling = this.version === 5 ? (subscription.rh ?? 0) : 0;
    const wantsRetained = retainHandling === 0 || (retainHandling === 1 && !existed);
    if (held !== undefined && shared === undefined && wantsRetained) retainedToSend.push(held);
    return qos;
  }

  #onUnsubscribe(messageId: number, filters: string[]): void {
    const session = this.session as Session;
    const codes = filters.map((filter) =>
      this.#host.delivery.unsubscribe(session, filter) ? REASON.success : REASON.noSubscriptionExisted,
    );
    this.send({
      cmd: 'unsuback',
      messageId,
      ...(this.version === 5 ? { granted: codes } : {}),
    } as Packet);
  }

  #identity(): MqttClientIdentity {
    return { clientId: this.clientId, username: this.username };
  }

  /** The access control's answer; everything is allowed without one. */
  #may(question: keyof TopicAccess, client: MqttClientIdentity, topicOrFilter: string): boolean {
    const access = this.#settings.access;
    return access === undefined || access[question](client, topicOrFilter);
  }

  /**
   * An error reason code for an acknowledgement, with its reason string (`text`, or the code's own) if the
   * client asked for those.
   */
  #withReason(
    reasonCode: number,
    text?: string,
  ): { reasonCode: number; properties?: { reasonString: string } } {
    if (!this.#problemInformation) return { reasonCode };
    return text === undefined
      ? { reasonCode, ...reasonString(reasonCode) }
      : { reasonCode, properties: { reasonString: text } };
  }

  #meta(message: BrokerMessage, will: boolean): PublishMeta {
    return {
      clientId: this.clientId,
      username: this.username,
      protocolVersion: this.version,
      qos: message.qos,
      retain: message.retain,
      will,
      ...(message.properties ? { properties: message.properties } : {}),
    };
  }

  /** Writes a last packet, then closes. */
  #closeWith(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.end(bytes);
    this.close({ graceful: false });
  }

  /** Closes the connection after `ms` without receiving anything (0: never). */
  #armTimer(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (ms <= 0) return;
    const check = (): void => {
      if (this.state === 'closed') return;
      // Before CONNECT the clock runs from accept, so trickled bytes cannot hold a connection open.
      const since = this.state === 'connected' ? this.#lastReceived : this.#acceptedAt;
      const silent = Date.now() - since;
      if (silent >= ms) {
        this.#host.counters.increment(
          this.state === 'connected' ? 'mqtt.keepalive_timeouts' : 'mqtt.connect_timeouts',
        );
        this.disconnect(REASON.keepAliveTimeout);
        return;
      }
      this.#timer = setTimeout(check, ms - silent);
    };
    this.#timer = setTimeout(check, ms);
  }
}

/**
 * The PUBLISH properties a broker forwards (MQTT 5 §2.2.2.2, §3.3.2.3): an allow-list, so what belongs to
 * one hop (topic alias, subscription identifiers) or to another packet type (a will's Will Delay Interval,
 * which a subscriber's client rejects as a protocol error) never reaches a subscriber.
 */
const FORWARDED_PROPERTIES = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'userProperties',
] as const satisfies readonly (keyof PublishProperties)[];

function forwardableProperties(properties: PublishProperties): PublishProperties {
  const forwarded: PublishProperties = {};
  for (const key of FORWARDED_PROPERTIES) {
    if (properties[key] !== undefined) Object.assign(forwarded, { [key]: properties[key] });
  }
  return forwarded;
}

/**
 * A successful PUBACK, PUBREC, PUBREL or PUBCOMP in its 2-byte form (§3.4.2.1: reason 0 and no properties
 * may be left out). mqtt-packet writes a reason code and an empty property list unless the reason is given
 * as 0, and paho-mqtt 1.6 (Home Assistant's client for years) cannot read a longer PUBREL.
 */
function shortAcknowledgement(packet: Packet): Packet {
  const acknowledgement =
    packet.cmd === 'puback' || packet.cmd === 'pubrec' || packet.cmd === 'pubrel' || packet.cmd === 'pubcomp';
  return acknowledgement && packet.reasonCode === undefined ? { ...packet, reasonCode: 0 } : packet;
}

/** Starts a message's expiry clock (its Message Expiry Interval) as it enters the broker. */
function stampExpiry(message: BrokerMessage): BrokerMessage {
  const seconds = message.properties?.messageExpiryInterval;
  return seconds === undefined ? message : { ...message, expiresAt: Date.now() + seconds * 1000 };
}

/** The Reason String property for an error reason code, when there is one for it. */
function reasonString(reasonCode: number): { properties?: { reasonString: string } } {
  const text = REASON_TEXT[reasonCode];
  return text === undefined ? {} : { properties: { reasonString: text } };
}

/** A SUBSCRIBE's Subscription Identifier (one per packet, 1..268435455). */
function subscriptionIdOf(packet: ISubscribePacket): number | undefined {
  const id = packet.properties?.subscriptionIdentifier;
  return typeof id === 'number' && id > 0 ? id : undefined;
}

interface SharedFilter {
  group: string;
  topicFilter: string;
}

/**
 * `$share/<group>/<filter>` (§4.8.2): its group and filter; null when it is malformed (an empty group, a
 * wildcard in it, or no filter); undefined when it is not a shared subscription.
 */
function sharedSubscription(filter: string): SharedFilter | null | undefined {
  if (!filter.startsWith('$share/')) return undefined;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const group = rest.slice(0, slash);
  const topicFilter = rest.slice(slash + 1);
  if (group.includes('+') || group.includes('#') || topicFilter === '') return null;
  return { group, topicFilter };
}
