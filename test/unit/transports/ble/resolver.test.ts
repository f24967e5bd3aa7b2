// The BLE resolver's bookkeeping (AdvertiserTable): which heard agents become dial candidates (their hints opened
// under our keys), when they are lost again, and the RSSI the peer table shows; and the resolver over a
// duty-cycled scan (fake transport,
// fake timers), which must not lose what it did not listen for. The radio side is covered by
// test/system/ble-*.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypedEmitter } from '../../../../agent/core/events.js';
import { BLE_HINT_LAYOUT } from '../../../../transports/ble/advertisement.js';
import {
  AdvertiserTable,
  BleResolver,
  DEFAULT_FORGET_AFTER_MS,
  RSSI_UNAVAILABLE,
  type ScanningTransport,
} from '../../../../transports/ble/ble-resolver.js';
import type { BleTransportEvents } from '../../../../transports/ble/ble-transport.js';
import type { DiscoveredPeripheral } from '../../../../transports/ble/central.js';
import { ScanDutyScheduler } from '../../../../transports/ble/scan-duty.js';
import { sealHint } from '../../../../transports/discovery-hint.js';

const meshKey = new Uint8Array(32).fill(7);
const otherMeshKey = new Uint8Array(32).fill(8);
const olderMeshKey = new Uint8Array(32).fill(9);
const meshKeys = () => [meshKey, olderMeshKey];
const ownPeerId = '1111111111111111';
const FORGET_MS = 30_000;

/** An advertisement of the agent whose peer id is `peerId`, heard at a noble id of its own (or `id`). */
function heard(
  peerId: string,
  options: { accepting?: boolean; rssi?: number; key?: Uint8Array; id?: string; inviting?: boolean } = {},
): DiscoveredPeripheral {
  return {
    id: options.id ?? `00aa${peerId.slice(0, 8)}`,
    address: '00:aa:01:00:00:42',
    rssi: options.rssi ?? -60,
    advertisement: {
      version: 2,
      hint: sealHint(() => [options.key ?? meshKey], peerId, BLE_HINT_LAYOUT),
      isWifiAvailable: false,
      isAcceptingLinks: options.accepting ?? true,
      isInviting: options.inviting ?? false,
    },
  };
}

const B = '2222222222222222';
const C = '3333333333333333';
const SMALLER = '0000010000000000';

describe('AdvertiserTable', () => {
  it('reports an agent of our mesh once, as long as it accepts links and we are its dialler', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    const first = table.hear(heard(B), 0);
    expect(first.found.map((c) => c.peerId)).toEqual([B]);
    expect(first.found[0]).toMatchObject({ medium: 'ble', address: '00aa22222222', peerId: B });
    expect(first.found[0]).not.toHaveProperty('name');
    expect(table.hear(heard(B), 1_000)).toEqual({ found: [], lost: [] });
  });

  it('ignores other meshes (counted), our own peripheral, and agents that dial us instead', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    expect(table.hear(heard(B, { key: otherMeshKey }), 0).found).toEqual([]);
    expect(table.ignoredCount).toBe(1);
    expect(table.hear(heard(ownPeerId), 0).found).toEqual([]);
    expect(table.hear(heard(SMALLER), 0).found).toEqual([]);
    expect(table.ignoredCount).toBe(1);
  });

  it('lists inviting advertisers of any mesh for a joining device, until they stop or go unheard', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    // A device with no mesh yet opens no hint: the inviting flag alone makes an advertiser a candidate.
    table.hear(heard(B, { key: otherMeshKey, inviting: true, id: 'inviter-b' }), 0);
    table.hear(heard(C, { inviting: true, id: 'inviter-c' }), 0);
    table.hear(heard(SMALLER, { id: 'not-inviting' }), 0);
    expect(table.inviters().sort()).toEqual(['inviter-b', 'inviter-c']);
    table.hear(heard(C, { inviting: false, id: 'inviter-c' }), 1_000);
    expect(table.inviters()).toEqual(['inviter-b']);
    table.sweep(FORGET_MS);
    expect(table.inviters()).toEqual([]);
  });

  it('opens hints sealed under an older key still accepted (a key rotation in progress)', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    expect(table.hear(heard(B, { key: olderMeshKey }), 0).found.map((c) => c.peerId)).toEqual([B]);
  });

  it('knows an agent that rotated its address by its peer id; the old address is lost when unheard', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    table.hear(heard(B, { id: 'address-1', rssi: -70 }), 0);
    const moved = table.hear(heard(B, { id: 'address-2', rssi: -50 }), 10_000);
    // The link manager skips a dial to a peer id it already has a link with, whatever the address.
    expect(moved.found).toEqual([expect.objectContaining({ address: 'address-2', peerId: B })]);
    expect(table.rssiOf(B)).toBe(-50);
    expect(table.sweep(FORGET_MS).map((c) => c.address)).toEqual(['address-1']);
  });

  it('loses a candidate that stops accepting links and finds it again when it accepts', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    table.hear(heard(B), 0);
    const full = table.hear(heard(B, { accepting: false }), 1_000);
    expect(full.lost.map((c) => c.peerId)).toEqual([B]);
    expect(table.hear(heard(B, { accepting: false }), 2_000)).toEqual({ found: [], lost: [] });
    expect(table.hear(heard(B), 3_000).found.map((c) => c.peerId)).toEqual([B]);
  });

  it('loses what went unheard for the forget time, and only that', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    table.hear(heard(B), 0);
    table.hear(heard(C), 20_000);
    table.hear(heard(SMALLER), 0); // heard, never a candidate: forgotten silently
    expect(table.sweep(FORGET_MS - 1)).toEqual([]);
    expect(table.sweep(FORGET_MS).map((c) => c.peerId)).toEqual([B]);
    expect(table.sweep(FORGET_MS * 2).map((c) => c.peerId)).toEqual([C]);
    // Heard again after being forgotten: a new candidate.
    expect(table.hear(heard(B), FORGET_MS * 3).found).toHaveLength(1);
  });

  it('gives the last RSSI by full peer id, and none when the radio says it has none', () => {
    const table = new AdvertiserTable(ownPeerId, meshKeys, FORGET_MS);
    table.hear(heard(B, { rssi: -71 }), 0);
    table.hear(heard(B, { rssi: -64 }), 1_000);
    table.hear(heard(SMALLER, { rssi: RSSI_UNAVAILABLE }), 0);
    expect(table.rssiOf(B)).toBe(-64);
    expect(table.rssiOf(SMALLER)).toBeUndefined();
    expect(table.rssiOf(C)).toBeUndefined();
  });
});

