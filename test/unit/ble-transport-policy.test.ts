// Pure parts of the BLE medium: who dials (one link per pair), the INFO record, the GATT layout, and the
// adapter spec to library options mapping. The radio itself is tested in test/system/ble-*.test.ts.
import { describe, expect, it } from 'vitest';
import { NEARMESH_SERVICE_UUID_HEX } from '../../transports/ble/advertisement.js';
import { isBleDialer } from '../../transports/ble/ble-resolver.js';
import {
  decodeInfo,
  encodeInfo,
  INFO_CHARACTERISTIC_UUID_HEX,
  RX_CHARACTERISTIC_UUID_HEX,
  TX_CHARACTERISTIC_UUID_HEX,
} from '../../transports/ble/gatt-service.js';
import { hciBindingOptions, isSameAdapter } from '../../transports/ble/radio.js';

describe('isBleDialer', () => {
  it('makes exactly one of two agents dial, the one with the smaller short peer id', () => {
    const a = '1a2b3c4d5e6f7081';
    const b = 'e1d2c3b4a5968778';
    expect(isBleDialer(a, b.slice(0, 6))).toBe(true);
    expect(isBleDialer(b, a.slice(0, 6))).toBe(false);
  });

  it('compares only the advertised prefix, and lets both dial on a prefix collision', () => {
    expect(isBleDialer('abcdef0000000000', 'abcdef')).toBe(true);
    expect(isBleDialer('abcdeeffffffffff', 'abcdef')).toBe(true);
    expect(isBleDialer('abcdf00000000000', 'abcdef')).toBe(false);
  });
});

describe('GATT service layout and INFO record', () => {
  it('uses four distinct 128-bit UUIDs of one family', () => {
    const uuids = [
      NEARMESH_SERVICE_UUID_HEX,
      RX_CHARACTERISTIC_UUID_HEX,
      TX_CHARACTERISTIC_UUID_HEX,
      INFO_CHARACTERISTIC_UUID_HEX,
    ];
    expect(new Set(uuids).size).toBe(4);
    for (const uuid of uuids) expect(uuid).toMatch(/^[0-9a-f]{32}$/);
    for (const uuid of uuids) expect(uuid.slice(0, 30)).toBe(NEARMESH_SERVICE_UUID_HEX.slice(0, 30));
  });

  it('round-trips [version, peerId, name] and refuses what is not one', () => {
    const info = { version: 1, peerId: '0123456789abcdef', name: 'kitchen-pi' };
    expect(decodeInfo(encodeInfo(info))).toEqual(info);
    expect(decodeInfo(new Uint8Array([0xff]))).toBeUndefined();
    expect(decodeInfo(encodeInfo({ ...info, peerId: 'not-a-peer-id' }))).toBeUndefined();
    expect(decodeInfo(new Uint8Array(0))).toBeUndefined();
  });
});

describe('hciBindingOptions', () => {
  it('maps "hciN" to the kernel socket and "uart:" to the UART driver', () => {
    expect(hciBindingOptions({ kind: 'hci', index: 1 })).toEqual({ hciDriver: 'native', deviceId: 1 });
    expect(hciBindingOptions({ kind: 'uart', path: '/dev/ttyAMA0' })).toEqual({
      hciDriver: 'uart',
      bindParams: { uart: { port: '/dev/ttyAMA0', baudRate: 1_000_000 } },
    });
    expect(
      hciBindingOptions({ kind: 'uart', path: '/dev/ttyUSB0', baudRate: 115_200 }).bindParams?.uart?.baudRate,
    ).toBe(115_200);
  });

  it('puts both roles of one adapter on the shared driver, keyed by the adapter', () => {
    expect(hciBindingOptions({ kind: 'hci', index: 0 }, 'central')).toEqual({
      hciDriver: 'nearmesh-shared',
      deviceId: 0,
      bindParams: { nearmeshShared: { driver: 'native', role: 'central', key: 'hci0' } },
    });
    expect(hciBindingOptions({ kind: 'uart', path: '/dev/ttyAMA0' }, 'peripheral')).toEqual({
      hciDriver: 'nearmesh-shared',
      bindParams: {
        uart: { port: '/dev/ttyAMA0', baudRate: 1_000_000 },
        nearmeshShared: { driver: 'uart', role: 'peripheral', key: 'uart:/dev/ttyAMA0' },
      },
    });
    expect(isSameAdapter({ kind: 'hci', index: 0 }, { kind: 'hci', index: 0 })).toBe(true);
    expect(isSameAdapter({ kind: 'hci', index: 0 }, { kind: 'hci', index: 1 })).toBe(false);
  });
});
