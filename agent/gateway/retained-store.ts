// Retained messages, one per topic name, bounded in count and bytes (payload and topic). An empty payload
// clears a topic.

import { topicMatches } from '../core/topic-match.js';
import { type BrokerMessage, heldBytesOf } from './session-store.js';

export class RetainedStore {
  readonly #messages = new Map<string, BrokerMessage>();
  #bytes = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.#messages.size;
  }

  /** Stores (or clears, for an empty payload) the topic's retained message; false when over a bound. */
  set(message: BrokerMessage): boolean {
    const previous = this.#messages.get(message.topic);
    if (message.payload.length === 0) {
      if (previous !== undefined) this.#remove(previous);
      return true;
    }
    const addedBytes = heldBytesOf(message) - (previous === undefined ? 0 : heldBytesOf(previous));
    const addedCount = previous === undefined ? 1 : 0;
    if (this.#messages.size + addedCount > this.maxMessages || this.#bytes + addedBytes > this.maxBytes) {
      return false;
    }
    this.#messages.set(message.topic, { ...message, retain: true });
    this.#bytes += addedBytes;
    return true;
  }

  /** The retained messages whose topic matches `filter`. */
  match(filter: string): BrokerMessage[] {
    const found: BrokerMessage[] = [];
    for (const message of this.#messages.values())
      if (topicMatches(filter, message.topic)) found.push(message);
    return found;
  }

  clear(): void {
    this.#messages.clear();
    this.#bytes = 0;
  }

  #remove(message: BrokerMessage): void {
    this.#messages.delete(message.topic);
    this.#bytes -= heldBytesOf(message);
  }
}
