// Which subscriptions match a topic: a topic trie (qlobber, the one aedes uses), so routing a message
// costs the depth of its topic, not the number of subscriptions held. A dropped session's subscriptions
// leave the trie a batch per event-loop turn, so a client with a huge number of filters cannot stall the
// agent when it goes; until then they are in the trie but no longer live, and never match.
// What the index holds is counted in units: a filter counts once per SUBSCRIPTION_LEVELS_PER_UNIT levels
// begun, because the trie's memory grows with the levels of filters unlike any other.
import { QlobberDedup } from 'qlobber';
import { topicLevels } from '../core/topic-match.js';
import { SUBSCRIPTION_LEVELS_PER_UNIT } from './config.js';
import type { Session, Subscription, SubscriptionOptions } from './session-store.js';

/** What `filter` counts as against the subscription quotas. */
export function subscriptionUnits(filter: string): number {
  return Math.ceil(topicLevels(filter) / SUBSCRIPTION_LEVELS_PER_UNIT);
}

/** Trie removals per event-loop turn: about 2 µs each, so a few milliseconds a turn. */
const REMOVALS_PER_TURN = 1000;

export class SubscriptionIndex {
  readonly #trie = new QlobberDedup<Subscription>({
    separator: '/',
    wildcard_one: '+',
    wildcard_some: '#', // also matches the parent level: `a/#` matches `a`, as MQTT says
    match_empty_levels: true, // `+` matches an empty level: `a/+` matches `a/`
  });
  /** Subscriptions of dropped sessions still in the trie: what is left of each dropped session's map. */
  readonly #toRemove: Iterator<Subscription>[] = [];
  /** Units of the subscriptions still to be taken out of the trie. */
  #pendingUnits = 0;
  /** Units of the subscriptions of live sessions. */
  #liveUnits = 0;
  #removal: NodeJS.Immediate | undefined;

  /** Units of the subscriptions still to be taken out of the trie. */
  get pendingRemovals(): number {
    return this.#pendingUnits;
  }

  /** Units in the trie: those of live sessions and those still to be taken out. */
  get held(): number {
    return this.#liveUnits + this.#pendingUnits;
  }

  /**
   * Adds or replaces the session's subscription to `filter` (as subscribed, a share prefix included),
   * matching topics with `topicFilter`.
   */
  add(session: Session, filter: string, topicFilter: string, options: SubscriptionOptions): void {
    const previous = session.subscriptions.get(filter);
    const units = previous?.units ?? subscriptionUnits(filter);
    if (previous !== undefined) {
      this.#trie.remove(previous.topicFilter, previous);
    } else {
      this.#liveUnits += units;
      session.subscriptionUnits += units;
    }
    const subscription: Subscription = { session, filter, topicFilter, options, units, lastPicked: 0 };
    session.subscriptions.set(filter, subscription);
    this.#trie.add(topicFilter, subscription);
  }

  /** Removes the session's subscription to `filter`; false when there was none. */
  remove(session: Session, filter: string): boolean {
    const subscription = session.subscriptions.get(filter);
    if (subscription === undefined) return false;
    session.subscriptions.delete(filter);
    this.#trie.remove(subscription.topicFilter, subscription);
    this.#liveUnits -= subscription.units;
    session.subscriptionUnits -= subscription.units;
    return true;
  }

  /** The live subscriptions whose filter matches `topic` (a valid topic name). */
  *match(topic: string): Generator<Subscription> {
    // Topics starting with `$` are not matched by a filter whose first level is a wildcard (§4.7.2).
    const dollar = topic.startsWith('$');
    for (const subscription of this.#trie.match(topic)) {
      const { session, filter, topicFilter } = subscription;
      if (session.subscriptions.get(filter) !== subscription) continue; // dropped, not yet removed
      if (dollar && (topicFilter.startsWith('+') || topicFilter.startsWith('#'))) continue;
      yield subscription;
    }
  }

  /** Forgets all of a session's subscriptions now; the trie lets go of them over the next turns. */
  dropSession(session: Session): void {
    const dropped = session.subscriptions;
    if (dropped.size === 0) return;
    // The map itself goes to the removal queue: copying or clearing it would be work in proportion too.
    session.subscriptions = new Map();
    this.#toRemove.push(dropped.values());
    this.#liveUnits -= session.subscriptionUnits;
    this.#pendingUnits += session.subscriptionUnits;
    session.subscriptionUnits = 0;
    this.#removal ??= setImmediate(() => this.#removeBatch());
  }

  clear(): void {
    this.#trie.clear();
    this.#toRemove.length = 0;
    this.#pendingUnits = 0;
    this.#liveUnits = 0;
    if (this.#removal !== undefined) clearImmediate(this.#removal);
    this.#removal = undefined;
  }

  #removeBatch(): void {
    let budget = REMOVALS_PER_TURN;
    while (budget > 0 && this.#toRemove.length > 0) {
      const next = (this.#toRemove[0] as Iterator<Subscription>).next();
      if (next.done === true) {
        this.#toRemove.shift();
        continue;
      }
      this.#trie.remove(next.value.topicFilter, next.value);
      this.#pendingUnits -= next.value.units;
      budget--;
    }
    this.#removal = this.#toRemove.length > 0 ? setImmediate(() => this.#removeBatch()) : undefined;
  }
}
