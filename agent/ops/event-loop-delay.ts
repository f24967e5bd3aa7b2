// How late the event loop runs, for `status`: a stall here is what drops links (a Wi-Fi keep-alive misses
// its 2 s) and makes timed calls fire late. The figures cover the last 10 to 20 s (two windows), so an old
// start-up stall does not hide a live one, nor the other way round.
//
// Measured finely (perf_hooks samples every 10 ms) only while the loop has work: that sampling alone costs an
// idle agent about 6 ms of CPU a second, more than everything else it does. A pulse once a second watches the
// loop's utilisation and its own lateness: busy (2 % of the second, or a late pulse) turns fine sampling on,
// 10 quiet seconds (under 10 %, the sampling's own cost included) turn it off. An idle loop's stalls still show, as the pulse's lateness.
import {
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  performance,
} from 'node:perf_hooks';

const RESOLUTION_MS = 10;

export interface EventLoopDelayReading {
  /** The longest delay seen, in ms. */
  delay_max_ms: number;
  delay_p99_ms: number;
}

export interface EventLoopDelayOptions {
  /** How often the pulse runs (default 1 s); a window is 10 pulses. */
  pulseMs?: number;
  /** Quiet pulses before fine sampling stops (default 10). */
  quietPulses?: number;
}

/** Utilisation of the loop over a pulse at or above which a coarsely sampled loop counts as busy. */
const BUSY_UTILIZATION = 0.02;
/**
 * The same while sampled finely: the sampling's own 100 wakeups a second keep a loop a few % busy (more on a
 * slow board), which must not keep the sampling on by itself.
 */
const BUSY_UTILIZATION_FINE = 0.1;
/** A pulse this late says the loop was busy, whatever its utilisation says. */
const LATE_PULSE_MS = 50;
const PULSES_PER_WINDOW = 10;

export class EventLoopDelay {
  readonly #pulseMs: number;
  readonly #quietPulses: number;
  #histogram: IntervalHistogram | undefined;
  #previous: EventLoopDelayReading = { delay_max_ms: 0, delay_p99_ms: 0 };
  /** The window's worst pulse lateness, for the stalls of a loop sampled coarsely. */
  #lateMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastPulseMs = 0;
  #utilization: EventLoopUtilization | undefined;
  #quiet = 0;
  #pulses = 0;

  constructor(options: EventLoopDelayOptions = {}) {
    this.#pulseMs = options.pulseMs ?? 1000;
    this.#quietPulses = options.quietPulses ?? 10;
  }

  /** Whether the loop is sampled finely now (it was busy lately). */
  get fine(): boolean {
    return this.#histogram !== undefined;
  }

  start(): void {
    // Start-up is busy: fine from the start, until the loop has been quiet a while.
    this.#fineOn();
    this.#utilization = performance.eventLoopUtilization();
    this.#lastPulseMs = performance.now();
    this.#timer = setInterval(() => this.#pulse(), this.#pulseMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#fineOff();
  }

  read(): EventLoopDelayReading {
    const current = this.#current();
    return {
      delay_max_ms: Math.max(current.delay_max_ms, this.#previous.delay_max_ms),
      delay_p99_ms: Math.max(current.delay_p99_ms, this.#previous.delay_p99_ms),
    };
  }

  #pulse(): void {
    const nowMs = performance.now();
    const lateMs = Math.max(0, nowMs - this.#lastPulseMs - this.#pulseMs);
    this.#lastPulseMs = nowMs;
    // While sampled finely the histogram has the delay to the ms (what the pulse sees is the same stall, less
    // precisely): the pulse's lateness counts only for a loop that was sampled coarsely.
    if (!this.fine) this.#lateMs = Math.max(this.#lateMs, lateMs);
    const since = performance.eventLoopUtilization(this.#utilization);
    this.#utilization = performance.eventLoopUtilization();
    const busy = this.fine ? BUSY_UTILIZATION_FINE : BUSY_UTILIZATION;
    if (since.utilization >= busy || lateMs >= LATE_PULSE_MS) {
      this.#quiet = 0;
      this.#fineOn();
    } else if (++this.#quiet >= this.#quietPulses) {
      this.#fineOff();
    }
    if (++this.#pulses % PULSES_PER_WINDOW === 0) {
      this.#previous = this.#current();
      this.#histogram?.reset();
      this.#lateMs = 0;
    }
  }

  #fineOn(): void {
    if (this.#histogram !== undefined) return;
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
  }

  /** Keeps what the fine sampling saw in this window (as lateness) before it stops. */
  #fineOff(): void {
    const histogram = this.#histogram;
    if (histogram === undefined) return;
    this.#lateMs = Math.max(this.#lateMs, this.#fine(histogram).delay_max_ms);
    histogram.disable();
    this.#histogram = undefined;
  }

  #current(): EventLoopDelayReading {
    const late = Math.round(this.#lateMs * 100) / 100;
    const fine = this.#histogram === undefined ? undefined : this.#fine(this.#histogram);
    return {
      delay_max_ms: Math.max(late, fine?.delay_max_ms ?? 0),
      delay_p99_ms: Math.max(fine?.delay_p99_ms ?? 0, fine === undefined ? late : 0),
    };
  }

  /**
   * The histogram is in ns and, before its first sample, reads NaN or a huge minimum. It records the whole
   * interval between its timer's runs (10 ms on an idle loop), so the delay is what exceeds the resolution.
   */
  #fine(histogram: IntervalHistogram): EventLoopDelayReading {
    if (histogram.count === 0) return { delay_max_ms: 0, delay_p99_ms: 0 };
    const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
    return { delay_max_ms: ms(histogram.max), delay_p99_ms: ms(histogram.percentile(99)) };
  }
}
