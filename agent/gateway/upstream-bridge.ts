// The MQTT upstream bridge: one MQTT 5 connection from this agent to a site or cloud broker, forwarding
// local topics matching `out` up and upstream topics matching `in` down.
//
// Delivery design:
// - A persistent session (clean start off, a session expiry): the upstream keeps our subscriptions and
//   queues QoS 1 messages for us while we are away, so nothing sent to us is lost across a restart of
//   either side within the expiry.
// - Messages to send go through a bounded queue of our own (upstream-outbox.ts); mqtt.js is never handed
//   a publish while disconnected, and unacknowledged QoS 1 messages are resent from its outgoing store
//   after a reconnect: we pass the same store to every reconnect so the resend has them.
// - Loops: what we send carries `nearmesh-origin=<originId>`, we subscribe with no-local, and anything
//   coming back stamped with our id is dropped. Messages received carry their origin, and `forward`
//   refuses messages that have one, so nothing that came from upstream is ever exported again.
// - Reconnects are ours (mqtt.js's fixed-period timer is off): exponential backoff, reset on success.
//   The log gets one line per state change or new kind of error, never one per retry; counters count.

import { Socket } from 'node:net';
import {
  connect,
  type IClientOptions,
  type IConnackPacket,
  type IPublishPacket,
  type MqttClient,
  Store,
} from 'mqtt';
import { Counters } from '../core/counters.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { isValidTopicName, topicMatches } from '../core/topic-match.js';
import { type BridgedMessage, fromUpstreamPublish } from './upstream-message.js';
import {
  type ResolvedUpstreamOptions,
  resolveUpstreamOptions,
  type UpstreamBridgeOptions,
} from './upstream-options.js';
import { UpstreamOutbox } from './upstream-outbox.js';

export type { BridgedMessage, BridgedProperties } from './upstream-message.js';
export { ORIGIN_PROPERTY } from './upstream-message.js';
export type { UpstreamBridgeOptions, UpstreamTlsOptions } from './upstream-options.js';
export { UpstreamConfigError } from './upstream-options.js';

/** What `status` shows; `url` never carries credentials. */
export interface UpstreamBridgeState {
  connected: boolean;
  /** The upstream acknowledged our `in` subscriptions (on this connection or in the resumed session). */
  subscribed: boolean;
  /** Messages waiting in our queue (offline, or behind a full in-flight window). */
  queued: number;
  /** QoS 1 messages sent and not yet acknowledged (resent after a reconnect). */
  inflight: number;
  url: string;
}

export interface UpstreamBridgeEvents {
  /** A message from upstream matching `in`, with the prefix already stripped. */
  message: (message: BridgedMessage) => void;
  /** Connected, subscribed, disconnected, stopped. */
  state: (state: UpstreamBridgeState) => void;
}

/** How long `stop` waits for outstanding acknowledgements before closing anyway. */
const STOP_DRAIN_MS = 2000;

export class UpstreamBridge extends TypedEmitter<UpstreamBridgeEvents> {
  readonly counters: Counters;
  readonly #options: ResolvedUpstreamOptions;
  readonly #log: Logger | undefined;
  readonly #outbox: UpstreamOutbox;
  /** Ours, not mqtt.js's: `reconnect()` would otherwise start from empty stores and lose unacked messages. */
  readonly #stores = { incomingStore: new Store(), outgoingStore: new Store() };
  #client: MqttClient | undefined;
  #connected = false;
  /** Our `in` subscriptions were acknowledged on some connection of this process. */
  #subscribed = false;
  #backoffMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The last error logged: the same error on every retry is logged once. */
  #lastError: string | undefined;

  /** @throws UpstreamConfigError for a bad URL scheme, an invalid filter or prefix, or bad numbers. */
  constructor(options: UpstreamBridgeOptions) {
    super();
    this.#options = resolveUpstreamOptions(options);
    this.counters = options.counters ?? new Counters();
    this.#log = options.log?.child({ component: 'mqtt-upstream', url: this.#options.endpoint.display });
    this.#backoffMs = this.#options.reconnectMinMs;
    this.#outbox = new UpstreamOutbox(this.#options, this.counters);
  }

