// A small MQTT broker (3.1.1 and 5.0) for local apps: the core of the agent's MQTT gateway.
//
// Scope and deliberate choices:
// - Sessions, queued messages and retained messages live in memory only.
// - QoS 0, 1 and 2 end to end: inbound QoS 2 enters the broker once (method A: routed at PUBLISH, the
//   packet id held until PUBREL); outbound QoS 2 holds the message in flight until PUBCOMP.
// - MQTT 5: message expiry enforced, subscription identifiers, shared subscriptions, will delay, server
//   topic aliases and keep alive; no topic aliases from clients, no enhanced authentication.
// - Hostile input (malformed or oversize packets, protocol errors, silence) closes that client only,
//   and is counted, never logged per packet.
// - Everything a client can make the broker hold is bounded (MqttLimits): connections, unfinished
//   packets (in time and bytes), subscriptions, queued messages, retained messages, QoS 2 unreleased.

import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { listening } from '../core/listen.js';
import type { Logger } from '../core/logger.js';
import { longTimeout } from '../core/long-timeout.js';
import { isValidTopicName } from '../core/topic-match.js';
import { DEFAULT_TURN_BUDGET_MS, TurnBudget } from '../core/turn-budget.js';
import type { TopicAccess } from './access-control.js';
import type { MqttAuth } from './auth.js';
import { ByteBudget } from './byte-budget.js';
import {
  ClientConnection,
  type ConnectionHost,
  type PublishMeta,
  type PublishRefusal,
} from './client-connection.js';
import type { MqttLimits } from './config.js';
import { DEFAULT_MQTT_LIMITS, DEFAULT_MQTT_MAX_PACKET_SIZE } from './config.js';
import { Delivery } from './delivery.js';
import { REASON } from './reason-codes.js';
import { RetainedStore } from './retained-store.js';
import {
  type BrokerMessage,
  type PublishProperties,
  type Session,
  SessionStore,
  type Subscription,
} from './session-store.js';

export type { MqttAuthenticator } from './auth.js';
export type { PublishMeta, PublishRefusal } from './client-connection.js';
export type { PublishProperties } from './session-store.js';

export class MqttGatewayError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('mqtt-gateway', message, options);
  }
}

export interface MqttBrokerOptions extends Partial<MqttLimits> {
  /** Required credentials, or a check; without it every client is accepted. */
  auth?: MqttAuth;
  /** Who may publish, subscribe to and receive which topics; without it every client may do everything. */
  access?: TopicAccess;
  /** Largest packet accepted from a client, in bytes (told to MQTT 5 clients). Default 1 MiB. */
  maxPacketSize?: number;
  /** QoS 1 messages sent to one client and not yet acknowledged. Default 100. */
  maxInflight?: number;
  /** Milliseconds of work for clients per event-loop turn (see TurnBudget); 0: one step per turn. */
  turnBudgetMs?: number;
  counters?: Counters;
  log?: Logger;
}

/** A connected client holds these subscriptions: all of its session's on connect, then each new one. */
export type HoldListener = (
  clientId: string,
  session: Session,
  subscriptions: readonly Subscription[],
) => void;

/** Told of every PUBLISH taken from a client, before its PUBACK, which carries a refusal if one comes. */
// biome-ignore lint/suspicious/noConfusingVoidType: a listener that returns nothing has no say in the PUBACK.
export type PublishListener = (topic: string, payload: Buffer, meta: PublishMeta) => PublishRefusal | void;

export interface AgentPublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
  properties?: PublishProperties;
  /** Clients not to hand it to (they get it another way: an inbox consumer's own copy). */
  skip?: (clientId: string) => boolean;
}

const DEFAULTS = {
  ...DEFAULT_MQTT_LIMITS,
  maxPacketSize: DEFAULT_MQTT_MAX_PACKET_SIZE,
  maxInflight: 100,
  turnBudgetMs: DEFAULT_TURN_BUDGET_MS,
};
const NEVER_EXPIRES = 0xffff_ffff;

/** Accepts client sockets and ties connections, sessions, delivery and the agent's listeners together. */
export class MqttBroker {
  readonly counters: Counters;
  readonly #options: typeof DEFAULTS & MqttBrokerOptions;
  readonly #sessions = new SessionStore((session) => this.#delivery.forget(session));
  readonly #retained: RetainedStore;
  readonly #delivery: Delivery;
  readonly #host: ConnectionHost;
  readonly #connections = new Map<string, ClientConnection>();
  readonly #sockets = new Set<ClientConnection>();
  readonly #listeners = new Set<PublishListener>();
  readonly #goneListeners = new Set<(clientId: string) => void>();
  readonly #holdListeners = new Set<HoldListener>();
  readonly #turn: TurnBudget;
  #server: Server | undefined;

