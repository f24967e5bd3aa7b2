// Delivery of messages to sessions: subscriptions (through the subscription index; one member per shared
// group), the retained store, retained messages for a new subscription, and QoS 1 and 2 in flight
// (bounded by a window) or queued while offline or beyond it. Unacknowledged messages, queued or in
// flight, are bounded in bytes per session and in total: the oldest queued go first, then new ones are
// dropped, each drop counted; expired ones are dropped as they come up. QoS 0 messages to a client that
// does not read are dropped (counted) once its share of the unsent bytes is buffered.

import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { Counters } from '../core/counters.js';
import type { TopicAccess } from './access-control.js';
import { ByteBudget } from './byte-budget.js';
import type { RetainedStore } from './retained-store.js';
import {
  type BrokerMessage,
  heldBytesOf,
  isExpired,
  type PublishProperties,
  type Session,
  type Subscription,
  type SubscriptionOptions,
} from './session-store.js';
import { SubscriptionIndex, subscriptionUnits } from './subscription-index.js';

/** A client's share of the unsent bytes is never below this, however many clients there are. */
const MIN_UNSENT_SHARE = 64 * 1024;

/** What delivery needs of a client connection. */
export interface DeliveryTarget {
  readonly socket: { readonly writableLength: number };
  readonly state: 'awaiting-connect' | 'connected' | 'closed';
  readonly version: 4 | 5;
  readonly session: Session | undefined;
  /** MQTT 5: the client's receive maximum. */
  readonly receiveMaximum: number;
  /** False when the client's PUBLISH bytes are its own (server topic aliases): never shared with others. */
  readonly sharesEncodings: boolean;
  /** Encodes and writes a packet; false when it was not sent. */
  send(packet: Packet): boolean;
  /** A packet's bytes for this client; undefined when it cannot be encoded. */
  encode(packet: Packet): Buffer | undefined;
  /** Writes an encoded packet; false when it was not sent. */
  sendEncoded(bytes: Buffer): boolean;
}

export interface DeliveryLimits {
  maxQueuedMessages: number;
  maxInflight: number;
  /** Bytes of unacknowledged QoS 1 messages (queued or in flight) held for one session. */
  maxQueuedBytes: number;
  /** The same, over all sessions. */
  maxQueuedBytesTotal: number;
  maxSubscriptionsPerClient: number;
  maxSubscriptionsTotal: number;
  /** Bytes written to one client's socket and not yet taken by it, before its QoS 0 messages are dropped. */
  maxUnsentBytes: number;
  /** The same over all clients: each client may hold its share of it (at least 64 KiB). */
  maxUnsentBytesTotal: number;
}

/** Who may receive which topics: checked for every message at delivery, as mosquitto does. */
export interface DeliveryAccess {
  readonly access?: TopicAccess;
}

export class Delivery {
  readonly #subscriptions = new SubscriptionIndex();
  readonly #retained: RetainedStore;
  readonly #connections: ReadonlyMap<string, DeliveryTarget>;
  readonly #counters: Counters;
  readonly #limits: DeliveryLimits & DeliveryAccess;
  readonly #heldTotal: ByteBudget;
  /** Counts messages handed to shared subscriptions, to pick each group's least recently picked member. */
  #sharedSequence = 0;

  constructor(
    retained: RetainedStore,
    /** The connected clients, by client id. */
    connections: ReadonlyMap<string, DeliveryTarget>,
    counters: Counters,
    limits: DeliveryLimits & DeliveryAccess,
  ) {
    this.#retained = retained;
    this.#connections = connections;
    this.#counters = counters;
    this.#limits = limits;
    this.#heldTotal = new ByteBudget(limits.maxQueuedBytesTotal);
  }

  /**
   * Adds or replaces a subscription; false (counted) when the session is at its quota of filters, or the
   * broker at its total (those of sessions just gone count until the trie let go of them). Both count in
   * units (see subscriptionUnits).
   */
  subscribe(session: Session, filter: string, topicFilter: string, options: SubscriptionOptions): boolean {
    if (!session.subscriptions.has(filter)) {
      const units = subscriptionUnits(filter);
      if (session.subscriptionUnits + units > this.#limits.maxSubscriptionsPerClient) {
        this.#counters.increment('mqtt.subscriptions_refused');
        return false;
      }
      if (this.#subscriptions.held + units > this.#limits.maxSubscriptionsTotal) {
        this.#counters.increment('mqtt.subscriptions_total_refused');
        return false;
      }
    }
    this.#subscriptions.add(session, filter, topicFilter, options);
    return true;
  }

