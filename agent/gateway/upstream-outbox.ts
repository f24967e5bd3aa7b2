// The bridge's send path: one bounded FIFO of messages for upstream, and the in-flight window that
// hands them to mqtt.js while connected.
//
// Why our own queue: mqtt.js queues publishes made while disconnected without any bound. We never call
// publish while offline, so the only thing that grows during an outage is this queue, capped at
// `maxQueued` (oldest dropped and counted). Why a window: once handed over, an unacknowledged QoS 1
// message sits in mqtt.js's outgoing store (which is what resends it after a reconnect); capping
// those at `min(receiveMaximum, 100)` bounds that store too and honours the upstream's flow control.

import type { IConnackPacket, MqttClient } from 'mqtt';
import type { Counters } from '../core/counters.js';
import { type BridgedMessage, publishPacketSize, toUpstreamPublish } from './upstream-message.js';

/** Cap on unacknowledged QoS 1 publishes even when the upstream allows more. */
const MAX_INFLIGHT = 100;

/** What the upstream's CONNACK allows; going beyond it is a protocol error that disconnects us. */
interface UpstreamLimits {
  window: number;
  maxQos: 0 | 1;
  retain: boolean;
  maxPacketSize: number;
}

const UNLIMITED: UpstreamLimits = {
  window: MAX_INFLIGHT,
  maxQos: 1,
  retain: true,
  maxPacketSize: Number.POSITIVE_INFINITY,
};

export class UpstreamOutbox {
  readonly #queue: BridgedMessage[] = [];
  #client: MqttClient | undefined;
  #limits = UNLIMITED;
  #inflight = 0;
  #pumping = false;
  #cleared = false;
  #drained: (() => void) | undefined;

  constructor(
    private readonly config: { maxQueued: number; remotePrefix: string; originId: string },
    private readonly counters: Counters,
  ) {}

  /** Messages waiting for a connection or for room in the in-flight window. */
  get queued(): number {
    return this.#queue.length;
  }

  /** QoS 1 messages handed to mqtt.js and not acknowledged yet. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Queues a message for upstream (dropping the oldest when full) and sends what it can. */
  push(message: BridgedMessage): void {
    if (this.#cleared) return;
    this.#queue.push(message);
    this.#trim();
    this.#pump();
  }

  /** The connection is up (mqtt.js has already resent its stored in-flight messages): send in order. */
  online(client: MqttClient, connack: IConnackPacket): void {
    const server = connack.properties ?? {};
    this.#limits = {
      window: Math.min(MAX_INFLIGHT, server.receiveMaximum ?? MAX_INFLIGHT),
      maxQos: server.maximumQoS === 0 ? 0 : 1,
      retain: server.retainAvailable !== false,
      maxPacketSize: server.maximumPacketSize ?? Number.POSITIVE_INFINITY,
    };
    this.#client = client;
    this.#pump();
  }

  /** The connection is gone: keep queueing. In-flight messages stay in mqtt.js's store for the resend. */
  offline(): void {
    this.#client = undefined;
  }

  /** Stops sending and empties the queue (memory only); returns how many messages were dropped. */
  clear(): number {
    this.#client = undefined;
    this.#cleared = true;
    return this.#queue.splice(0).length;
  }

  /** Resolves when nothing is in flight, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#inflight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#drained = undefined;
  }

  #trim(): void {
    while (this.#queue.length > this.config.maxQueued) {
      this.#queue.shift();
      this.counters.increment('mqtt.upstream.dropped_queue_full');
    }
  }

  /** Hands queued messages to mqtt.js in order while connected and the in-flight window has room. */
  #pump(): void {
    if (this.#pumping) return; // QoS 0 callbacks run synchronously inside publish(): no recursion
    this.#pumping = true;
    try {
      for (;;) {
        const client = this.#client;
        const next = this.#queue[0];
        if (client?.connected !== true || next === undefined) break;
        if (next.qos === 1 && this.#inflight >= this.#limits.window) break;
        this.#queue.shift();
        this.#publish(client, next);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #publish(client: MqttClient, message: BridgedMessage): void {
    const { topic, options } = toUpstreamPublish(message, this.config.remotePrefix, this.config.originId);
    // mqtt.js does not check the upstream's Maximum Packet Size: an oversize PUBLISH would get us
    // disconnected, then be resent from the store after the reconnect, forever.
    if (publishPacketSize(topic, message.payload, options) > this.#limits.maxPacketSize) {
      this.counters.increment('mqtt.upstream.dropped_too_large');
      return;
    }
    // Degrade rather than break the connection when the upstream supports less (QoS 0 only, no retain).
    const qos: 0 | 1 = message.qos === 1 && this.#limits.maxQos === 1 ? 1 : 0;
    options.qos = qos;
    options.retain = message.retain && this.#limits.retain;
    if (qos === 1) this.#inflight++;
    client.publish(topic, message.payload, options, (error) => this.#published(message, qos, error));
  }

  #published(message: BridgedMessage, qos: 0 | 1, error: Error | undefined): void {
    if (qos === 1) this.#inflight--;
    if (error === undefined || error === null) {
      this.counters.increment('mqtt.upstream.forwarded');
    } else if (typeof (error as { code?: unknown }).code === 'number') {
      // The upstream answered with a failure reason (not authorized, quota ...): resending cannot help.
      this.counters.increment('mqtt.upstream.rejected');
    } else if (!this.#cleared) {
      // mqtt.js gave up on it locally (connection closed before it was stored): again, first in line.
      this.counters.increment('mqtt.upstream.requeued');
      this.#queue.unshift(message);
      this.#trim();
    }
    if (this.#inflight === 0) this.#drained?.();
    this.#pump();
  }
}
