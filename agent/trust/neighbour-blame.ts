// Which direct neighbours hand over messages whose origin fails authentication (PROTOCOL.md §13.4). Every
// such message is counted against the neighbour; those it must have made itself (a bad signature, which
// every relay checks before forwarding, or a bad tag under its own id) are "attributable". A neighbour with
// `shunAfter` attributable failures within a minute is shunned for `shunForMs`: its links are closed and it
// may not link again until then. Failures are logged at most once a minute per neighbour.

import { setBounded } from '../core/bounded-map.js';
import type { Logger } from '../core/logger.js';
import type { AuthFailure } from '../security/origin-auth.js';

const MINUTE_MS = 60_000;
/** Neighbours tracked at once; the longest quiet goes first. */
const MAX_TRACKED = 1_024;

export interface NeighbourBlameOptions {
  /** Attributable failures within a minute that shun a neighbour; 0: never shun. */
  shunAfter: number;
  shunForMs: number;
  log: Logger;
  now?: () => number;
}

interface BlameRecord {
  /** Failures since the start of the current minute. */
  failures: number;
  attributable: number;
  total: number;
  windowStartMs: number;
  loggedAtMs: number;
  shunnedUntilMs: number;
}

export interface BlameRow {
  peer: string;
  failures: number;
  shunned_until: string | null;
}

export class NeighbourBlame {
  readonly #records = new Map<string, BlameRecord>();
  readonly #now: () => number;

  constructor(private readonly options: NeighbourBlameOptions) {
    this.#now = options.now ?? Date.now;
  }

  /** Counts a failure; true when it makes the neighbour shunned now. */
  record(failure: AuthFailure): boolean {
    const nowMs = this.#now();
    const record = this.#recordOf(failure.neighbour, nowMs);
    if (nowMs - record.windowStartMs >= MINUTE_MS) {
      record.windowStartMs = nowMs;
      record.failures = 0;
      record.attributable = 0;
    }
    record.failures++;
    record.total++;
    if (failure.attributable) record.attributable++;
    if (nowMs - record.loggedAtMs >= MINUTE_MS) {
      record.loggedAtMs = nowMs;
      this.options.log.warn(
        {
          neighbour: failure.neighbour,
          failures: record.failures,
          reason: failure.reason,
          claimed_source: failure.source,
          attributable: failure.attributable,
        },
        'a neighbour handed over messages whose origin failed authentication (logged at most once a minute)',
      );
    }
    const { shunAfter, shunForMs } = this.options;
    if (shunAfter === 0 || record.attributable < shunAfter || record.shunnedUntilMs > nowMs) return false;
    record.shunnedUntilMs = nowMs + shunForMs;
    this.options.log.warn(
      {
        neighbour: failure.neighbour,
        failures: record.attributable,
        until: new Date(record.shunnedUntilMs).toISOString(),
      },
      'shunned a neighbour that forged messages: its links are closed and refused until then',
    );
    return true;
  }

  isShunned(peer: string): boolean {
    return (this.#records.get(peer)?.shunnedUntilMs ?? 0) > this.#now();
  }

  /** Neighbours with failures, for status. */
  rows(): BlameRow[] {
    const nowMs = this.#now();
    return [...this.#records].map(([peer, record]) => ({
      peer,
      failures: record.total,
      shunned_until: record.shunnedUntilMs > nowMs ? new Date(record.shunnedUntilMs).toISOString() : null,
    }));
  }

  #recordOf(peer: string, nowMs: number): BlameRecord {
    let record = this.#records.get(peer);
    if (record === undefined) {
      record = {
        failures: 0,
        attributable: 0,
        total: 0,
        windowStartMs: nowMs,
        loggedAtMs: 0,
        shunnedUntilMs: 0,
      };
    }
    setBounded(this.#records, peer, record, MAX_TRACKED);
    return record;
  }
}
