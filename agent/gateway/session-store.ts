// In-memory MQTT sessions: subscriptions, QoS 1 messages in flight and queued while the client is
// offline (bounded by delivery), QoS 2 packet ids received but not yet released. Nothing survives a restart.
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
  /**
   * A copy handed to one session from the app inbox: called when its client acknowledges it. Such copies
   * are dropped when the client goes (the inbox hands them over again), never kept for its return.
   */
  onAcked?: () => void;
}

export interface SubscriptionOptions {
  qos: 0 | 1;
  noLocal: boolean;
  retainAsPublished: boolean;
}

export interface Subscription {
  readonly session: Session;
  readonly filter: string;
  readonly options: SubscriptionOptions;
  /** What it counts as against the subscription quotas (see subscriptionUnits). */
  readonly units: number;
}

/** Bytes a held message is counted as: its payload and its topic. */
export function heldBytesOf(message: BrokerMessage): number {
  return message.payload.length + message.topic.length;
}

export class Session {
  /** By filter; kept in step with the broker's subscription index (which replaces it when dropping them). */
  subscriptions = new Map<string, Subscription>();
  /** The units of those subscriptions, in step with them. */
  subscriptionUnits = 0;
  /** QoS 1 messages waiting for delivery: the client is offline or its in-flight window is full. */
  readonly queue: BrokerMessage[] = [];
  /** QoS 1 messages sent and not yet acknowledged, by packet id. */
  readonly inflight = new Map<number, BrokerMessage>();
  /** Bytes of the queued and in-flight messages (heldBytesOf each). */
  heldBytes = 0;
  /** QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL. */
  readonly inboundQos2 = new Set<number>();
  /** Whether the session outlives the connection. */
  persistent = false;
  /** MQTT 5 session expiry in seconds after disconnect (0xFFFFFFFF: never); undefined for 3.1.1. */
  expirySeconds: number | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  #nextPacketId = 1;

  constructor(
    readonly clientId: string,
    /** Whose session it is: the access control asks for this user's rights at delivery. */
    readonly username: string | undefined = undefined,
  ) {}

  /** A packet id not in flight, or undefined when all 65535 are. */
  allocatePacketId(): number | undefined {
    for (let tries = 0; tries < 65_535; tries++) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 65_535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    return undefined;
  }

  enqueue(message: BrokerMessage): void {
    this.queue.push(message);
    this.heldBytes += heldBytesOf(message);
  }

  /** Takes the oldest queued message, or undefined when none is queued. */
  dequeue(): BrokerMessage | undefined {
    const message = this.queue.shift();
    if (message !== undefined) this.heldBytes -= heldBytesOf(message);
    return message;
  }

  /** Takes the queued messages `drop` picks out, the rest keeping their order; returns those taken. */
  removeQueued(drop: (message: BrokerMessage) => boolean): BrokerMessage[] {
    const removed: BrokerMessage[] = [];
    let kept = 0;
    for (const message of this.queue) {
      if (drop(message)) {
        removed.push(message);
        this.heldBytes -= heldBytesOf(message);
      } else {
        this.queue[kept++] = message;
      }
    }
    this.queue.length = kept;
    return removed;
  }

  setInflight(messageId: number, message: BrokerMessage): void {
    this.inflight.set(messageId, message);
    this.heldBytes += heldBytesOf(message);
  }

  /** The message in flight under `messageId` is acknowledged (or abandoned). */
  releaseInflight(messageId: number): void {
    const message = this.inflight.get(messageId);
    if (message === undefined) return;
    this.inflight.delete(messageId);
    this.heldBytes -= heldBytesOf(message);
  }
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  /** `onDelete` lets go of what others hold for a session (subscriptions, queued bytes). */
  constructor(private readonly onDelete: (session: Session) => void) {}

  get(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  create(clientId: string, username: string | undefined): Session {
    this.delete(clientId);
    const session = new Session(clientId, username);
    this.#sessions.set(clientId, session);
    return session;
  }

  delete(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session === undefined) return;
    clearTimeout(session.expiryTimer);
    this.#sessions.delete(clientId);
    this.onDelete(session);
  }

  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  get size(): number {
    return this.#sessions.size;
  }

  clear(): void {
    for (const session of this.#sessions.values()) {
      clearTimeout(session.expiryTimer);
      this.onDelete(session);
    }
    this.#sessions.clear();
  }
}
