// Wi-Fi activity (agent/ops/wifi-activity.ts) against a fake sysfs tree and a fake clock: busy above the
// threshold at once, idle only after staying quiet, a missing interface never busy and never an error, and
// the scan duty the board's coexistence quirk gives for each state.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  coexistenceQuirk,
  scanDutyFor,
  WifiActivity,
  type WifiActivityState,
} from '../../../agent/ops/wifi-activity.js';
import { GENERIC_LINUX, RPI_3B_PLUS, RPI_ZERO_2_W } from '../../../boards/index.js';

let root: string;
let clockMs = 0;
let rx = 0;
let tx = 0;

async function writeCounters(iface = 'wlan0'): Promise<void> {
  const statistics = join(root, 'sys/class/net', iface, 'statistics');
  await mkdir(statistics, { recursive: true });
  await writeFile(join(statistics, 'rx_bytes'), `${rx}\n`);
  await writeFile(join(statistics, 'tx_bytes'), `${tx}\n`);
}

/** Advances the fake clock by 2 s with `bytesPerS` of traffic (split between rx and tx), then reads. */
async function interval(activity: WifiActivity, bytesPerS: number): Promise<void> {
  clockMs += 2_000;
  rx += bytesPerS; // half of 2 s worth each way
  tx += bytesPerS;
  await writeCounters();
  await activity.poll();
}

function watch(options: { iface?: string } = {}) {
  const activity = new WifiActivity({ interface: options.iface ?? 'wlan0', root, now: () => clockMs });
  const changes: WifiActivityState[] = [];
  activity.on('change', (state) => changes.push(state));
  return { activity, changes };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'nearmesh-wifi-'));
  clockMs = 1_000_000;
  rx = 5_000_000;
  tx = 1_000_000;
});

afterEach(async () => {
  vi.useRealTimers();
  await rm(root, { recursive: true, force: true });
});

describe('WifiActivity', () => {
  it('turns busy on the first interval above 200 kB/s and says so once', async () => {
    await writeCounters();
    const { activity, changes } = watch();
    await activity.poll(); // baseline
    await interval(activity, 40_000);
    expect(activity.state.isBusy).toBe(false);
    expect(activity.state.bytesPerS).toBe(40_000);
    await interval(activity, 300_000);
    await interval(activity, 500_000);
    expect(changes).toEqual([{ interface: 'wlan0', isBusy: true, band: '2.4GHz', bytesPerS: 300_000 }]);
    expect(activity.state.bytesPerS).toBe(500_000);
  });

  it('stays busy between the thresholds and through short lulls; idle after 6 s below 50 kB/s', async () => {
    await writeCounters();
    const { activity, changes } = watch();
    await activity.poll();
    await interval(activity, 300_000);
    await interval(activity, 100_000); // between the thresholds: still busy
    await interval(activity, 10_000); // quiet 2 s
    await interval(activity, 10_000); // quiet 4 s
    await interval(activity, 120_000); // the lull ends: the quiet time starts over
    await interval(activity, 10_000);
    await interval(activity, 10_000);
    expect(changes.map((change) => change.isBusy)).toEqual([true]);
    await interval(activity, 10_000); // quiet 6 s
    expect(changes.map((change) => change.isBusy)).toEqual([true, false]);
    expect(activity.state.isBusy).toBe(false);
  });

  it('treats a missing interface as never busy, without errors, and picks it up when it appears', async () => {
    const { activity, changes } = watch({ iface: 'wlan0' });
    await activity.poll();
    clockMs += 2_000;
    await activity.poll();
    expect(activity.state).toEqual({ interface: 'wlan0', isBusy: false, band: '2.4GHz', bytesPerS: 0 });
    expect(changes).toEqual([]);
    await writeCounters();
    await activity.poll(); // baseline now
    await interval(activity, 400_000);
    expect(activity.state.isBusy).toBe(true);
    // The interface goes away while busy: idle at once.
    await rm(join(root, 'sys/class/net/wlan0'), { recursive: true });
    clockMs += 2_000;
    await activity.poll();
    expect(changes.map((change) => change.isBusy)).toEqual([true, false]);
  });

  it('takes counters that went back (interface re-created) or garbage as a new baseline, not a rate', async () => {
    await writeCounters();
    const { activity, changes } = watch();
    await activity.poll();
    rx = 10;
    tx = 10;
    clockMs += 2_000;
    await writeCounters();
    await activity.poll();
    expect(activity.state.isBusy).toBe(false);
    await writeFile(join(root, 'sys/class/net/wlan0/statistics/rx_bytes'), 'garbage\n');
    clockMs += 2_000;
    await activity.poll();
    expect(activity.state.bytesPerS).toBe(0);
    expect(changes).toEqual([]);
  });

  it('reads every 2 s once started, and not after stop()', async () => {
    vi.useFakeTimers();
    await writeCounters();
    const { activity } = watch();
    const poll = vi.spyOn(activity, 'poll');
    activity.start();
    expect(poll).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(6_000);
    expect(poll).toHaveBeenCalledTimes(4);
    activity.stop();
    vi.advanceTimersByTime(6_000);
    expect(poll).toHaveBeenCalledTimes(4);
  });
});

describe('scanDutyFor', () => {
  const busy: WifiActivityState = { interface: 'wlan0', isBusy: true, band: '2.4GHz', bytesPerS: 300_000 };

  it("gives the quirk's duty for the band while busy, and 1 while idle", () => {
    const quirk = coexistenceQuirk(RPI_3B_PLUS);
    expect(quirk?.chip).toBe('CYW43455');
    expect(scanDutyFor(quirk, busy)).toBe(0.25);
    expect(scanDutyFor(quirk, { ...busy, band: '5GHz' })).toBe(0.5);
    expect(scanDutyFor(quirk, { ...busy, isBusy: false })).toBe(1);
    expect(scanDutyFor(quirk, undefined)).toBe(1);
  });

  it('falls back to the 2.4 GHz duty for a band the quirk has none for', () => {
    expect(scanDutyFor(coexistenceQuirk(RPI_ZERO_2_W), { ...busy, band: '5GHz' })).toBe(0.25);
  });

  it('gives 1 on boards without the quirk', () => {
    expect(coexistenceQuirk(GENERIC_LINUX)).toBeUndefined();
    expect(scanDutyFor(coexistenceQuirk(GENERIC_LINUX), busy)).toBe(1);
  });
});