  constructor(options: MqttBrokerOptions = {}) {
    this.#options = { ...DEFAULTS, ...stripUndefined(options) };
    this.counters = options.counters ?? new Counters();
    this.#turn = new TurnBudget(this.#options.turnBudgetMs);
    this.#retained = new RetainedStore(this.#options.maxRetainedMessages, this.#options.maxRetainedBytes);
    this.#delivery = new Delivery(this.#retained, this.#connections, this.counters, this.#options);
    this.#host = {
      counters: this.counters,
      delivery: this.#delivery,
      unfinishedBytes: new ByteBudget(this.#options.maxUnfinishedBytesTotal),
      turn: this.#turn,
      claimSession: (clientId, clean, username) => this.#claimSession(clientId, clean, username),
      attach: (connection) => this.#connections.set(connection.clientId, connection),
      detach: (connection) => this.#detach(connection),
      holds: (connection, subscriptions) => {
        for (const listener of this.#holdListeners)
          listener(connection.clientId, connection.session as Session, subscriptions);
      },
      received: (message, meta) => this.#received(message, meta),
      publishWill: (message, meta) => this.#publishWill(message, meta),
      releaseSession: (session) => this.#releaseSession(session),
    };
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    if (this.#server !== undefined) throw new MqttGatewayError('the MQTT broker is already listening');
    const server = createServer((socket) => this.#accept(socket));
    try {
      await listening(server, port, host);
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
    for (const connection of [...this.#sockets]) connection.close({ graceful: true });
    this.#sessions.clear();
    this.#delivery.clear();
    this.#retained.clear();
    this.#turn.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Calls `listener` for every PUBLISH accepted from a client (and every will published); returns an unsubscribe. */
  onPublish(listener: PublishListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` with the client id when a connected client goes (any way, a takeover included). */
  onClientGone(listener: (clientId: string) => void): () => void {
    this.#goneListeners.add(listener);
    return () => this.#goneListeners.delete(listener);
  }

  /** Calls `listener` when a connected client holds subscriptions (on connect, and on each subscribe). */
  onHolds(listener: HoldListener): () => void {
    this.#holdListeners.add(listener);
    return () => this.#holdListeners.delete(listener);
  }

  /** Hands one connected client a copy from the app inbox; false when it is not connected or may not read it. */
  deliverTo(clientId: string, message: BrokerMessage): boolean {
    const session = this.#connections.get(clientId)?.session;
    return session !== undefined && this.#delivery.deliverTo(session, message);
  }

  /** Drops the app inbox's copies the client's session still holds (it went: they come again). */
  dropInboxCopies(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session !== undefined) this.#delivery.dropInboxCopies(session);
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
    this.#delivery.route(message, options.skip);
  }

  /** True when a connected client holds a subscription to exactly `topic` (a filter with no wildcards). */
  hasConnectedSubscriber(topic: string): boolean {
    return this.#delivery.hasConnectedSubscriber(topic);
  }

  /** Counts for `status`: connected clients, sessions, retained messages. */
  stats(): { clients: number; sessions: number; retained: number } {
    return { clients: this.#connections.size, sessions: this.#sessions.size, retained: this.#retained.size };
  }

  #accept(socket: Socket): void {
    if (this.#sockets.size >= this.#options.maxConnections) {
      this.counters.increment('mqtt.connections_refused');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#sockets.add(new ClientConnection(socket, this.#options, this.#host));
    this.counters.increment('mqtt.connections');
  }

  #claimSession(
    clientId: string,
    clean: boolean,
    username: string | undefined,
  ): { session: Session; present: boolean } | undefined {
    // Session takeover: the older connection with this client id goes (its will is published).
    const previous = this.#connections.get(clientId);
    if (previous !== undefined) {
      this.counters.increment('mqtt.takeovers');
      previous.disconnect(REASON.sessionTakenOver);
    }
    // Another user's session (its subscriptions, its queued messages) is not resumed: it starts afresh.
    // A session resumed in time keeps its will from being published; one ended by a clean start sends it.
    const existing = clean ? undefined : this.#sessions.get(clientId);
    if (existing !== undefined && existing.username === username) {
      existing.cancelWill();
      return { session: existing, present: true };
    }
    if (this.#sessions.get(clientId) === undefined && !this.#makeRoomForSession()) return undefined;
    return { session: this.#sessions.create(clientId, username), present: false };
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

  #detach(connection: ClientConnection): void {
    this.#sockets.delete(connection);
    if (this.#connections.get(connection.clientId) !== connection) return;
    this.#connections.delete(connection.clientId);
    for (const listener of this.#goneListeners) {
      try {
        listener(connection.clientId);
      } catch (error) {
        this.counters.increment('mqtt.listener_errors');
        this.#options.log?.warn({ err: error }, 'mqtt gateway client-gone listener failed');
      }
    }
  }

  /** Routes a message and tells the listeners; the first refusal, if one refused it. */
  #received(message: BrokerMessage, meta: PublishMeta): PublishRefusal | undefined {
    this.#delivery.route(message);
    let refusal: PublishRefusal | undefined;
    for (const listener of this.#listeners) {
      try {
        refusal ??= listener(message.topic, message.payload, meta) ?? undefined;
      } catch (error) {
        this.counters.increment('mqtt.listener_errors');
        this.#options.log?.warn({ err: error }, 'mqtt gateway publish listener failed');
      }
    }
    return refusal;
  }

  #publishWill(message: BrokerMessage, meta: PublishMeta): void {
    if (this.#server === undefined) return; // closing down: no wills
    this.counters.increment('mqtt.wills_published');
    this.#received(message, meta);
  }

  #releaseSession(session: Session): void {
    if (this.#sessions.get(session.clientId) !== session) return;
    if (this.#connections.has(session.clientId)) return; // taken over: the new connection owns it now
    if (!session.persistent) {
      this.#sessions.delete(session.clientId);
    } else if (session.expirySeconds !== undefined && session.expirySeconds !== NEVER_EXPIRES) {
      session.cancelExpiry = longTimeout(session.expirySeconds * 1000, () =>
        this.#sessions.delete(session.clientId),
      );
    }
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
