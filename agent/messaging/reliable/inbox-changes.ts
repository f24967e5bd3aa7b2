// What the app inbox turned away or removed in one operation, counted in `status` under inbox.*.
import type { Counters } from '../../core/counters.js';
import type { InboxChanges } from './inbox-store.js';

export function noInboxChanges(): InboxChanges {
  return { refused: 0, droppedOldest: 0, expired: 0, consumersForgotten: 0 };
}

export function countInboxChanges(counters: Counters, changes: InboxChanges): void {
  if (changes.refused > 0) counters.increment('inbox.refused_full', changes.refused);
  if (changes.droppedOldest > 0) counters.increment('inbox.dropped_oldest', changes.droppedOldest);
  if (changes.expired > 0) counters.increment('inbox.expired', changes.expired);
  if (changes.consumersForgotten > 0)
    counters.increment('inbox.consumers_forgotten', changes.consumersForgotten);
}
