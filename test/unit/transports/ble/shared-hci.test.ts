// The HCI multiplexer that lets noble and bleno share one controller (transports/ble/shared-hci.ts), against
// a fake driver: one real socket, one reset, event masks joined, data and credits to the owning role.
// The real libraries on an emulated controller are tested in test/system/ble-agents.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  type HciSocket,
  type HciSocketModule,
  type SharedBindParams,
  sharedSocketClass,
} from '../../../../transports/ble/shared-hci.js';
import { until } from '../../../support/until.js';

class FakeDriver extends EventEmitter {
  static instances: FakeDriver[] = [];
  readonly writes: string[] = [];
  isUp = true;
  constructor() {
    super();
    FakeDriver.instances.push(this);
  }
  bindRaw(): void {}
  bindUser(): void {}
  bindControl(): void {}
  isDevUp(): boolean {
    return this.isUp;
  }
  setFilter(): void {}
  start(): void {}
  stop(): void {}
  write(data: Buffer): void {
    this.writes.push(data.toString('hex'));
  }
}

const drivers: HciSocketModule = { loadDriver: () => FakeDriver as unknown as new () => HciSocket };
let keyCounter = 0;

function pair(): {
  central: HciSocket;
  peripheral: HciSocket;
  real: FakeDriver;
  seen: Record<string, string[]>;
} {
  const Shared = sharedSocketClass(drivers);
  const key = `fake${keyCounter++}`;
  const seen: Record<string, string[]> = { central: [], peripheral: [] };
  const open = (role: 'central' | 'peripheral'): HciSocket => {
    const socket = new Shared();
    socket.on('data', (data: Buffer) => seen[role]?.push(data.toString('hex')));
    const params: SharedBindParams = { nearmeshShared: { driver: 'uart', role, key } };
    socket.bindRaw(undefined, params);
    socket.start();
    return socket;
  };
  const central = open('central');
  const peripheral = open('peripheral');
  const real = FakeDriver.instances.at(-1) as FakeDriver;
  return { central, peripheral, real, seen };
}

const hex = (text: string): Buffer => Buffer.from(text.replaceAll(' ', ''), 'hex');
const ACL = (handle: number, byte: string): Buffer =>
  hex(`02 ${handle.toString(16).padStart(2, '0')}00 0100 ${byte}`);

describe('shared HCI controller', () => {
  it('opens the real controller once and answers a second reset itself', async () => {
    const before = FakeDriver.instances.length;
    const { peripheral, real, seen } = pair();
    expect(FakeDriver.instances.length - before).toBe(1);
    peripheral.write(hex('01 030c 00'));
    await until('the answer to the reset', () => seen.peripheral?.length);
    expect(real.writes).toEqual([]);
    expect(seen.peripheral).toEqual(['040e0401030c00']);
    expect(seen.central).toEqual([]);
  });

  it('sends the controller the union of both roles’ event masks', () => {
    const { central, peripheral, real } = pair();
    peripheral.write(hex('01 0120 08 1f00000000000000'));
    central.write(hex('01 0120 08 4100000000000001'));
    expect(real.writes).toEqual(['010120081f00000000000000', '010120085f00000000000001']);
  });

  it('gives each connection’s data and credits to its role, and holds ACL to the buffer count', () => {
    const { central, peripheral, real, seen } = pair();
    // LE Read Buffer Size: 27-byte packets, 2 buffers.
    real.emit('data', hex('04 0e 07 01 0220 00 1b00 02'));
    // Handle 0x40: central role (0x00); handle 0x41: peripheral role (0x01).
    real.emit('data', hex('04 3e 13 01 00 4000 00 00 112233445566 1800 0000 4800 00'));
    real.emit('data', hex('04 3e 13 01 00 4100 01 00 aabbccddeeff 1800 0000 4800 00'));
    real.emit('data', ACL(0x40, 'aa'));
    real.emit('data', ACL(0x41, 'bb'));
    expect(seen.central?.filter((p) => p.startsWith('02'))).toEqual(['0240000100aa']);
    expect(seen.peripheral?.filter((p) => p.startsWith('02'))).toEqual(['0241000100bb']);

    central.write(ACL(0x40, '01'));
    peripheral.write(ACL(0x41, '02'));
    central.write(ACL(0x40, '03'));
    expect(real.writes).toEqual(['0240000100' + '01', '0241000100' + '02']);
    // One packet of each handle completes: the third goes out, and each role hears of its own only.
    real.emit('data', hex('04 13 09 02 4000 0100 4100 0100'));
    expect(real.writes.at(-1)).toBe('024000010003');
    expect(seen.central?.at(-1)).toBe('04130501' + '40000100');
    expect(seen.peripheral?.at(-1)).toBe('04130501' + '41000100');
  });

  it('frees a connection’s credits and queue when it ends', () => {
    const { central, real } = pair();
    real.emit('data', hex('04 0e 07 01 0220 00 1b00 01'));
    real.emit('data', hex('04 3e 13 01 00 4000 00 00 112233445566 1800 0000 4800 00'));
    real.emit('data', hex('04 3e 13 01 00 4200 00 00 665544332211 1800 0000 4800 00'));
    central.write(ACL(0x40, '01'));
    central.write(ACL(0x40, '02'));
    central.write(ACL(0x42, '03'));
    expect(real.writes).toEqual(['024000010001']);
    real.emit('data', hex('04 05 04 00 4000 13')); // Disconnection Complete, handle 0x40
    expect(real.writes).toEqual(['024000010001', '024200010003']);
  });
});
