// MQTT persistent sessions as consumers of the app inbox, as mosquitto keeps QoS 1 messages for a
// subscriber that is away. A client whose session outlives it (clean session false, or a session expiry)
// and that subscribes at QoS 1 to a filter matching the inbox topics becomes consumer "mqtt:<client id>":
// while it is connected it gets the inbox's messages from where it left off, QoS 1 and in order, each
// taken when it acknowledges it; while it is away they wait for it in the inbox, across agent restarts
// too. Live copies of reliable messages skip such clients (they get their own). Connecting with a clean
// session discards its state in MQTT, and here forgets the consumer.

import { createHash } from 'node:crypto';
import type { AgentApi, AppMessage } from '../api.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import { topicMatches } from '../core/topic-match.js';
import type { MqttBroker } from './broker.js';
import type { Session, Subscription } from './session-store.js';
import { inboxTopic } from './topic-map.js';

/** What the consumers need of the agent. */
export type InboxPort = Pick<AgentApi, 'listen' | 'inbox' | 'inboxForget'>;

/** The consumer name of a client id: as it is when it is a plain name, else a digest of it. */
function consumerNameOf(clientId: string): string {
  return /^[A-Za-z0-9._-]{1,120}$/.test(clientId)
    ? `mqtt:${clientId}`
    : `mqtt:h.${createHash('sha256').update(clientId).digest('hex').slice(0, 32)}`;
}

/** Whether `filter` takes messages of the inbox: it names nearmesh/inbox/… (a bare `#` does not count). */
function wantsInbox(filter: string): boolean {
  return filter.startsWith('nearmesh/') && topicMatches(filter, inboxTopic('0000000000000000'));
}

/** The user properties an inbox message carries to MQTT 5 subscribers. */
export function inboxProperties(message: AppMessage): { userProperties: Record<string, string> } {
  return {
    userProperties: {
      from_name: message.fromName,
      hops: String(message.hops),
      ...(message.to !== undefined && { to: message.to }),
    },
  };
}

export class MqttInboxConsumers {
  /** Consumer names registered with the inbox (connected or away). */
  readonly #registered = new Set<string>();
  /** Consumptions running, by client id. */
  readonly #running = new Map<string, () => void>();

  constructor(
    private readonly broker: MqttBroker,
    private readonly api: InboxPort,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {}

  /** Learns the consumers registered before, and follows the broker's clients; returns the way out. */
  start(): () => void {
    for (const consumer of this.api.inbox().consumer_list)
      if (consumer.name.startsWith('mqtt:')) this.#registered.add(consumer.name);
    const unsubscribers = [
      this.broker.onHolds((clientId, session, subscriptions) =>
        this.#holds(clientId, session, subscriptions),
      ),
      this.broker.onClientGone((clientId) => this.#gone(clientId)),
    ];
    return () => {
      for (const unsubscribe of unsubscribers) unsubscribe();
      for (const stop of this.#running.values()) stop();
      this.#running.clear();
    };
  }

  /** Whether the client is an inbox consumer: the broker's live copies of reliable messages skip it. */
  isConsumer(clientId: string): boolean {
    return this.#registered.has(consumerNameOf(clientId));
  }

  #holds(clientId: string, session: Session, subscriptions: readonly Subscription[]): void {
    const name = consumerNameOf(clientId);
    if (!session.persistent) {
      if (this.#registered.delete(name)) this.#forget(name);
      return;
    }
    if (this.#running.has(clientId)) return;
    if (!subscriptions.some((held) => held.options.qos >= 1 && wantsInbox(held.filter))) return;
    let take: ((upTo: number) => void) | undefined;
    try {
      const running = this.api.listen({ consumer: name }, (message) => {
        const inboxId = message.inboxId;
        if (inboxId === undefined) return; // best effort: the live copy reaches it like any subscriber
        const handed = this.broker.deliverTo(clientId, {
          topic: inboxTopic(message.from),
          payload: Buffer.from(message.payload),
          qos: 1,
          retain: false,
          properties: inboxProperties(message),
          onAcked: () => take?.(inboxId),
        });
        if (!handed) this.counters.increment('mqtt.inbox_not_handed');
      });
      take = running.take;
      this.#running.set(clientId, running.stop);
      this.#registered.add(name);
    } catch (error) {
      this.log.warn({ err: error, client: clientId }, 'mqtt: cannot hand the inbox to a persistent session');
    }
  }

  #gone(clientId: string): void {
    const stop = this.#running.get(clientId);
    if (stop === undefined) return;
    this.#running.delete(clientId);
    stop();
    // What it was sent and did not acknowledge comes again from the inbox when it is back.
    this.broker.dropInboxCopies(clientId);
  }

  #forget(name: string): void {
    try {
      this.api.inboxForget(name);
    } catch (error) {
      this.log.warn(
        { err: error, consumer: name },
        'mqtt: cannot forget the inbox consumer of a clean session',
      );
    }
  }
}
