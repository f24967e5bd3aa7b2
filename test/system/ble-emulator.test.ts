// The BLE emulator harness (scripts/ble-emulator) with the real libraries: @stoprocent/bleno as a
// peripheral on one emulated controller and @stoprocent/noble as a central on another, each in its
// own process, talking H4 HCI over ptys to BlueZ's btvirt. Proves the harness and the LD_PRELOAD
// fixes (AF_ALG, reliable sends, disconnect on peer loss) that the BLE transport is built on.
import { afterEach, expect, it } from 'vitest';
import { type BleEmulator, startEmulator } from '../../scripts/ble-emulator/emulator.js';
import { describeWithBleEmulator, JsonChild, stopAllChildren } from '../support/ble-emulator.js';

const COUNT = 200;
const SIZE = 180;
const inOrder = (n: number) => Array.from({ length: n }, (_, i) => i);

describeWithBleEmulator('BLE emulator: real bleno and noble over btvirt', () => {
  let emulator: BleEmulator | undefined;

  afterEach(async () => {
    await stopAllChildren();
    await emulator?.stop();
    emulator = undefined;
  });

  const peripheral = async (pty: string, env: Record<string, string> = {}) => {
    const child = new JsonChild('ble-echo-peripheral.mjs', { BLE_PTY: pty, ...env });
    await child.waitFor('advertising');
    return child;
  };

  it('noble finds bleno by service UUID, negotiates the MTU and echoes 200 × 180-byte values in order', async () => {
    emulator = await startEmulator({ controllers: 2 });
    const started = performance.now();
    const echo = await peripheral(emulator.ptys[0]!, { BLE_EXPECT: String(COUNT) });
    const central = new JsonChild('ble-echo-central.mjs', {
      BLE_PTY: emulator.ptys[1]!,
      BLE_COUNT: String(COUNT),
      BLE_SIZE: String(SIZE),
    });
    const result = await central.waitFor('result', 20_000);
    const done = await echo.waitFor('done');
    const wallMs = performance.now() - started;

    expect(done.received).toEqual(inOrder(COUNT));
    expect(done.bytes).toBe(COUNT * SIZE);
    expect(result.echoed).toEqual(inOrder(COUNT));
    expect(result.corrupt).toBe(0);
    // noble asks for 256, bleno allows up to 256: one 180-byte value per ATT packet.
    expect(result.mtu).toBe(256);
    expect((await echo.waitFor('mtu')).mtu).toBe(256);
    const discovered = central.messages.find((m) => m.event === 'discovered')!;
    expect(discovered.localName).toBe('nm-echo');
    expect(discovered.rssi).toBe(127); // btvirt reports no RSSI (127 = not available)

    console.log(
      `[ble-emulator] MTU ${result.mtu}; ${COUNT} writes of ${SIZE} B queued in ${result.timings.writesMs} ms, ` +
        `all echoed ${result.timings.allEchoedMs} ms after the first write; central: powered on ` +
        `${result.timings.poweredOn} ms, discovered ${result.timings.discovered} ms, connected ` +
        `${result.timings.connected} ms, GATT ready ${result.timings.gattReady} ms, done ` +
        `${result.timings.total} ms after start; test wall time from emulator start ${Math.round(wallMs)} ms`,
    );
  });

  it('holds the ATT MTU at 23 when the central asks for it', async () => {
    emulator = await startEmulator({ controllers: 2 });
    const echo = await peripheral(emulator.ptys[0]!, { BLE_EXPECT: String(COUNT) });
    const central = new JsonChild('ble-echo-central.mjs', {
      BLE_PTY: emulator.ptys[1]!,
      BLE_COUNT: String(COUNT),
      BLE_SIZE: '20', // MTU 23 - 3
      BLE_MTU: '23',
    });
    const result = await central.waitFor('result', 20_000);
    expect(result.mtu).toBe(23);
    expect(result.echoed).toEqual(inOrder(COUNT));
    expect((await echo.waitFor('done')).received).toEqual(inOrder(COUNT));
    console.log(`[ble-emulator] MTU 23: ${COUNT} × 20 B echoed in ${result.timings.allEchoedMs} ms`);
  });

  it('loses no notification while the central does not read its pty (reliable sends)', async () => {
    // Stock btvirt drops whatever does not fit in the socket and pty (measured: 5751 of 6000 lost).
    emulator = await startEmulator({ controllers: 2 });
    await peripheral(emulator.ptys[0]!, { BLE_FLOOD: '6000', BLE_FLOOD_SIZE: '185' });
    const central = new JsonChild('ble-echo-central.mjs', {
      BLE_PTY: emulator.ptys[1]!,
      BLE_FLOOD: '6000',
      BLE_BLOCK_MS: '1500',
    });
    const result = await central.waitFor('flood-result', 25_000);
    expect(result.lost).toBe(0);
    expect(result.received).toBe(6000);
    expect(result.inOrder).toBe(true);
  }, 40_000);

  it('per-open controllers: a killed central is noticed by the peripheral and a new one re-links', async () => {
    emulator = await startEmulator({ controllers: 2, lifetime: 'per-open' });
    const echo = await peripheral(emulator.ptys[0]!, { BLE_EXPECT: '1000000' });
    const first = new JsonChild('ble-echo-central.mjs', { BLE_PTY: emulator.ptys[1]!, BLE_COUNT: '1000000' });
    await echo.waitFor('subscribed');
    const killedAt = performance.now();
    await first.stop('SIGKILL');
    // btvirt drops the connection silently; the preload library tells the peripheral's host.
    await echo.waitFor('disconnect', 5_000);
    const noticedMs = performance.now() - killedAt;
    const second = new JsonChild('ble-echo-central.mjs', {
      BLE_PTY: emulator.ptys[1]!,
      BLE_COUNT: '50',
      BLE_SIZE: String(SIZE),
    });
    const result = await second.waitFor('result', 20_000);
    expect(result.echoed).toEqual(inOrder(50));
    console.log(
      `[ble-emulator] per-open: peripheral saw the killed central go after ${Math.round(noticedMs)} ms`,
    );
  });

  it('persistent controllers: a restarted central resets its controller, the peripheral is told, links again', async () => {
    emulator = await startEmulator({ controllers: 2 });
    const echo = await peripheral(emulator.ptys[0]!, { BLE_EXPECT: '1000000' });
    const first = new JsonChild('ble-echo-central.mjs', { BLE_PTY: emulator.ptys[1]!, BLE_COUNT: '1000000' });
    await echo.waitFor('subscribed');
    await first.stop('SIGKILL');
    // The controller outlives its host (like a UART controller on a Pi): nothing happens until a
    // new host opens the pty and sends HCI Reset.
    const second = new JsonChild('ble-echo-central.mjs', {
      BLE_PTY: emulator.ptys[1]!,
      BLE_COUNT: '50',
      BLE_SIZE: String(SIZE),
    });
    await echo.waitFor('disconnect', 5_000);
    const result = await second.waitFor('result', 20_000);
    expect(result.echoed).toEqual(inOrder(50));
    // The peripheral was told by the new host's reset; the old host's going dropped nothing.
    expect(emulator.output()).toContain('HCI Reset: connection');
    expect(emulator.output()).not.toContain('controller gone');
  });
});
