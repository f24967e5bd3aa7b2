// The app inbox as apps use it: consumers take what waits for them (oldest first), then new messages as
// they are stored, a window at a time, and say what they took; a message goes once every registered
// consumer has taken it. A peek reads without taking. Expired messages and consumers long unseen go in a
// sweep once a minute.

import type { Counters } from '../../core/counters.js';
import { NearmeshError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { countInboxChanges, noInboxChanges } from './inbox-changes.js';
import type { InboxConsumerInfo, InboxEntry, InboxStats, InboxStore } from './inbox-store.js';

/** Messages handed to one consumer and not yet taken: it says what it took before it gets more. */
const WINDOW = 256;
/** Messages a peek reads per turn. */
const PEEK_PAGE = 256;
const SWEEP_MS = 60_000;
/** Consumer names: letters, digits and `.:_-`, as in an MQTT client id or a service name. */
const CONSUMER_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

export class InboxConsumerBusyError extends NearmeshError {
  constructor(name: string) {
    super(
      'consumer-busy',
      `inbox consumer "${name}" is already taking messages (another listen?); name another consumer for a copy of its own, or peek`,
    );
  }
}

export class InboxConsumerNameError extends NearmeshError {
  constructor(name: string) {
    super(
      'bad-consumer-name',
      `inbox consumer name ${JSON.stringify(name)}: expected 1-128 of A-Z a-z 0-9 . : _ -`,
    );
  }
}

/** What a consumer is handed: each entry once, in order; `take` says it has them up to an id. */
export interface InboxConsumption {
  take(upTo: number): void;
  stop(): void;
}

export interface AppInboxOptions {
  store: InboxStore;
  counters: Counters;
  log: Logger;
  now?: () => number;
}

interface Session {
  readonly name: string | undefined;
  readonly listener: (entry: InboxEntry) => void;
  /** The id of the last entry handed over. */
  sentUpTo: number;
  /** Ids handed over and not yet taken, in order. */
  readonly unacked: number[];
  stopped: boolean;
  paging: boolean;
  /** Handing over now; asked again meanwhile. */
  pumping: boolean;
  pumpAgain: boolean;
}

export class AppInbox {
  readonly #store: InboxStore;
  readonly #counters: Counters;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #sessions = new Set<Session>();
  /** What consumers took this turn, recorded together at its end (one write for many takes). */
  readonly #taken = new Map<string, number>();
  #recording: NodeJS.Immediate | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: AppInboxOptions) {
    this.#store = options.store;
    this.#counters = options.counters;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.sweep();
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  stop(): void {
    clearInterval(this.#sweeper);
    this.#recordTaken();
    for (const session of this.#sessions) session.stopped = true;
    this.#sessions.clear();
  }

  /**
   * Hands `consumer` what waits for it, oldest first, then each new message as it is stored; `take(id)`
   * removes its claim on everything up to `id`. Without a consumer, a peek: everything waiting, then new
   * ones, nothing taken. Throws InboxConsumerBusyError when the consumer is already taking.
   */
  consume(consumer: string | undefined, listener: (entry: InboxEntry) => void): InboxConsumption {
    this.#recordTaken();
    let start = 0;
    if (consumer !== undefined) {
      if (!CONSUMER_NAME.test(consumer)) throw new InboxConsumerNameError(consumer);
      for (const other of this.#sessions)
        if (other.name === consumer) throw new InboxConsumerBusyError(consumer);
      start = this.#store.register(consumer, this.#now()).takenUpTo;
    }
    const session: Session = {
      name: consumer,
      listener,
      sentUpTo: start,
      unacked: [],
      stopped: false,
      paging: false,
      pumping: false,
      pumpAgain: false,
    };
    this.#sessions.add(session);
    // After this returns: a listener may use what it returns (take, stop) from the first message on.
    queueMicrotask(() => this.#pump(session));
    return {
      take: (upTo) => this.#take(session, upTo),
      stop: () => {
        session.stopped = true;
        this.#sessions.delete(session);
      },
    };
  }

  /** A message was stored: every consumer with room gets it. */
  stored(): void {
    for (const session of this.#sessions) this.#pump(session);
  }

  /** Waiting messages, oldest first, optionally only from one sender or since a time; nothing taken. */
  list(options: { from?: string; sinceMs?: number; limit: number }): InboxEntry[] {
    const found: InboxEntry[] = [];
    let after = 0;
    for (;;) {
      const page = this.#store.after(after, PEEK_PAGE);
      for (const entry of page) {
        if (options.from !== undefined && entry.from !== options.from) continue;
        if (options.sinceMs !== undefined && entry.receivedAtMs < options.sinceMs) continue;
        found.push(entry);
        if (found.length >= options.limit) return found;
      }
      if (page.length < PEEK_PAGE) return found;
      after = (page[page.length - 1] as InboxEntry).id;
    }
  }

  /** Removes waiting messages up to `upTo` (all without it), whoever still waits for them. */
  clear(upTo?: number): number {
    const removed = this.#store.clear(upTo);
    if (removed > 0) this.#counters.increment('inbox.cleared', removed);
    return removed;
  }

  consumers(): InboxConsumerInfo[] {
    this.#recordTaken();
    return this.#store.consumers();
  }

  /**
   * Forgets a consumer: its cursor no longer holds messages. False when there was none; throws
   * InboxConsumerBusyError while it is taking messages (its listen goes first).
   */
  forget(name: string): boolean {
    for (const session of this.#sessions) if (session.name === name) throw new InboxConsumerBusyError(name);
    this.#recordTaken();
    return this.#store.forget(name);
  }

  stats(): InboxStats {
    this.#recordTaken();
    return this.#store.stats();
  }

  sweep(): void {
    this.#recordTaken();
    const changes = noInboxChanges();
    try {
      this.#store.sweep(this.#now(), changes);
    } catch (error) {
      this.#log.warn({ err: error }, 'app inbox: sweep failed');
      return;
    }
    countInboxChanges(this.#counters, changes);
    if (changes.consumersForgotten > 0)
      this.#log.warn(
        { forgotten: changes.consumersForgotten },
        'app inbox: forgot consumers not seen for too long',
      );
  }

  #take(session: Session, upTo: number): void {
    if (session.stopped || session.name === undefined || !Number.isSafeInteger(upTo)) return;
    let taken = 0;
    while (taken < session.unacked.length && (session.unacked[taken] as number) <= upTo) taken++;
    if (taken === 0) return;
    const last = session.unacked[taken - 1] as number;
    session.unacked.splice(0, taken);
    this.#taken.set(session.name, last);
    this.#recording ??= setImmediate(() => this.#recordTaken());
    this.#pump(session);
  }

  /** Writes down what consumers took this turn (at its end, or before anything reads the cursors). */
  #recordTaken(): void {
    if (this.#recording !== undefined) clearImmediate(this.#recording);
    this.#recording = undefined;
    const now = this.#now();
    for (const [name, upTo] of this.#taken) {
      try {
        this.#store.take(name, upTo, now);
      } catch (error) {
        // Still claimed: handed over again after a restart, which the consumer may see as a duplicate.
        this.#log.warn({ consumer: name, err: error }, 'app inbox: cannot record what a consumer took');
      }
    }
    this.#taken.clear();
  }

  /**
   * Hands over what the session has room for; a peek pages through what waits a turn at a time. A listener
   * that takes (or a store) while it is handed a message asks for more: that happens once this pass is done.
   */
  #pump(session: Session): void {
    if (session.stopped || session.paging) return;
    if (session.pumping) {
      session.pumpAgain = true;
      return;
    }
    session.pumping = true;
    try {
      do {
        session.pumpAgain = false;
        this.#handOver(session);
      } while (session.pumpAgain && !session.stopped && !session.paging);
    } finally {
      session.pumping = false;
    }
  }

  #handOver(session: Session): void {
    const room = session.name === undefined ? PEEK_PAGE : WINDOW - session.unacked.length;
    if (room <= 0) return;
    let entries: InboxEntry[];
    try {
      entries = this.#store.after(session.sentUpTo, room);
    } catch (error) {
      this.#log.warn({ err: error }, 'app inbox: cannot read');
      return;
    }
    for (const entry of entries) {
      session.sentUpTo = entry.id;
      if (session.name !== undefined) session.unacked.push(entry.id);
      session.listener(entry);
      if (session.stopped) return;
    }
    if (session.name === undefined && entries.length === room) {
      session.paging = true;
      setImmediate(() => {
        session.paging = false;
        this.#pump(session);
      });
    }
  }
}
