// In-memory MQTT sessions: subscriptions, QoS 1 and 2 messages in flight and queued while the client is
// offline (bounded by delivery), QoS 2 packet ids received but not yet released, a will waiting for its
// delay. Nothing survives a restart of the agent; a reconnecting client resumes all of it.
import type { IPublishPacket } from 'mqtt-packet';
import { longTimeout } from '../core/long-timeout.js';

export type PublishProperties = NonNullable<IPublishPacket['properties']>;

export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** MQTT 5 properties forwarded to MQTT 5 subscribers (never topic alias or subscription ids). */
  properties?: PublishProperties;
  /** When its Message Expiry Interval runs out (Date.now() milliseconds); undefined: never. */
  expiresAt?: number;
  /** MQTT 5: the identifiers of the receiving session's subscriptions that matched it. */
  subscriptionIds?: readonly number[];
  /** Client id of the publisher, for the MQTT 5 no-local option; undefined for agent-side publishes. */
  origin?: string;
  /**
   * A copy handed to one session from the app inbox: called when its client acknowledges it. Such copies
   * are dropped when the client goes (the inbox hands them over again), never kept for its return.
   */
  onAcked?: () => void;
}

export interface SubscriptionOptions {
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  /** MQTT 5 Subscription Identifier, echoed in every PUBLISH this subscription brings. */
  subscriptionId?: number;
  /** The group of a shared subscription (`$share/<group>/<filter>`): one member of it gets each message. */
  shareGroup?: string;
}

export interface Subscription {
  readonly session: Session;
  /** The filter as subscribed (with its `$share/<group>/` prefix): the session's key for it. */
  readonly filter: string;
  /** The topic filter it matches with (the filter without a share prefix). */
  readonly topicFilter: string;
  readonly options: SubscriptionOptions;
  /** What it counts as against the subscription quotas (see subscriptionUnits). */
  readonly units: number;
  /** A shared subscription: the delivery sequence number of the last message it was picked for. */
  lastPicked: number;
}

/** True when the message's Message Expiry Interval has run out by `now`. */
export function isExpired(message: BrokerMessage, now: number = Date.now()): boolean {
  return message.expiresAt !== undefined && message.expiresAt <= now;
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
  /** QoS 1 and 2 messages sent and not yet acknowledged (PUBACK, PUBCOMP), by packet id. */
  readonly inflight = new Map<number, BrokerMessage>();
  /** QoS 2 packet ids in flight whose PUBREC came (PUBREL sent): PUBREL again on resume, not PUBLISH. */
  readonly released = new Set<number>();
  /** Bytes of the queued and in-flight messages (heldBytesOf each). */
  heldBytes = 0;
  /** QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL. */
  readonly inboundQos2 = new Set<number>();
  /** Whether the session outlives the connection. */
  persistent = false;
  /** MQTT 5 session expiry in seconds after disconnect (0xFFFFFFFF: never); undefined for 3.1.1. */
  expirySeconds: number | undefined;
  /** Stops the session's expiry clock, while one runs (the client is away). */
  cancelExpiry: (() => void) | undefined;
  /** A will waiting for its Will Delay Interval: the client may come back before it is published. */
  #pendingWill: { cancel: () => void; publish: () => void } | undefined;
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
    this.released.delete(messageId);
    this.heldBytes -= heldBytesOf(message);
  }

  /** Publishes the client's will after `delayMs`, unless the client comes back first or the session ends. */
  delayWill(delayMs: number, publish: () => void): void {
    this.cancelWill();
    this.#pendingWill = { cancel: longTimeout(delayMs, () => this.publishPendingWill()), publish };
  }

  /** The client came back before its will's delay passed: the will is not published (§3.1.3.2.2). */
  cancelWill(): void {
    this.#pendingWill?.cancel();
    this.#pendingWill = undefined;
  }

  /** The will's delay passed, or the session ends before it did: the will goes now. */
  publishPendingWill(): void {
    const will = this.#pendingWill;
    this.cancelWill();
    will?.publish();
  }

  /** The client is back, or the session ends: its expiry clock stops. */
  stopExpiry(): void {
    this.cancelExpiry?.();
    this.cancelExpiry = undefined;
  }

  /** The session ends: a will still waiting is published, and its expiry clock stops. */
  end(): void {
    this.publishPendingWill();
    this.stopExpiry();
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
    session.end();
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
      session.cancelWill();
      session.stopExpiry();
      this.onDelete(session);
    }
    this.#sessions.clear();
  }
}