/** A central whose scan runs on a real ScanDutyScheduler; `listening` says whether it would hear anything now. */
class DutyCycledTransport extends TypedEmitter<BleTransportEvents> implements ScanningTransport {
  readonly hasCentral = true;
  listening = false;
  rescans = 0;
  readonly scheduler = new ScanDutyScheduler({
    scanner: {
      resume: async () => {
        this.listening = true;
      },
      pause: async () => {
        this.listening = false;
      },
    },
  });

  startScanning(): Promise<void> {
    return this.scheduler.start();
  }

  stopScanning(): Promise<void> {
    return this.scheduler.stop();
  }

  async rescan(): Promise<void> {
    this.rescans++;
  }

  scanPausedMs(): number {
    return this.scheduler.pausedMs();
  }

  /** The advertiser is heard if the scan is on now. */
  advertise(peripheral: DiscoveredPeripheral): void {
    if (this.listening) this.emit('discover', peripheral);
  }
}

describe('BleResolver over a duty-cycled scan', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  async function started(duty: number) {
    const transport = new DutyCycledTransport();
    transport.scheduler.setDuty(duty);
    const resolver = new BleResolver(transport, { peerId: ownPeerId, meshKeys });
    const events: string[] = [];
    const startMs = Date.now();
    const at = (): string => `${Math.round((Date.now() - startMs) / 1000)}s`;
    resolver.on('found', (candidate) => events.push(`${at()} found ${candidate.peerId}`));
    resolver.on('lost', (candidate) => events.push(`${at()} lost ${candidate.peerId}`));
    await resolver.start();
    return { transport, resolver, events };
  }

  it('keeps an advertiser missed for 40 s of wall time but only 10 s of scanning, at duty 0.25', async () => {
    const { transport, resolver, events } = await started(0.25);
    transport.advertise(heard(B));
    expect(events).toEqual([`0s found ${B}`]);
    // Not heard in the next three periods (its advertisements lost to Wi-Fi), heard again in the fifth.
    await vi.advanceTimersByTimeAsync(40_000);
    transport.advertise(heard(B));
    expect(events).toEqual([`0s found ${B}`]);
    expect(transport.scanPausedMs()).toBe(4 * 7_500);
    await resolver.stop();
  });

  it('loses an advertiser after 31 s of scanning without hearing it, not 31 s of wall time', async () => {
    const { transport, resolver, events } = await started(0.25);
    transport.advertise(heard(B));
    // 31 s of scanning at 2.5 s per 10 s period: 12.4 periods; the resolver sweeps every 10 s.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(events).toEqual([`0s found ${B}`]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(events).toEqual([`0s found ${B}`, `130s lost ${B}`]);
    await resolver.stop();
  });

  it('at duty 1 loses it after 31 s of wall time, as before', async () => {
    const { transport, resolver, events } = await started(1);
    transport.advertise(heard(B));
    await vi.advanceTimersByTimeAsync(DEFAULT_FORGET_AFTER_MS + 10_000);
    expect(events).toEqual([`0s found ${B}`, `40s lost ${B}`]);
    expect(transport.rescans).toBeGreaterThan(0);
    await resolver.stop();
  });

  it('hears the advertiser again in every period it keeps advertising, and never loses it', async () => {
    const { transport, resolver, events } = await started(0.25);
    const advertising = setInterval(() => transport.advertise(heard(B)), 1_000);
    await vi.advanceTimersByTimeAsync(300_000);
    clearInterval(advertising);
    expect(events).toEqual([`1s found ${B}`]);
    await resolver.stop();
  });
});
