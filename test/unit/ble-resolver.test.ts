// The BLE resolver's bookkeeping (AdvertiserTable): which heard agents become dial candidates, when they are
// lost again, and the RSSI the peer table shows; and the resolver over a duty-cycled scan (fake transport,
// fake timers), which must not lose what it did not listen for. The radio side is covered by
// test/system/ble-*.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypedEmitter } from '../../agent/events.js';
import { meshTag } from '../../transports/ble/advertisement.js';
import {
  AdvertiserTable,
  BleResolver,
  DEFAULT_FORGET_AFTER_MS,
  RSSI_UNAVAILABLE,
  type ScanningTransport,
} from '../../transports/ble/ble-resolver.js';
import type { BleTransportEvents } from '../../transports/ble/ble-transport.js';
import type { DiscoveredPeripheral } from '../../transports/ble/central.js';
import { ScanDutyScheduler } from '../../transports/ble/scan-duty.js';

const meshKey = new Uint8Array(32).fill(7);
const otherMeshKey = new Uint8Array(32).fill(8);
const ownPeerId = '1111111111111111';
const FORGET_MS = 30_000;

function heard(
  shortPeerId: string,
  options: { accepting?: boolean; rssi?: number; key?: Uint8Array; id?: string } = {},
): DiscoveredPeripheral {
  return {
    id: options.id ?? `00aa0100${shortPeerId}`,
    address: '00:aa:01:00:00:42',
    rssi: options.rssi ?? -60,
    advertisement: {
      version: 1,
      shortPeerId,
      meshTag: Buffer.from(meshTag(options.key ?? meshKey)).toString('hex'),
      isWifiAvailable: false,
      isAcceptingLinks: options.accepting ?? true,
      name: `agent-${shortPeerId}`,
    },
  };
}

describe('AdvertiserTable', () => {
  it('reports an agent of our mesh once, as long as it accepts links and we are its dialler', () => {
    const table = new AdvertiserTable(ownPeerId, meshKey, FORGET_MS);
    const first = table.hear(heard('222222'), 0);
    expect(first.found.map((c) => c.shortPeerId)).toEqual(['222222']);
    expect(first.found[0]).toMatchObject({ medium: 'ble', address: '00aa0100222222', name: 'agent-222222' });
    expect(table.hear(heard('222222'), 1_000)).toEqual({ found: [], lost: [] });
  });

  it('ignores other meshes, our own peripheral, and agents that dial us instead', () => {
    const table = new AdvertiserTable(ownPeerId, meshKey, FORGET_MS);
    expect(table.hear(heard('222222', { key: otherMeshKey }), 0).found).toEqual([]);
    expect(table.hear(heard('111111'), 0).found).toEqual([]);
    expect(table.hear(heard('000001'), 0).found).toEqual([]);
  });

  it('loses a candidate that stops accepting links and finds it again when it accepts', () => {
    const table = new AdvertiserTable(ownPeerId, meshKey, FORGET_MS);
    table.hear(heard('222222'), 0);
    const full = table.hear(heard('222222', { accepting: false }), 1_000);
    expect(full.lost.map((c) => c.shortPeerId)).toEqual(['222222']);
    expect(table.hear(heard('222222', { accepting: false }), 2_000)).toEqual({ found: [], lost: [] });
    expect(table.hear(heard('222222'), 3_000).found.map((c) => c.shortPeerId)).toEqual(['222222']);
  });

  it('loses what went unheard for the forget time, and only that', () => {
    const table = new AdvertiserTable(ownPeerId, meshKey, FORGET_MS);
    table.hear(heard('222222'), 0);
    table.hear(heard('333333'), 20_000);
    table.hear(heard('000001'), 0); // heard, never a candidate: forgotten silently
    expect(table.sweep(FORGET_MS - 1)).toEqual([]);
    expect(table.sweep(FORGET_MS).map((c) => c.shortPeerId)).toEqual(['222222']);
    expect(table.sweep(FORGET_MS * 2).map((c) => c.shortPeerId)).toEqual(['333333']);
    // Heard again after being forgotten: a new candidate.
    expect(table.hear(heard('222222'), FORGET_MS * 3).found).toHaveLength(1);
  });

  it('gives the last RSSI by full peer id, and none when the radio says it has none', () => {
    const table = new AdvertiserTable(ownPeerId, meshKey, FORGET_MS);
    table.hear(heard('222222', { rssi: -71 }), 0);
    table.hear(heard('222222', { rssi: -64 }), 1_000);
    table.hear(heard('000001', { rssi: RSSI_UNAVAILABLE }), 0);
    expect(table.rssiOf('222222aaaaaaaaaa')).toBe(-64);
    expect(table.rssiOf('000001aaaaaaaaaa')).toBeUndefined();
    expect(table.rssiOf('999999aaaaaaaaaa')).toBeUndefined();
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
    const resolver = new BleResolver(transport, { peerId: ownPeerId, meshKey });
    const events: string[] = [];
    const startMs = Date.now();
    const at = (): string => `${Math.round((Date.now() - startMs) / 1000)}s`;
    resolver.on('found', (candidate) => events.push(`${at()} found ${candidate.name}`));
    resolver.on('lost', (candidate) => events.push(`${at()} lost ${candidate.name}`));
    await resolver.start();
    return { transport, resolver, events };
  }

  it('keeps an advertiser missed for 40 s of wall time but only 10 s of scanning, at duty 0.25', async () => {
    const { transport, resolver, events } = await started(0.25);
    transport.advertise(heard('222222'));
    expect(events).toEqual(['0s found agent-222222']);
    // Not heard in the next three periods (its advertisements lost to Wi-Fi), heard again in the fifth.
    await vi.advanceTimersByTimeAsync(40_000);
    transport.advertise(heard('222222'));
    expect(events).toEqual(['0s found agent-222222']);
    expect(transport.scanPausedMs()).toBe(4 * 7_500);
    await resolver.stop();
  });

  it('loses an advertiser after 31 s of scanning without hearing it, not 31 s of wall time', async () => {
    const { transport, resolver, events } = await started(0.25);
    transport.advertise(heard('222222'));
    // 31 s of scanning at 2.5 s per 10 s period: 12.4 periods; the resolver sweeps every 10 s.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(events).toEqual(['0s found agent-222222']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(events).toEqual(['0s found agent-222222', '130s lost agent-222222']);
    await resolver.stop();
  });

  it('at duty 1 loses it after 31 s of wall time, as before', async () => {
    const { transport, resolver, events } = await started(1);
    transport.advertise(heard('222222'));
    await vi.advanceTimersByTimeAsync(DEFAULT_FORGET_AFTER_MS + 10_000);
    expect(events).toEqual(['0s found agent-222222', '40s lost agent-222222']);
    expect(transport.rescans).toBeGreaterThan(0);
    await resolver.stop();
  });

  it('hears the advertiser again in every period it keeps advertising, and never loses it', async () => {
    const { transport, resolver, events } = await started(0.25);
    const advertising = setInterval(() => transport.advertise(heard('222222')), 1_000);
    await vi.advanceTimersByTimeAsync(300_000);
    clearInterval(advertising);
    expect(events).toEqual(['1s found agent-222222']);
    await resolver.stop();
  });
});