  /** True when a connected client holds a subscription to exactly `topic` (a filter with no wildcards). */
  hasConnectedSubscriber(topic: string): boolean {
    for (const { session, topicFilter } of this.#subscriptions.match(topic))
      if (topicFilter === topic && this.#connections.get(session.clientId)?.session === session) return true;
    return false;
  }

  /** False when the session had no subscription to `filter`. */
  unsubscribe(session: Session, filter: string): boolean {
    return this.#subscriptions.remove(session, filter);
  }

  /** A session is gone: its subscriptions and held messages go with it. */
  forget(session: Session): void {
    this.#subscriptions.dropSession(session);
    this.#heldTotal.give(session.heldBytes);
    session.queue.length = 0;
    session.inflight.clear();
    session.released.clear();
    session.heldBytes = 0;
  }

  /** Drops every subscription (the broker is closing). */
  clear(): void {
    this.#subscriptions.clear();
  }

  /**
   * Stores a retained message and hands a message to every session with a matching subscription, but
   * those `skip` names; each shared subscription group's to one of its members.
   */
  route(message: BrokerMessage, skip?: (clientId: string) => boolean): void {
    if (message.retain && !this.#retained.set(message)) this.#counters.increment('mqtt.retained_dropped');
    // One delivery per session: at the highest QoS of its matching subscriptions, with the identifiers
    // of all of them (MQTT 5 §3.3.4). Shared subscriptions are apart: one member per group.
    const matched = new Map<Session, Match>();
    let groups: Map<string, Subscription[]> | undefined;
    for (const subscription of this.#subscriptions.match(message.topic)) {
      const { session, options } = subscription;
      if (skip?.(session.clientId) === true) continue;
      if (options.shareGroup !== undefined) {
        const key = `${options.shareGroup}\u0000${subscription.topicFilter}`;
        groups ??= new Map();
        const members = groups.get(key);
        if (members === undefined) groups.set(key, [subscription]);
        else members.push(subscription);
        continue;
      }
      if (options.noLocal && message.origin === session.clientId) continue;
      addMatch(matched, session, subscription);
    }
    // A QoS 0 copy is encoded once per encoding (protocol version, retain, identifiers), then written to
    // each subscriber that shares it.
    const encoded = new Map<string, Buffer>();
    for (const [session, match] of matched) this.#deliverMatch(session, message, match, encoded);
    for (const members of groups?.values() ?? []) {
      const picked = this.#pickMember(members);
      const match: Match = { qos: 0, keepRetain: false };
      addMatchOptions(match, picked.options);
      this.#deliverMatch(picked.session, message, match, encoded);
    }
  }

  #deliverMatch(session: Session, message: BrokerMessage, match: Match, encoded: Map<string, Buffer>): void {
    if (!this.#mayRead(session, message.topic)) return;
    const copy: BrokerMessage = {
      ...message,
      qos: Math.min(message.qos, match.qos) as 0 | 1 | 2,
      retain: message.retain && match.keepRetain,
      ...(match.ids !== undefined && { subscriptionIds: match.ids }),
    };
    this.#deliver(session, copy, encoded);
  }

  /**
   * The member of a shared subscription group to get the next message: the one picked least recently,
   * among those connected if any is (round robin, with no table per group to keep or bound).
   */
  #pickMember(members: readonly Subscription[]): Subscription {
    const connected = members.filter(
      ({ session }) => this.#connections.get(session.clientId)?.session === session,
    );
    const candidates = connected.length > 0 ? connected : members;
    let picked = candidates[0] as Subscription;
    for (const member of candidates) if (member.lastPicked < picked.lastPicked) picked = member;
    picked.lastPicked = ++this.#sharedSequence;
    this.#counters.increment('mqtt.shared_deliveries');
    return picked;
  }

  /**
   * Sends new subscriptions the retained messages matching their filters, at most at each one's QoS: one
   * message per step, so that the caller can spread many over several turns.
   */
  *deliverRetained(session: Session, subscriptions: readonly Subscription[]): Generator<void> {
    for (const { topicFilter, options } of subscriptions) {
      for (const message of this.#retained.match(topicFilter)) {
        if (!this.#mayRead(session, message.topic)) continue;
        const ids = options.subscriptionId === undefined ? {} : { subscriptionIds: [options.subscriptionId] };
        this.#deliver(session, {
          ...message,
          qos: Math.min(message.qos, options.qos) as 0 | 1 | 2,
          retain: true,
          ...ids,
        });
        yield;
      }
    }
  }

  /**
   * A PUBACK (QoS 1), PUBCOMP (QoS 2), or a PUBREC with an error reason: the message leaves the in-flight
   * window, making room for the queue.
   */
  acknowledge(connection: DeliveryTarget, messageId: number | undefined): void {
    const session = connection.session;
    if (session === undefined || messageId === undefined) return;
    const acked = session.inflight.get(messageId)?.onAcked;
    this.#release(session, messageId);
    acked?.();
    this.#drainQueue(connection);
  }

  /**
   * A PUBREC: the client has the QoS 2 message; it stays in flight until PUBCOMP, as a PUBREL. False when
   * no QoS 2 message is in flight under that id (answered with PUBREL "packet identifier not found").
   */
  received(connection: DeliveryTarget, messageId: number): boolean {
    const session = connection.session;
    if (session === undefined || session.inflight.get(messageId)?.qos !== 2) return false;
    session.released.add(messageId);
    return true;
  }

  /**
   * Hands a connected session a message (a copy from the app inbox); false when its client is not
   * connected or its user may not read it.
   */
  deliverTo(session: Session, message: BrokerMessage): boolean {
    if (this.#connections.get(session.clientId)?.session !== session) return false;
    if (!this.#mayRead(session, message.topic)) return false;
    this.#deliver(session, message);
    return true;
  }

  /** Drops the app inbox's copies a session holds, queued or in flight: its client went. */
  dropInboxCopies(session: Session): void {
    for (const [messageId, message] of session.inflight)
      if (message.onAcked !== undefined) this.#release(session, messageId);
    for (const message of session.removeQueued((queued) => queued.onAcked !== undefined))
      this.#heldTotal.give(heldBytesOf(message));
  }

  /**
   * Resumes a session: unacknowledged messages again (DUP set), a PUBREL for each QoS 2 message the client
   * had received, then the queue.
   */
  resume(connection: DeliveryTarget, session: Session): void {
    for (const [messageId, message] of session.inflight) {
      if (session.released.has(messageId)) connection.send({ cmd: 'pubrel', messageId });
      else this.#sendPublish(connection, message, messageId, true);
    }
    this.#drainQueue(connection);
  }

  #deliver(session: Session, message: BrokerMessage, encoded?: Map<string, Buffer>): void {
    if (isExpired(message)) {
      this.#counters.increment('mqtt.expired_dropped');
      return;
    }
    const connection = this.#connections.get(session.clientId);
    if (connection === undefined || connection.session !== session) {
      if (message.qos > 0 && session.persistent) this.#enqueue(session, message);
      else this.#counters.increment('mqtt.offline_dropped');
      return;
    }
    if (message.qos === 0) {
      if (connection.socket.writableLength + heldBytesOf(message) > this.#unsentShare()) {
        this.#counters.increment('mqtt.backpressure_dropped');
        return;
      }
      this.#sendQos0(connection, message, encoded);
      return;
    }
    if (session.inflight.size >= this.#window(connection) || session.queue.length > 0) {
      this.#enqueue(session, message);
      this.#drainQueue(connection);
      return;
    }
    if (this.#makeRoom(session, heldBytesOf(message))) this.#sendQos1(connection, session, message);
  }

  /** Unsent bytes one client may hold: its share of the total among the connected clients. */
  #unsentShare(): number {
    const share = Math.max(
      MIN_UNSENT_SHARE,
      this.#limits.maxUnsentBytesTotal / Math.max(1, this.#connections.size),
    );
    return Math.min(this.#limits.maxUnsentBytes, share);
  }

  /** False (counted) when the session's user may not read `topic`, whatever its subscriptions match. */
  #mayRead(session: Session, topic: string): boolean {
    const access = this.#limits.access;
    if (access === undefined || access.mayRead(session, topic)) return true;
    this.#counters.increment('mqtt.acl_denied_deliver');
    return false;
  }

  #enqueue(session: Session, message: BrokerMessage): void {
    if (session.queue.length >= this.#limits.maxQueuedMessages)
      this.#dropOldest(session, 'mqtt.queue_dropped');
    if (this.#makeRoom(session, heldBytesOf(message))) session.enqueue(message);
  }

  /**
   * Takes `bytes` more for `session` from its bound and the total, dropping its oldest queued messages
   * to make room; false (the new message is dropped, counted) when they cannot fit.
   */
  #makeRoom(session: Session, bytes: number): boolean {
    const max = this.#limits.maxQueuedBytes;
    while (session.heldBytes + bytes > max && session.queue.length > 0)
      this.#dropOldest(session, 'mqtt.queue_dropped');
    if (session.heldBytes + bytes > max) {
      this.#counters.increment('mqtt.queue_dropped');
      return false;
    }
    while (!this.#heldTotal.take(bytes)) {
      if (session.queue.length === 0) {
        this.#counters.increment('mqtt.queue_total_dropped');
        return false;
      }
      this.#dropOldest(session, 'mqtt.queue_total_dropped');
    }
    return true;
  }

  #dropOldest(session: Session, counter: string): void {
    const message = session.dequeue();
    if (message === undefined) return;
    this.#heldTotal.give(heldBytesOf(message));
    this.#counters.increment(counter);
  }

  /** A message in flight leaves the session: acknowledged, or undeliverable. */
  #release(session: Session, messageId: number): void {
    const message = session.inflight.get(messageId);
    if (message === undefined) return;
    session.releaseInflight(messageId);
    this.#heldTotal.give(heldBytesOf(message));
  }