  /** Starts connecting in the background. Never throws for an unreachable or misbehaving broker. */
  start(): void {
    if (this.#client !== undefined || this.#stopped) return;
    const client = connect(this.#clientOptions());
    client.on('connect', (connack) => this.#onConnect(connack));
    client.on('close', () => this.#onClose());
    client.on('error', (error) => this.#onError(error));
    client.on('disconnect', (packet) =>
      this.#onError(new Error(`upstream sent DISCONNECT, reason code ${packet.reasonCode ?? 0}`)),
    );
    client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet));
    this.#client = client;
    this.#attempt(() => client.connect());
  }

  /**
   * Disconnects cleanly (the upstream keeps our session), after waiting briefly for outstanding
   * acknowledgements. Messages still queued are dropped (counted): the queue lives in memory only.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const dropped = this.#outbox.clear();
    if (dropped > 0) this.counters.increment('mqtt.upstream.dropped_on_stop', dropped);
    const client = this.#client;
    const wasConnected = this.#connected;
    if (client === undefined) return;
    if (wasConnected) await this.#outbox.drain(STOP_DRAIN_MS);
    const graceful = wasConnected && client.connected && this.#outbox.inflight === 0;
    await new Promise<void>((resolve) => {
      // mqtt.js's end() callback can wait on a stream that is already gone; never hang shutdown on it.
      const guard = setTimeout(resolve, STOP_DRAIN_MS);
      client.end(!graceful, {}, () => {
        clearTimeout(guard);
        resolve();
      });
    });
    this.#connected = false;
    if (wasConnected) this.emit('state', this.state());
  }

  /** Whether `forward` would send a message with this local topic upstream. */
  matchesOut(topic: string): boolean {
    return isValidTopicName(topic) && this.#options.out.some((filter) => topicMatches(filter, topic));
  }

  /**
   * Sends a local message upstream if its topic matches `out`; queued while offline. Returns false when
   * it is not for upstream: no `out` match, the bridge is stopped, or `origin` is set (it came from an
   * upstream bridge; exporting it again would loop).
   */
  forward(message: BridgedMessage): boolean {
    if (message.origin !== undefined) {
      this.counters.increment('mqtt.upstream.not_reexported');
      return false;
    }
    if (this.#stopped || !this.matchesOut(message.topic)) return false;
    this.#outbox.push(message);
    return true;
  }

  /**
   * Sends a message of the agent's own upstream whatever the `out` filters say (the site tunnel's frames,
   * which local apps cannot publish); queued while offline like the rest. False when the bridge is stopped.
   */
  publish(message: BridgedMessage): boolean {
    if (this.#stopped || !isValidTopicName(this.#options.remotePrefix + message.topic)) return false;
    this.#outbox.push(message);
    return true;
  }

  state(): UpstreamBridgeState {
    return {
      connected: this.#connected,
      subscribed: this.#connected && this.#subscribed,
      queued: this.#outbox.queued,
      inflight: this.#outbox.inflight,
      url: this.#options.endpoint.display,
    };
  }

  #clientOptions(): IClientOptions {
    const o = this.#options;
    const tls = o.tls ?? {};
    return {
      protocol: o.endpoint.protocol,
      host: o.endpoint.host,
      port: o.endpoint.port,
      clientId: o.clientId,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      rejectUnauthorized: tls.rejectUnauthorized !== false,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: o.sessionExpirySeconds },
      connectTimeout: o.connectTimeoutMs,
      keepalive: 30,
      manualConnect: true,
      reconnectPeriod: 0, // our backoff instead of a fixed period
      resubscribe: false, // we subscribe ourselves, only when the session lacks the subscriptions
      queueQoSZero: false,
      ...(o.will !== undefined && { will: { ...o.will, topic: o.remotePrefix + o.will.topic } }),
      ...this.#stores,
    };
  }

  /** Runs a connect step; a synchronous throw (bad TLS material, say) counts as a failed attempt. */
  #attempt(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
      this.#scheduleRetry();
    }
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer !== undefined) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#options.reconnectMaxMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      const client = this.#client;
      if (this.#stopped || client === undefined) return;
      this.counters.increment('mqtt.upstream.reconnect_attempts');
      this.#attempt(() => client.reconnect(this.#stores));
    }, delay);
    this.#retryTimer.unref(); // the bridge alone never keeps the process alive
  }

  #onConnect(connack: IConnackPacket): void {
    const client = this.#client;
    if (this.#stopped || client === undefined) return;
    this.#connected = true;
    // A call's request and its answer are small publishes right behind an acknowledgement: with Nagle's
    // algorithm each would wait for the broker's delayed ACK (40 ms on Linux), 80 ms and more a round trip.
    if (client.stream instanceof Socket) client.stream.setNoDelay(true);
    this.#backoffMs = this.#options.reconnectMinMs;
    this.#lastError = undefined;
    this.counters.increment('mqtt.upstream.connects');
    this.#log?.info({ sessionPresent: connack.sessionPresent }, 'mqtt upstream connected');
    // A new session has no subscriptions; a resumed one has them, unless this process never subscribed
    // (the `in` filters may have changed since the session was made).
    if (!connack.sessionPresent) this.#subscribed = false;
    if (!this.#subscribed) this.#subscribe(client);
    this.emit('state', this.state());
    this.#outbox.online(client, connack);
  }

  #subscribe(client: MqttClient): void {
    const filters = this.#options.in.map((filter) => this.#options.remotePrefix + filter);
    if (filters.length === 0) {
      this.#subscribed = true;
      return;
    }
    // nl: not our own messages back; rap: keep the retain flag as published, so retained messages stay
    // retained locally; rh 1: retained messages only for a subscription that is new to the session.
    const map = Object.fromEntries(filters.map((f) => [f, { qos: 1 as const, nl: true, rap: true, rh: 1 }]));
    client.subscribe(map, (error) => {
      if (error === null) {
        this.#subscribed = true;
        if (this.#connected) this.emit('state', this.state());
        return;
      }
      this.counters.increment('mqtt.upstream.subscribe_failed');
      // Without a reason code it is the connection closing: the next connect retries.
      if (typeof (error as { code?: unknown }).code === 'number')
        this.#log?.warn({ err: error, filters }, 'mqtt upstream refused our subscriptions');
    });
  }

  #onClose(): void {
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#outbox.offline();
    if (this.#stopped) return;
    if (wasConnected) {
      this.counters.increment('mqtt.upstream.disconnects');
      this.#log?.warn(
        { queued: this.#outbox.queued, inflight: this.#outbox.inflight },
        'mqtt upstream connection lost, reconnecting with backoff',
      );
      this.emit('state', this.state());
    }
    this.#scheduleRetry();
  }

  #onError(error: Error): void {
    if (this.#stopped) return;
    this.counters.increment('mqtt.upstream.errors');
    // Error texts come from net/tls/mqtt.js and carry no credentials.
    if (error.message === this.#lastError) return;
    this.#lastError = error.message;
    this.#log?.warn({ err: error }, 'mqtt upstream error');
  }

  #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.#stopped) return;
    const result = fromUpstreamPublish(topic, payload, packet, {
      prefix: this.#options.remotePrefix,
      filters: this.#options.in,
      originId: this.#options.originId,
    });
    if (typeof result === 'string') {
      this.counters.increment(`mqtt.upstream.dropped_${result}`);
      return;
    }
    this.counters.increment('mqtt.upstream.received');
    try {
      this.emit('message', result);
    } catch (error) {
      // A listener's bug must not break mqtt.js's packet handling (and with it the acknowledgement).
      this.counters.increment('mqtt.upstream.listener_errors');
      this.#log?.warn({ err: error }, 'mqtt upstream message listener failed');
    }
  }
}
