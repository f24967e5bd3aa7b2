// In-memory MQTT sessions: subscriptions, QoS 1 messages in flight and queued while the client is
// offline (bounded), QoS 2 packet ids received but not yet released. Nothing survives a restart.
import type { IPublishPacket } from 'mqtt-packet';

export type PublishProperties = NonNullable<IPublishPacket['properties']>;

export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  /** MQTT 5 properties forwarded to MQTT 5 subscribers (never topic alias or subscription ids). */
  properties?: PublishProperties;
  /** Client id of the publisher, for the MQTT 5 no-local option; undefined for agent-side publishes. */
  origin?: string;
}

export interface SubscriptionOptions {
  qos: 0 | 1;
  noLocal: boolean;
  retainAsPublished: boolean;
}

export class Session {
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  /** QoS 1 messages waiting for delivery: the client is offline or its in-flight window is full. */
  readonly queue: BrokerMessage[] = [];
  /** QoS 1 messages sent and not yet acknowledged, by packet id. */
  readonly inflight = new Map<number, BrokerMessage>();
  /** QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL. */
  readonly inboundQos2 = new Set<number>();
  /** Whether the session outlives the connection. */
  persistent = false;
  /** MQTT 5 session expiry in seconds after disconnect (0xFFFFFFFF: never); undefined for 3.1.1. */
  expirySeconds: number | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  #nextPacketId = 1;

  constructor(readonly clientId: string) {}

  /** A packet id not in flight, or undefined when all 65535 are. */
  allocatePacketId(): number | undefined {
    for (let tries = 0; tries < 65_535; tries++) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 65_535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    return undefined;
  }

  /** Queues a message, dropping the oldest beyond `limit`; returns how many were dropped. */
  enqueue(message: BrokerMessage, limit: number): number {
    this.queue.push(message);
    let dropped = 0;
    while (this.queue.length > limit) {
      this.queue.shift();
      dropped++;
    }
    return dropped;
  }
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  get(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  create(clientId: string): Session {
    this.delete(clientId);
    const session = new Session(clientId);
    this.#sessions.set(clientId, session);
    return session;
  }

  delete(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session === undefined) return;
    clearTimeout(session.expiryTimer);
    this.#sessions.delete(clientId);
  }

  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  get size(): number {
    return this.#sessions.size;
  }

  clear(): void {
    for (const session of this.#sessions.values()) clearTimeout(session.expiryTimer);
    this.#sessions.clear();
  }
}
