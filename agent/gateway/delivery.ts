// Delivery of messages to sessions: matching subscribers, the retained store, retained messages for a
// new subscription, and QoS 1 in flight (bounded by a window) or queued while offline or beyond it.

import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { Counters } from '../core/counters.js';
import { topicMatches } from '../core/topic-match.js';
import type { RetainedStore } from './retained-store.js';
import type { BrokerMessage, Session, SessionStore, SubscriptionOptions } from './session-store.js';

/** Outbound bytes buffered for one slow client before its QoS 0 messages are dropped. */
const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;

/** What delivery needs of a client connection. */
export interface DeliveryTarget {
  readonly socket: { readonly writableLength: number };
  readonly state: 'awaiting-connect' | 'connected' | 'closed';
  readonly version: 4 | 5;
  readonly session: Session | undefined;
  /** MQTT 5: the client's receive maximum. */
  readonly receiveMaximum: number;
  /** Encodes and writes a packet; false when it was not sent. */
  send(packet: Packet): boolean;
}

export interface DeliveryLimits {
  maxQueuedMessages: number;
  maxInflight: number;
}

export class Delivery {
  readonly #sessions: SessionStore;
  readonly #retained: RetainedStore;
  readonly #connectionOf: (clientId: string) => DeliveryTarget | undefined;
  readonly #counters: Counters;
  readonly #limits: DeliveryLimits;

  constructor(
    sessions: SessionStore,
    retained: RetainedStore,
    connectionOf: (clientId: string) => DeliveryTarget | undefined,
    counters: Counters,
    limits: DeliveryLimits,
  ) {
    this.#sessions = sessions;
    this.#retained = retained;
    this.#connectionOf = connectionOf;
    this.#counters = counters;
    this.#limits = limits;
  }

  /** Stores a retained message and hands a message to every session with a matching subscription. */
  route(message: BrokerMessage): void {
    if (message.retain && !this.#retained.set(message)) this.#counters.increment('mqtt.retained_dropped');
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

  /** Sends a new subscription the retained messages matching its filter, at most at its QoS. */
  deliverRetained(session: Session, filter: string, qos: 0 | 1): void {
    for (const message of this.#retained.match(filter)) {
      this.#deliver(session, { ...message, qos: Math.min(message.qos, qos) as 0 | 1, retain: true });
    }
  }

  /** A PUBACK: the message leaves the in-flight window, making room for the queue. */
  acknowledge(connection: DeliveryTarget, messageId: number | undefined): void {
    const session = connection.session;
    if (session === undefined || messageId === undefined) return;
    session.inflight.delete(messageId);
    this.#drainQueue(connection);
  }

  /** Resumes a session: unacknowledged messages again (DUP set), then the queue. */
  resume(connection: DeliveryTarget, session: Session): void {
    for (const [messageId, message] of session.inflight)
      this.#sendPublish(connection, message, messageId, true);
    this.#drainQueue(connection);
  }

  #deliver(session: Session, message: BrokerMessage): void {
    const connection = this.#connectionOf(session.clientId);
    if (connection === undefined || connection.session !== session) {
      if (message.qos === 1 && session.persistent) this.#enqueue(session, message);
      else this.#counters.increment('mqtt.offline_dropped');
      return;
    }
    if (message.qos === 0) {
      if (connection.socket.writableLength > MAX_WRITE_BACKLOG) {
        this.#counters.increment('mqtt.backpressure_dropped');
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
    const dropped = session.enqueue(message, this.#limits.maxQueuedMessages);
    if (dropped > 0) this.#counters.increment('mqtt.queue_dropped', dropped);
  }

  #window(connection: DeliveryTarget): number {
    return Math.min(this.#limits.maxInflight, connection.receiveMaximum);
  }

  #drainQueue(connection: DeliveryTarget): void {
    const session = connection.session;
    if (session === undefined || connection.state !== 'connected') return;
    while (session.queue.length > 0 && session.inflight.size < this.#window(connection)) {
      this.#sendQos1(connection, session, session.queue.shift() as BrokerMessage);
    }
  }

  #sendQos1(connection: DeliveryTarget, session: Session, message: BrokerMessage): void {
    const messageId = session.allocatePacketId();
    if (messageId === undefined) {
      this.#enqueue(session, message);
      return;
    }
    session.inflight.set(messageId, message);
    this.#sendPublish(connection, message, messageId, false);
  }

  #sendPublish(
    connection: DeliveryTarget,
    message: BrokerMessage,
    messageId: number | undefined,
    dup: boolean,
  ): void {
    this.#counters.increment('mqtt.messages_out');
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
    if (!connection.send(packet) && messageId !== undefined) {
      // Too large for this client: it can never be delivered, so it must not stay in flight.
      connection.session?.inflight.delete(messageId);
    }
  }
}
