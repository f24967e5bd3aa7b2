// The app inbox as the agent API offers it: `listen` (the inbox's reliable messages for a consumer, and
// best-effort ones live), the inbox's status and consumers, listing and clearing.
import type { AppMessage, InboxReport, InboxStatus, ListenOptions, ListenStarted, Running } from '../api.js';
import type { LinkManager } from '../links/link-manager.js';
import type { Messenger } from '../messaging/messenger.js';
import type { AppInbox } from '../messaging/reliable/app-inbox.js';
import type { InboxEntry, InboxLimits } from '../messaging/reliable/inbox-store.js';

/** The consumer `listen` takes messages for when it names none. */
export const DEFAULT_CONSUMER = 'listen';

export interface InboxApiParts {
  inbox: AppInbox;
  limits: InboxLimits;
  links: LinkManager;
  messenger: Messenger;
  /** A peer's name where the mesh knows it, else its id. */
  nameOf: (peer: string) => string;
}

export function inboxStatus(parts: InboxApiParts): InboxStatus {
  const stats = parts.inbox.stats();
  return {
    messages: stats.messages,
    bytes: stats.bytes,
    oldest_at: stats.oldestAtMs === null ? null : new Date(stats.oldestAtMs).toISOString(),
    consumers: stats.consumers,
    max_messages: parts.limits.maxMessages,
    max_bytes: parts.limits.maxBytes,
    when_full: parts.limits.whenFull,
  };
}

export function inboxReport(parts: InboxApiParts): InboxReport {
  return {
    ...inboxStatus(parts),
    consumer_list: parts.inbox.consumers().map((consumer) => ({
      name: consumer.name,
      taken_up_to: consumer.takenUpTo,
      waiting: consumer.waiting,
      seen_at: new Date(consumer.seenAtMs).toISOString(),
    })),
  };
}

export function inboxList(
  parts: InboxApiParts,
  options: { from?: string | undefined; sinceMs?: number | undefined; limit: number },
): AppMessage[] {
  const from = options.from === undefined ? undefined : parts.messenger.resolvePeer(options.from);
  return parts.inbox
    .list({
      ...(from !== undefined && { from }),
      ...(options.sinceMs !== undefined && { sinceMs: options.sinceMs }),
      limit: options.limit,
    })
    .map((entry) => toAppMessage(parts, entry));
}

/**
 * The inbox's messages for a consumer (or a peek), then best-effort messages as they come. Filters make
 * it a peek: a consumer must take every message, not a selection.
 */
export function listen(
  parts: InboxApiParts,
  options: ListenOptions,
  listener: (message: AppMessage) => void,
): Running<ListenStarted> & { take: (upTo: number) => void } {
  const peek = options.peek === true || options.from !== undefined || options.sinceMs !== undefined;
  const consumer = peek ? undefined : (options.consumer ?? DEFAULT_CONSUMER);
  const from = options.from === undefined ? undefined : parts.messenger.resolvePeer(options.from);
  const wanted = (message: { from: string; receivedAtMs: number }): boolean =>
    (from === undefined || message.from === from) &&
    (options.sinceMs === undefined || message.receivedAtMs >= options.sinceMs);
  const consumption = parts.inbox.consume(consumer, (entry) => {
    if (wanted(entry)) listener(toAppMessage(parts, entry));
  });
  const live = (message: Omit<AppMessage, 'hops'> & { hops?: number }): void => {
    if (wanted(message)) listener({ ...message, hops: message.hops ?? 1 });
  };
  const { links, messenger } = parts;
  links.on('message', live);
  messenger.on('message', live);
  return {
    result: { consumer: consumer ?? null },
    take: (upTo) => consumption.take(upTo),
    stop: () => {
      consumption.stop();
      links.off('message', live);
      messenger.off('message', live);
    },
  };
}

function toAppMessage(parts: InboxApiParts, entry: InboxEntry): AppMessage {
  return {
    from: entry.from,
    fromName: parts.nameOf(entry.from),
    payload: entry.payload,
    receivedAtMs: entry.receivedAtMs,
    hops: entry.hops,
    inboxId: entry.id,
  };
}