  #window(connection: DeliveryTarget): number {
    return Math.min(this.#limits.maxInflight, connection.receiveMaximum);
  }

  #drainQueue(connection: DeliveryTarget): void {
    const session = connection.session;
    if (session === undefined || connection.state !== 'connected') return;
    while (session.queue.length > 0 && session.inflight.size < this.#window(connection)) {
      const message = session.dequeue() as BrokerMessage;
      if (isExpired(message)) {
        this.#heldTotal.give(heldBytesOf(message));
        this.#counters.increment('mqtt.expired_dropped');
        continue;
      }
      this.#sendQos1(connection, session, message);
    }
  }

  /** Sends a QoS 1 or 2 message whose bytes the session already holds (taken by #makeRoom). */
  #sendQos1(connection: DeliveryTarget, session: Session, message: BrokerMessage): void {
    const messageId = session.allocatePacketId();
    if (messageId === undefined) {
      session.enqueue(message);
      return;
    }
    session.setInflight(messageId, message);
    this.#sendPublish(connection, message, messageId, false);
  }

  /** Sends a QoS 0 message, with bytes from `encoded` when another subscriber had the same. */
  #sendQos0(connection: DeliveryTarget, message: BrokerMessage, encoded?: Map<string, Buffer>): void {
    const ids = message.subscriptionIds;
    const key = !connection.sharesEncodings
      ? undefined
      : ids === undefined
        ? `${connection.version}:${message.retain}`
        : `${connection.version}:${message.retain}:${ids.join(',')}`;
    let bytes = key === undefined ? undefined : encoded?.get(key);
    if (bytes === undefined) {
      bytes = connection.encode(publishPacket(connection.version, message, undefined, false));
      if (bytes === undefined) return;
      if (key !== undefined) encoded?.set(key, bytes);
    }
    this.#counters.increment('mqtt.messages_out');
    connection.sendEncoded(bytes);
  }

  #sendPublish(
    connection: DeliveryTarget,
    message: BrokerMessage,
    messageId: number | undefined,
    dup: boolean,
  ): void {
    this.#counters.increment('mqtt.messages_out');
    const session = connection.session;
    const packet = publishPacket(connection.version, message, messageId, dup);
    if (!connection.send(packet) && messageId !== undefined && session !== undefined) {
      // Too large for this client: it can never be delivered, so it must not stay in flight.
      this.#release(session, messageId);
    }
  }
}

