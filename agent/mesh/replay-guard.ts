// Replay protection per origin (PROTOCOL.md §13.4): every routed DATA and ANNOUNCE carries its origin's
// sequence number, which only grows. After checking who sent a message, this agent accepts each (origin,
// seq) once: a sliding window of REPLAY_WINDOW numbers below the highest seen per origin (as IPsec's and
// WireGuard's), older ones are stale. The highest number per origin goes to the trust store about once a
// second, and at once before a message whose effects must not repeat, so a restart forgets nothing that
// could be replayed afterwards.
import { oldestKey } from '../core/bounded-map.js';

/** Sequence numbers below an origin's highest that are still told apart (others are stale). */
export const REPLAY_WINDOW = 4_096;
/** Origins whose window is kept in memory; one evicted is looked up in the store when it speaks again. */
export const DEFAULT_REPLAY_ORIGINS = 4_096;
const FLUSH_INTERVAL_MS = 1_000;
const WORD_BITS = 32;

export type ReplayVerdict = 'fresh' | 'repeat' | 'stale';

/** Where the marks persist (TrustStore). */
export interface ReplayMarks {
  replayMark(origin: string): number | undefined;
  /**
   * `durable`: on disk before this returns, through a power cut (an fsync); otherwise through a crash of the
   * agent only, the disk catching up within moments (no fsync on the event loop once a second).
   */
  saveReplayMarks(marks: readonly (readonly [string, number])[], durable: boolean): void;
}

interface Window {
  highest: number;
  /** Bit (seq mod REPLAY_WINDOW) is set when seq, within the window, was accepted. */
  readonly seen: Uint32Array;
}

export class ReplayGuard {
  readonly #windows = new Map<string, Window>();
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly marks: ReplayMarks | undefined,
    private readonly capacity = DEFAULT_REPLAY_ORIGINS,
    /** Told when persisting fails (a full disk): counted by the caller, never thrown. */
    private readonly onPersistError: (error: unknown) => void = () => {},
  ) {}

  /** Records (origin, seq) if it was not seen yet; says what it was. */
  accept(origin: string, seq: number): ReplayVerdict {
    const window = this.#windowOf(origin);
    if (window === undefined) {
      this.#set(origin, { highest: seq, seen: bitFor(seq, new Uint32Array(REPLAY_WINDOW / WORD_BITS)) });
      return 'fresh';
    }
    if (seq > window.highest) {
      const shift = seq - window.highest;
      if (shift >= REPLAY_WINDOW) window.seen.fill(0);
      else for (let next = window.highest + 1; next < seq; next++) clearBit(window.seen, next);
      window.highest = seq;
      bitFor(seq, window.seen);
      this.#touched(origin, window);
      return 'fresh';
    }
    if (window.highest - seq >= REPLAY_WINDOW) return 'stale';
    if (hasBit(window.seen, seq)) return 'repeat';
    bitFor(seq, window.seen);
    return 'fresh';
  }

  /**
   * Writes every changed mark now: durably before a message whose effect must not repeat and at stop; the
   * periodic writes survive a crash of the agent, and a power cut may undo the last second of them.
   */
  flush(durable = true): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dirty.size === 0 || this.marks === undefined) return;
    const marks = [...this.#dirty].flatMap((origin) => {
      const window = this.#windows.get(origin);
      return window === undefined ? [] : [[origin, window.highest] as const];
    });
    this.#dirty.clear();
    try {
      this.marks.saveReplayMarks(marks, durable);
    } catch (error) {
      this.onPersistError(error);
    }
  }

  #windowOf(origin: string): Window | undefined {
    const window = this.#windows.get(origin);
    if (window !== undefined) return window;
    const mark = this.marks?.replayMark(origin);
    if (mark === undefined) return undefined;
    // From disk only the highest is known: everything up to it counts as seen.
    const restored = { highest: mark, seen: new Uint32Array(REPLAY_WINDOW / WORD_BITS).fill(0xffff_ffff) };
    this.#set(origin, restored);
    return restored;
  }

  /** A window for an origin not in memory, as the newest; the longest quiet makes room when full. */
  #set(origin: string, window: Window): void {
    if (this.#windows.size >= this.capacity) {
      const oldest = oldestKey(this.#windows);
      if (oldest !== undefined) {
        // Its mark goes to disk first, so it is found there when the origin speaks again.
        if (this.#dirty.has(oldest)) this.flush(false);
        this.#windows.delete(oldest);
      }
    }
    this.#windows.set(origin, window);
    this.#markDirty(origin);
  }

  /** An origin's window moved up: it becomes the newest (the one evicted is the longest quiet). */
  #touched(origin: string, window: Window): void {
    this.#windows.delete(origin);
    this.#windows.set(origin, window);
    this.#markDirty(origin);
  }

  /** Its mark goes out with the next flush, within FLUSH_INTERVAL_MS. */
  #markDirty(origin: string): void {
    this.#dirty.add(origin);
    if (this.#timer === undefined && this.marks !== undefined) {
      this.#timer = setTimeout(() => this.flush(false), FLUSH_INTERVAL_MS);
      this.#timer.unref();
    }
  }
}

function bitFor(seq: number, seen: Uint32Array): Uint32Array {
  const bit = seq % REPLAY_WINDOW;
  seen[bit >>> 5] = (seen[bit >>> 5] as number) | (1 << (bit & 31));
  return seen;
}

function clearBit(seen: Uint32Array, seq: number): void {
  const bit = seq % REPLAY_WINDOW;
  seen[bit >>> 5] = (seen[bit >>> 5] as number) & ~(1 << (bit & 31));
}

function hasBit(seen: Uint32Array, seq: number): boolean {
  const bit = seq % REPLAY_WINDOW;
  return ((seen[bit >>> 5] as number) & (1 << (bit & 31))) !== 0;
}
