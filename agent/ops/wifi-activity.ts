// Whether the board's Wi-Fi is busy, for the 'wifi-ble-coexistence' radio quirk (boards/profiles.ts): on
// boards whose Wi-Fi and Bluetooth share one chip, BLE scans with a lower duty while Wi-Fi carries traffic.
//
// Every ~2 s it reads the interface's byte counters, /sys/class/net/<iface>/statistics/{rx,tx}_bytes (two
// tiny sysfs reads), and turns them into a throughput, received and sent together. Busy and idle have
// hysteresis, so a transfer that pauses for a moment does not flap the scan duty:
//   - busy as soon as one interval averages above busyBytesPerS (default 200 kB/s, ~1.6 Mbit/s: a stream
//     or a copy, not an SSH session, MQTT or DNS chatter);
//   - idle again only after staying below idleBytesPerS (default 50 kB/s) for idleAfterMs (default 6 s,
//     three intervals); in between the state holds.
// The band: sysfs does not say which channel a Wi-Fi link is on (only nl80211 does, via `iw`, a process
// per look), so it is reported as 2.4 GHz, the band that competes with BLE and whose duty is the lower,
// more conservative one.
// A missing interface (no Wi-Fi, not up yet, renamed) is never busy and is not an error: it is looked for
// again every interval, silently. The file root is a parameter so tests read fixture trees; nothing throws.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BoardProfile, RadioQuirk } from '../../boards/index.js';
import { TypedEmitter } from '../core/events.js';

export type WifiBand = '2.4GHz' | '5GHz';

export const DEFAULT_WIFI_POLL_MS = 2_000;
export const DEFAULT_WIFI_BUSY_BYTES_PER_S = 200_000;
export const DEFAULT_WIFI_IDLE_BYTES_PER_S = 50_000;
export const DEFAULT_WIFI_IDLE_AFTER_MS = 6_000;

export interface WifiActivityOptions {
  /** The Wi-Fi interface ("wlan0"), from the board profile. */
  readonly interface: string;
  /** File root for /sys: "/" (the default) on a real system, a fixture tree in tests. */
  readonly root?: string;
  readonly pollMs?: number;
  readonly busyBytesPerS?: number;
  readonly idleBytesPerS?: number;
  readonly idleAfterMs?: number;
  /** Milliseconds, for rates; default Date.now. */
  readonly now?: () => number;
}

export interface WifiActivityState {
  readonly interface: string;
  readonly isBusy: boolean;
  /** Always '2.4GHz' for now: see the top of this file. */
  readonly band: WifiBand;
  /** Received plus sent, over the last interval; 0 when the interface is missing or on the first reading. */
  readonly bytesPerS: number;
}

export interface WifiActivityEvents {
  /** Busy became idle or the reverse (not every reading). */
  change: (state: WifiActivityState) => void;
}

export class WifiActivity extends TypedEmitter<WifiActivityEvents> {
  readonly #options: WifiActivityOptions;
  readonly #now: () => number;
  #isBusy = false;
  #bytesPerS = 0;
  #last: { bytes: number; atMs: number } | undefined;
  /** Since when the rate has been below the idle threshold while busy. */
  #quietSinceMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;

  constructor(options: WifiActivityOptions) {
    super();
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): WifiActivityState {
    return {
      interface: this.#options.interface,
      isBusy: this.#isBusy,
      band: '2.4GHz',
      bytesPerS: Math.round(this.#bytesPerS),
    };
  }

  /** Reads the counters now and every pollMs after. */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#options.pollMs ?? DEFAULT_WIFI_POLL_MS);
    this.#timer.unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One reading (what the timer runs); a reading still in progress is not overlapped. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const bytes = await this.#readBytes();
    const atMs = this.#now();
    if (bytes === undefined) {
      // No interface: nothing to measure, and nothing competing with BLE.
      this.#last = undefined;
      this.#bytesPerS = 0;
      this.#quietSinceMs = undefined;
      this.#set(false);
      return;
    }
    const last = this.#last;
    this.#last = { bytes, atMs };
    // The first reading, a clock that did not move, or counters that went back (the interface was
    // re-created): a new baseline, no rate.
    if (last === undefined || atMs <= last.atMs || bytes < last.bytes) return;
    const rate = ((bytes - last.bytes) * 1000) / (atMs - last.atMs);
    this.#bytesPerS = rate;
    const busyAbove = this.#options.busyBytesPerS ?? DEFAULT_WIFI_BUSY_BYTES_PER_S;
    const idleBelow = this.#options.idleBytesPerS ?? DEFAULT_WIFI_IDLE_BYTES_PER_S;
    if (rate > busyAbove) {
      this.#quietSinceMs = undefined;
      this.#set(true);
      return;
    }
    if (!this.#isBusy) return;
    if (rate >= idleBelow) {
      this.#quietSinceMs = undefined;
      return;
    }
    // Quiet since the start of this interval.
    this.#quietSinceMs ??= last.atMs;
    if (atMs - this.#quietSinceMs >= (this.#options.idleAfterMs ?? DEFAULT_WIFI_IDLE_AFTER_MS)) {
      this.#quietSinceMs = undefined;
      this.#set(false);
    }
  }

  #set(isBusy: boolean): void {
    if (isBusy === this.#isBusy) return;
    this.#isBusy = isBusy;
    this.emit('change', this.state);
  }

  /** rx_bytes + tx_bytes, or undefined when the interface (or either counter) cannot be read. */
  async #readBytes(): Promise<number | undefined> {
    const statistics = join(
      this.#options.root ?? '/',
      'sys/class/net',
      this.#options.interface,
      'statistics',
    );
    try {
      const [rx, tx] = await Promise.all([
        readFile(join(statistics, 'rx_bytes'), 'utf8'),
        readFile(join(statistics, 'tx_bytes'), 'utf8'),
      ]);
      const [rxBytes, txBytes] = [counter(rx), counter(tx)];
      return rxBytes === undefined || txBytes === undefined ? undefined : rxBytes + txBytes;
    } catch {
      return undefined;
    }
  }
}

function counter(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

export type CoexistenceQuirk = Extract<RadioQuirk, { kind: 'wifi-ble-coexistence' }>;

/** The board's Wi-Fi/Bluetooth coexistence quirk, when it has one and a Wi-Fi interface to watch. */
export function coexistenceQuirk(profile: BoardProfile): CoexistenceQuirk | undefined {
  if (profile.wifiInterface === null) return undefined;
  return profile.quirks.find((quirk): quirk is CoexistenceQuirk => quirk.kind === 'wifi-ble-coexistence');
}

/**
 * The BLE scan duty for this Wi-Fi state: 1 (continuous) while Wi-Fi is idle or unknown, else the quirk's
 * duty for the band (the 2.4 GHz one when the quirk has none for the band).
 */
export function scanDutyFor(
  quirk: CoexistenceQuirk | undefined,
  wifi: WifiActivityState | undefined,
): number {
  if (quirk === undefined || wifi === undefined || !wifi.isBusy) return 1;
  const duties = quirk.scanDutyWhileWifiBusy;
  return duties[wifi.band] ?? duties['2.4GHz'];
}
