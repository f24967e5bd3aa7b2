// Duty-cycled scanning: while a duty below 1 is in force, the scan runs for the first duty × period of every
// period and is paused for the rest; at duty 1 it runs continuously. Used by ble-transport.ts to give the
// airtime back to Wi-Fi on boards whose Wi-Fi and Bluetooth share one chip (the board profile's
// 'wifi-ble-coexistence' quirk). Every resume is a fresh scan start, so each advertiser is reported again
// once per period, like the resolver's rescan at duty 1.
//
// The scheduler also keeps the total time it held the scan paused, so that "unheard for N seconds" can be
// measured in scanning time (an advertiser we did not listen for was not missing).
//
// Its owner can also hold the scan stopped for a moment (suspend/resume: a shared controller changing its
// advertising address); the scan commands stay in one queue, so no period start slips in between.

/** What the scheduler drives: the central's scan (BleTransport's current central, whichever it is). */
export interface DutyScanner {
  resume(): Promise<void>;
  pause(): Promise<void>;
}

/** One duty-cycle period: the resolver's rescan interval, so a period's scan start replaces that rescan. */
export const DEFAULT_SCAN_PERIOD_MS = 10_000;
/**
 * The lowest duty applied: below it a period's scan window (0.5 s at 10 s) is shorter than a slow
 * advertiser's interval, and the mesh would stop discovering at all. Lower requests are raised to it.
 */
export const MIN_SCAN_DUTY = 0.05;
/** A scan start or stop that the controller never confirms stops blocking the next one after this. */
export const DEFAULT_SCAN_COMMAND_TIMEOUT_MS = 5_000;

export interface ScanDutyOptions {
  scanner: DutyScanner;
  periodMs?: number;
  /** Scan commands that fail (or time out) are reported here and otherwise ignored: the next period retries. */
  onError?: (error: Error) => void;
  commandTimeoutMs?: number;
  /** Milliseconds, for pausedMs(); default Date.now. */
  now?: () => number;
}

/** A duty as applied: within [MIN_SCAN_DUTY, 1]; anything not a number is 1 (scan continuously). */
export function clampScanDuty(duty: number): number {
  if (!Number.isFinite(duty) || duty >= 1) return 1;
  return Math.max(MIN_SCAN_DUTY, duty);
}

export class ScanDutyScheduler {
  readonly #scanner: DutyScanner;
  readonly #periodMs: number;
  readonly #commandTimeoutMs: number;
  readonly #now: () => number;
  readonly #onError: (error: Error) => void;
  #duty = 1;
  /** Scanning wanted (start() called, stop() not since). */
  #isActive = false;
  /** In the scan window (scanning), as opposed to the paused rest of the period. */
  #isScanWindow = false;
  #periodStartMs = 0;
  #pausedSinceMs: number | undefined;
  #pausedTotalMs = 0;
  /** suspend() calls not yet resumed: while any, no scan command starts the scan. */
  #suspensions = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Scan commands, one at a time and in order. */
  #commands: Promise<void> = Promise.resolve();

