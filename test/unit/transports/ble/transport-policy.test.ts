// Pure parts of the BLE medium: who dials (one link per pair), the GATT layout, the random advertising address
// and its HCI commands, and the adapter spec to library options mapping. The radio itself is tested in
// test/system/ble-*.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { NEARMESH_SERVICE_UUID_HEX } from '../../../../transports/ble/advertisement.js';
import { isBleDialer } from '../../../../transports/ble/ble-resolver.js';
import { BleAddressError } from '../../../../transports/ble/errors.js';
import * as gattService from '../../../../transports/ble/gatt-service.js';
import {
  RX_CHARACTERISTIC_UUID_HEX,
  TX_CHARACTERISTIC_UUID_HEX,
} from '../../../../transports/ble/gatt-service.js';
import {
  formatAddress,
  type HciCommandSocket,
  randomAddressAdvertisingParametersCommand,
  randomPrivateAddress,
  setRandomAddressCommand,
  useAdvertisingAddress,
} from '../../../../transports/ble/private-address.js';
import { hciBindingOptions, isSameAdapter } from '../../../../transports/ble/radio.js';
import { ADVERTISER_WARNING_INTERVAL_MS, OncePerInterval } from '../../../../transports/once-per-interval.js';

describe('isBleDialer', () => {
  it('makes exactly one of two agents dial, the one with the smaller peer id', () => {
    const a = '1a2b3c4d5e6f7081';
    const b = 'e1d2c3b4a5968778';
    expect(isBleDialer(a, b)).toBe(true);
    expect(isBleDialer(b, a)).toBe(false);
    expect(isBleDialer('abcdef0000000000', 'abcdef0000000001')).toBe(true);
    expect(isBleDialer(a, a)).toBe(false);
  });
});

/** A controller behind bleno's socket that answers each command with Command Complete and this status. */
class FakeController extends EventEmitter implements HciCommandSocket {
  readonly written: string[] = [];

  constructor(readonly status: (opcode: number) => number) {
    super();
  }

  write(packet: Buffer): void {
    this.written.push(packet.toString('hex'));
    const opcode = packet.readUInt16LE(1);
    const complete = Buffer.from([0x04, 0x0e, 0x04, 0x01, opcode & 0xff, opcode >> 8, this.status(opcode)]);
    setImmediate(() => this.emit('data', complete));
  }
}

describe('changing the advertising address', () => {
  const address = Uint8Array.from([0x3a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);

  it('sets the random address, then advertises from it', async () => {
    const controller = new FakeController(() => 0);
    await useAdvertisingAddress(controller, address);
    expect(controller.written).toEqual([
      setRandomAddressCommand(address).toString('hex'),
      randomAddressAdvertisingParametersCommand().toString('hex'),
    ]);
    expect(controller.listenerCount('data')).toBe(0);
  });

  it('leaves the advertising parameters alone when the controller refuses the address', async () => {
    // Command Disallowed: what a controller that is scanning answers.
    const controller = new FakeController((opcode) => (opcode === 0x2005 ? 0x0c : 0));
    const refused = useAdvertisingAddress(controller, address);
    await expect(refused).rejects.toThrow(BleAddressError);
    await expect(refused).rejects.toThrow(/0x2005 failed with status 0x0c \(the controller is scanning/);
    expect(controller.written).toEqual([setRandomAddressCommand(address).toString('hex')]);
  });
});

describe('advertiser warnings (an older agent nearby, bad data; BLE advertisers and mDNS instances)', () => {
  it('are said once an hour per advertiser, however often it is heard', () => {
    const warned = new OncePerInterval(ADVERTISER_WARNING_INTERVAL_MS, 256);
    const hourMs = 60 * 60_000;
    expect(ADVERTISER_WARNING_INTERVAL_MS).toBe(hourMs);
    expect(warned.allow('aa:bb', 0)).toBe(true);
    // Heard again at every rescan (10 s) for the rest of the hour: silent.
    for (let atMs = 10_000; atMs < hourMs; atMs += 10_000) expect(warned.allow('aa:bb', atMs)).toBe(false);
    expect(warned.allow('cc:dd', 10_000)).toBe(true);
    expect(warned.allow('aa:bb', hourMs)).toBe(true);
  });

  it('keep a bounded table: a full one makes room from expired entries, else drops and counts', () => {
    const warned = new OncePerInterval(1_000, 2);
    expect(warned.allow('a', 0)).toBe(true);
    expect(warned.allow('b', 0)).toBe(true);
    expect(warned.allow('c', 500)).toBe(false);
    expect(warned.dropped).toBe(1);
    expect(warned.allow('c', 1_000)).toBe(true);
    expect(warned.dropped).toBe(1);
  });
});

describe('GATT service layout', () => {
  it('has RX and TX only, two distinct 128-bit UUIDs of the service family: nothing readable', () => {
    const uuids = [NEARMESH_SERVICE_UUID_HEX, RX_CHARACTERISTIC_UUID_HEX, TX_CHARACTERISTIC_UUID_HEX];
    expect(new Set(uuids).size).toBe(3);
    for (const uuid of uuids) expect(uuid).toMatch(/^[0-9a-f]{32}$/);
    for (const uuid of uuids) expect(uuid.slice(0, 30)).toBe(NEARMESH_SERVICE_UUID_HEX.slice(0, 30));
    expect(Object.keys(gattService).sort()).toEqual([
      'RX_CHARACTERISTIC_UUID_HEX',
      'TX_CHARACTERISTIC_UUID_HEX',
    ]);
  });
});

describe('random advertising address', () => {
  it('is a non-resolvable private address: top two bits 00, the rest random, a new one every time', () => {
    const addresses = Array.from({ length: 200 }, () => randomPrivateAddress());
    for (const address of addresses) {
      expect(address.length).toBe(6);
      expect((address[0] ?? 0) >> 6).toBe(0);
      expect(address.some((byte) => byte !== 0)).toBe(true);
    }
    expect(new Set(addresses.map(formatAddress)).size).toBe(200);
    expect(formatAddress(Uint8Array.from([0x3a, 0x0b, 0, 1, 2, 0xff]))).toBe('3a:0b:00:01:02:ff');
  });

  it('is set by LE Set Random Address and advertised from with own address type random', () => {
    const address = Uint8Array.from([0x3a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
    // H4 command packet, opcode 0x2005 little-endian, 6 parameter bytes, the address least significant first.
    expect(setRandomAddressCommand(address).toString('hex')).toBe('010520060f0e0d0c0b3a');
    // As bleno sends LE Set Advertising Parameters (100 ms, ADV_IND, all channels), own address type 1.
    expect(randomAddressAdvertisingParametersCommand().toString('hex')).toBe(
      '0106200fa000a0000001000000000000000700',
    );
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
