// How late the event loop runs, for `status`: a stall here is what drops links (a Wi-Fi keep-alive misses
// its 2 s) and makes timed calls fire late. perf_hooks samples it every 10 ms; the figures cover the last
// 10 to 20 s (two windows), so an old start-up stall does not hide a live one, nor the other way round.
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

const WINDOW_MS = 10_000;
const RESOLUTION_MS = 10;

export interface EventLoopDelayReading {
  /** The longest delay seen, in ms. */
  delay_max_ms: number;
  delay_p99_ms: number;
}

export class EventLoopDelay {
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #previous: EventLoopDelayReading = { delay_max_ms: 0, delay_p99_ms: 0 };
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      this.#previous = this.#current();
      this.#histogram.reset();
    }, WINDOW_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  read(): EventLoopDelayReading {
    const current = this.#current();
    return {
      delay_max_ms: Math.max(current.delay_max_ms, this.#previous.delay_max_ms),
      delay_p99_ms: Math.max(current.delay_p99_ms, this.#previous.delay_p99_ms),
    };
  }

  /**
   * The histogram is in ns and, before its first sample, reads NaN or a huge minimum. It records the whole
   * interval between its timer's runs (10 ms on an idle loop), so the delay is what exceeds the resolution.
   */
  #current(): EventLoopDelayReading {
    if (this.#histogram.count === 0) return { delay_max_ms: 0, delay_p99_ms: 0 };
    const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
    return { delay_max_ms: ms(this.#histogram.max), delay_p99_ms: ms(this.#histogram.percentile(99)) };
  }
}