  constructor(options: ScanDutyOptions) {
    this.#scanner = options.scanner;
    this.#periodMs = options.periodMs ?? DEFAULT_SCAN_PERIOD_MS;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_SCAN_COMMAND_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** The duty in force (1: continuous). */
  get duty(): number {
    return this.#duty;
  }

  get isActive(): boolean {
    return this.#isActive;
  }

  /** Whether the scan should be running now: scanning is wanted, this is not a paused stretch nor suspended. */
  get isScanWindow(): boolean {
    return this.#isActive && this.#isScanWindow && this.#suspensions === 0;
  }

  /** Total time the duty cycle has kept the scan paused (growing while paused); never decreases. */
  pausedMs(): number {
    const current = this.#pausedSinceMs === undefined ? 0 : Math.max(0, this.#now() - this.#pausedSinceMs);
    return this.#pausedTotalMs + current;
  }

  /** Starts scanning, duty-cycled; resolves once the scan start was handed to the scanner. */
  start(): Promise<void> {
    if (this.#isActive) return this.#commands;
    this.#isActive = true;
    this.#beginPeriod();
    return this.#commands;
  }

  /** Stops scanning (whether in a scan window or paused) and the duty cycle. */
  stop(): Promise<void> {
    const wasActive = this.#isActive;
    this.halt();
    if (!wasActive) return this.#commands;
    return this.#command(() => this.#scanner.pause());
  }

  /**
   * Holds the scan stopped, whatever the duty, until the matching resume(); holds nest. The duty cycle's timing
   * goes on underneath (a suspension is not counted in pausedMs: it is meant to last a moment). Resolves once
   * every scan command so far has run, the stop included: from then on the scanner is not scanning.
   */
  suspend(): Promise<void> {
    const wasRunning = this.isScanWindow;
    this.#suspensions++;
    if (!wasRunning) return this.#commands;
    return this.#command(() => this.#scanner.pause());
  }

  /**
   * Ends one suspend(). The last one restarts the scan if it should be running now: not in a paused stretch
   * of the duty cycle, nor after stop() or halt().
   */
  resume(): Promise<void> {
    if (this.#suspensions === 0) return this.#commands;
    this.#suspensions--;
    if (!this.isScanWindow) return this.#commands;
    return this.#command(() => this.#scanner.resume());
  }

  /** Ends the duty cycle without a scan command, for an owner that stops the scanner itself. */
  halt(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#isActive = false;
    this.#isScanWindow = false;
    this.#endPause();
  }

  /**
   * Sets the duty (clamped, see clampScanDuty); returns whether it changed. It applies within the current
   * period: the scan window is the first duty × period of it, so a lower duty may pause at once; duty 1 ends
   * a pause at once. From continuous scanning, a lower duty starts a period now.
   */
  setDuty(requested: number): boolean {
    const duty = clampScanDuty(requested);
    if (duty === this.#duty) return false;
    const previous = this.#duty;
    this.#duty = duty;
    if (!this.#isActive) return true;
    if (duty === 1) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (!this.#isScanWindow) this.#openScanWindow();
      return true;
    }
    if (!this.#isScanWindow) return true; // paused: the next period starts when it would have
    if (previous === 1) this.#periodStartMs = this.#now();
    this.#schedulePause();
    return true;
  }

  #beginPeriod(): void {
    this.#periodStartMs = this.#now();
    this.#openScanWindow();
    if (this.#duty < 1) this.#schedulePause();
  }

  #openScanWindow(): void {
    this.#isScanWindow = true;
    this.#endPause();
    // Suspended: the last resume() starts the scan.
    if (this.#suspensions === 0) void this.#command(() => this.#scanner.resume());
  }

  /** Pauses at periodStart + duty × period (at once when that has passed), resumes at the period's end. */
  #schedulePause(): void {
    clearTimeout(this.#timer);
    const pauseAtMs = this.#periodStartMs + this.#duty * this.#periodMs;
    this.#timer = setTimeout(() => this.#pause(), Math.max(0, pauseAtMs - this.#now()));
    this.#timer.unref?.();
  }

  #pause(): void {
    if (!this.#isActive || this.#duty === 1) return;
    this.#isScanWindow = false;
    this.#pausedSinceMs = this.#now();
    // Suspended: the scan is already stopped.
    if (this.#suspensions === 0) void this.#command(() => this.#scanner.pause());
    const nextPeriodMs = this.#periodStartMs + this.#periodMs;
    this.#timer = setTimeout(() => this.#beginPeriod(), Math.max(0, nextPeriodMs - this.#now()));
    this.#timer.unref?.();
  }

  #endPause(): void {
    if (this.#pausedSinceMs === undefined) return;
    this.#pausedTotalMs += Math.max(0, this.#now() - this.#pausedSinceMs);
    this.#pausedSinceMs = undefined;
  }

  /** Queues a scan command after the previous ones; a failure or a missing reply is reported, not thrown. */
  #command(run: () => Promise<void>): Promise<void> {
    const next = this.#commands.then(() => this.#bounded(run));
    this.#commands = next;
    return next;
  }

  async #bounded(run: () => Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#onError(new Error(`BLE scan command not confirmed within ${this.#commandTimeoutMs} ms`));
        resolve();
      }, this.#commandTimeoutMs);
      timer.unref?.();
    });
    try {
      await Promise.race([run(), timeout]);
    } catch (error) {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    } finally {
      clearTimeout(timer);
    }
  }
}
