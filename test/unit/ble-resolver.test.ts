// The BLE resolver's bookkeeping (AdvertiserTable): which heard agents become dial candidates, when they are
// lost again, and the RSSI the peer table shows. The radio side is covered by test/system/ble-*.test.ts.
import { describe, expect, it } from 'vitest';
import { meshTag } from '../../transports/ble/advertisement.js';
import { AdvertiserTable, RSSI_UNAVAILABLE } from '../../transports/ble/ble-resolver.js';
import type { DiscoveredPeripheral } from '../../transports/ble/central.js';

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