interface Match {
  qos: 0 | 1 | 2;
  keepRetain: boolean;
  /** Subscription identifiers, when any matching subscription has one. */
  ids?: number[];
}

function addMatch(matched: Map<Session, Match>, session: Session, subscription: Subscription): void {
  let match = matched.get(session);
  if (match === undefined) {
    match = { qos: 0, keepRetain: false };
    matched.set(session, match);
  }
  addMatchOptions(match, subscription.options);
}

function addMatchOptions(match: Match, options: SubscriptionOptions): void {
  if (options.qos > match.qos) match.qos = options.qos;
  match.keepRetain ||= options.retainAsPublished;
  if (options.subscriptionId === undefined) return;
  if (match.ids === undefined) match.ids = [options.subscriptionId];
  else match.ids.push(options.subscriptionId);
}

function publishPacket(
  version: 4 | 5,
  message: BrokerMessage,
  messageId: number | undefined,
  dup: boolean,
): IPublishPacket {
  return {
    cmd: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    retain: message.retain,
    dup,
    ...(messageId === undefined ? {} : { messageId }),
    ...(version === 5 && publishProperties(message)),
  };
}

/**
 * A message's MQTT 5 properties as sent: its Message Expiry Interval counted down by the time it waited
 * here (§3.3.2.3.3), and the identifiers of the subscriptions it came by.
 */
function publishProperties(message: BrokerMessage): { properties?: PublishProperties } {
  if (message.expiresAt === undefined && message.subscriptionIds === undefined)
    return message.properties === undefined ? {} : { properties: message.properties };
  const properties: PublishProperties = { ...message.properties };
  if (message.expiresAt !== undefined)
    properties.messageExpiryInterval = Math.max(1, Math.ceil((message.expiresAt - Date.now()) / 1000));
  if (message.subscriptionIds !== undefined && message.subscriptionIds.length > 0)
    properties.subscriptionIdentifier =
      message.subscriptionIds.length === 1
        ? (message.subscriptionIds[0] as number)
        : [...message.subscriptionIds];
  return { properties };
}
