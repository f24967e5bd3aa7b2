// The BLE medium end to end on the emulator: two processes, each with a bleno peripheral and a noble central on
// their own emulated controllers (4 ptys), find each other, link once (the smaller peer id dials) and
// move 1 MiB of numbered frames each way through GattLink, at ATT MTU 256 and held at 23; then the dialler
// closes right after its last frame and the acceptor must still have received everything. Also: the same
// with the scan duty-cycled at 0.25 (Wi-Fi/Bluetooth coexistence), the peer appearing while the scan is paused;
// and the hint and address rotating (on two controllers per agent and on one), watched by a scanner without
// the key, which must see neither peer id nor the controllers' own addresses.
import { afterEach, expect, it } from 'vitest';
import { type BleEmulator, startEmulator } from '../../scripts/ble-emulator/emulator.js';
import {
  type ChildMessage,
  describeWithBleEmulator,
  JsonChild,
  stopAllChildren,
} from '../support/ble-emulator.js';

/** Every 3-byte window of a peer id: none may appear in what an outsider hears. */
const idWindows = (peerId: string): Buffer[] => {
  const id = Buffer.from(peerId, 'hex');
  return Array.from({ length: id.length - 2 }, (_, i) => id.subarray(i, i + 3));
};

const FRAME_COUNT = 1024;
const FRAME_BYTES = 1024; // 1 MiB each way
const MESH_KEY = '6d6573682d6b65792d666f722d626c652d7472616e73706f72742d746573742d';
const LOW_PEER_ID = '1a2b3c4d5e6f7081';
/** The nearmesh service UUID as it appears in AD structures (least significant byte first). */
const NEARMESH_UUID_LE = '4dcd79ad5b88158e1641f881c44e3517';
const HIGH_PEER_ID = 'e1d2c3b4a5968778';

describeWithBleEmulator('BLE transport: two agents over emulated controllers', () => {
  let emulator: BleEmulator | undefined;

  afterEach(async () => {
    await stopAllChildren();
    await emulator?.stop();
    emulator = undefined;
  });

  /** Two agents with fast rotation; `high` (the acceptor) starts first, `low` once high has rotated twice. */
  const rotating = async (shared: boolean) => {
    emulator = await startEmulator({ controllers: shared ? 3 : 5 });
    const ptys = emulator.ptys;
    const scanner = new JsonChild('ble-raw-scanner.mjs', { BLE_PTY: ptys[shared ? 2 : 4]! });
    await scanner.waitFor('scanning');
    const agent = (index: number, peerId: string) =>
      new JsonChild('ble-transport-agent.mjs', {
        BLE_PERIPHERAL_PTY: ptys[shared ? index : 2 * index]!,
        BLE_CENTRAL_PTY: ptys[shared ? index : 2 * index + 1]!,
        PEER_ID: peerId,
        MESH_KEY,
        FRAME_COUNT: '16',
        FRAME_BYTES: String(FRAME_BYTES),
        HINT_ROTATION_MS: '2000',
      });
    const high = agent(1, HIGH_PEER_ID);
    const addresses = new Set<string>();
    await high.waitFor('advertising', 15_000, (m) => {
      addresses.add(m.address);
      return addresses.size >= 3;
    });
    const low = agent(0, LOW_PEER_ID);
    const found = await low.waitFor('found', 15_000);
    // The dialler found high at the address of its third (or later) rotation, by the peer id its hint opened to.
    expect(found.candidate.peerId).toBe(HIGH_PEER_ID);
    for (const child of [low, high]) {
      expect((await child.waitFor('received', 30_000)).problems).toEqual([]);
      expect(child.messages.some((m) => m.event === 'extra-link' || m.event === 'dial-failed')).toBe(false);
    }
    expect(high.messages.filter((m) => m.event === 'warning')).toEqual([]);
    const publicAddress = high.messages.find((m) => m.event === 'advertising')?.peripheral as string;
    const heardFrom = new Set<string>();
    await scanner.waitFor('report', 10_000, (m) => {
      if (m.type === 4 && Buffer.from(m.data, 'hex').includes(Buffer.from(NEARMESH_UUID_LE, 'hex'))) {
        heardFrom.add(m.address);
      }
      return [...heardFrom].filter((a) => addresses.has(a)).length >= 2;
    });
    const reports = scanner.messages.filter((m) => m.event === 'report');
    for (const report of reports) {
      // Compared as bytes: a hex string search would also match across byte boundaries.
      const data = Buffer.from(report.data, 'hex');
      for (const window of [...idWindows(LOW_PEER_ID), ...idWindows(HIGH_PEER_ID)]) {
        expect(data.includes(window), `${report.data} holds ${window.toString('hex')}`).toBe(false);
      }
      expect(report.address).not.toBe(publicAddress);
      expect(report.addressType).toBe('random');
    }
    return { addresses, heardFrom, reports };
  };

  it('rotates hint and address: an outsider sees no id and no controller address, members still link', async () => {
    const { addresses, heardFrom, reports } = await rotating(false);
    console.log(
      `[ble-transport] rotation: high advertised from ${addresses.size} random addresses before low started; ` +
        `an outsider heard ${heardFrom.size} of them in ${reports.length} distinct reports, none with a peer id`,
    );
  }, 60_000);

  it('rotates the address on a controller that also scans (both roles on one), members still link', async () => {
    const { addresses } = await rotating(true);
    expect(addresses.size).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('recognises a protocol v1 agent nearby: says so, never dials it', async () => {
    emulator = await startEmulator({ controllers: 3 });
    const older = new JsonChild('ble-v1-advertiser.mjs', { BLE_PTY: emulator.ptys[2]! });
    const { address } = await older.waitFor('advertising');
    const low = new JsonChild('ble-transport-agent.mjs', {
      BLE_PERIPHERAL_PTY: emulator.ptys[0]!,
      BLE_CENTRAL_PTY: emulator.ptys[1]!,
      PEER_ID: LOW_PEER_ID,
      MESH_KEY,
    });
    const warning = await low.waitFor('warning', 15_000);
    expect(warning.message).toContain(`protocol v1 agent at ${address} ignored: this agent speaks 2`);
    expect(low.messages.filter((m) => m.event === 'warning' || m.event === 'found')).toEqual([warning]);
  }, 30_000);

  const exchange = async (mtu: number | undefined, timeoutMs: number) => {
    emulator = await startEmulator({ controllers: 4 });
    const ptys = emulator.ptys;
    const agent = (index: number, peerId: string) =>
      new JsonChild('ble-transport-agent.mjs', {
        BLE_PERIPHERAL_PTY: ptys[2 * index]!,
        BLE_CENTRAL_PTY: ptys[2 * index + 1]!,
        PEER_ID: peerId,
        MESH_KEY,
        FRAME_COUNT: String(FRAME_COUNT),
        FRAME_BYTES: String(FRAME_BYTES),
        ...(mtu !== undefined && { BLE_MTU: String(mtu) }),
      });
    const started = performance.now();
    const low = agent(0, LOW_PEER_ID);
    const high = agent(1, HIGH_PEER_ID);
    const results: Record<string, ChildMessage> = {};
    for (const [name, child] of [
      ['low', low],
      ['high', high],
    ] as const) {
      results[`${name}.received`] = await child.waitFor('received', timeoutMs);
      results[`${name}.sent`] = await child.waitFor('sent', timeoutMs);
    }
    const wallMs = performance.now() - started;
    const lowLink = await low.waitFor('link');
    const highLink = await high.waitFor('link');
    // Only the smaller peer id dials: one link, initiated by `low`.
    expect(lowLink.isInitiator).toBe(true);
    expect(highLink.isInitiator).toBe(false);
    // Fragments fill the negotiated ATT MTU − 3 on both sides.
    expect(lowLink.maxFragmentBytes).toBe((mtu ?? 256) - 3);
    expect(highLink.maxFragmentBytes).toBe((mtu ?? 256) - 3);
    expect(high.messages.some((m) => m.event === 'found')).toBe(false);
    // The dialler closes once done; the acceptor hears of it, and nothing sent before the close was lost.
    const lowClose = await low.waitFor('close', 5_000);
    const highClose = await high.waitFor('close', 5_000);
    expect(lowClose.error).toBeNull();
    expect(highClose.at).toBeGreaterThanOrEqual(results['high.received']!.at);
    for (const child of [low, high]) {
      expect(child.messages.some((m) => m.event === 'extra-link' || m.event === 'dial-failed')).toBe(false);
      expect(child.messages.filter((m) => m.event === 'close')).toHaveLength(1);
    }
    for (const side of ['low', 'high']) {
      expect(results[`${side}.received`]!.frames).toBe(FRAME_COUNT);
      expect(results[`${side}.received`]!.problems).toEqual([]);
    }
    const mib = (FRAME_COUNT * FRAME_BYTES) / (1024 * 1024);
    const rate = (ms: number) => Math.round((FRAME_COUNT * FRAME_BYTES) / ms); // bytes per ms = kB/s
    console.log(
      `[ble-transport] MTU ${mtu ?? 256}: link at ${lowLink.at} ms (dialer) / ${highLink.at} ms (acceptor) ` +
        `after process start; ${mib} MiB each way: low received in ${results['low.received']!.ms} ms ` +
        `(${rate(results['low.received']!.ms)} kB/s), high received in ${results['high.received']!.ms} ms ` +
        `(${rate(results['high.received']!.ms)} kB/s); send back-pressure ${results['low.sent']!.refusals}/` +
        `${results['high.sent']!.refusals}; acceptor saw the close as ${highClose.error}; wall ${Math.round(wallMs)} ms`,
    );
  };

  it('links once and moves 1 MiB of numbered frames each way at MTU 256, none lost, duplicated or reordered', async () => {
    await exchange(undefined, 30_000);
  }, 60_000);

  it('does the same with the ATT MTU held at 23', async () => {
    await exchange(23, 60_000);
  }, 90_000);

  it('links and exchanges frames with both scans at duty 0.25, finding a peer that appeared in a pause', async () => {
    emulator = await startEmulator({ controllers: 4 });
    const ptys = emulator.ptys;
    const frames = 64;
    const agent = (index: number, peerId: string) =>
      new JsonChild('ble-transport-agent.mjs', {
        BLE_PERIPHERAL_PTY: ptys[2 * index]!,
        BLE_CENTRAL_PTY: ptys[2 * index + 1]!,
        PEER_ID: peerId,
        MESH_KEY,
        FRAME_COUNT: String(frames),
        FRAME_BYTES: String(FRAME_BYTES),
        SCAN_DUTY: '0.25',
      });
    const low = agent(0, LOW_PEER_ID);
    const lowStarted = await low.waitFor('started', 15_000);
    expect(lowStarted.scanDuty).toBe(0.25);
    // The dialler scans 2.5 s of every 10 s from here: the other agent starts advertising in the pause.
    const paused = await low.waitFor('scan-paused', 15_000);
    const high = agent(1, HIGH_PEER_ID);
    const found = await low.waitFor('found', 30_000);
    const lowLink = await low.waitFor('link', 15_000);
    const highLink = await high.waitFor('link', 15_000);
    expect(lowLink.isInitiator).toBe(true);
    expect(highLink.isInitiator).toBe(false);
    for (const child of [low, high]) {
      const received = await child.waitFor('received', 30_000);
      expect(received.frames).toBe(frames);
      expect(received.problems).toEqual([]);
      expect(child.messages.some((m) => m.event === 'extra-link' || m.event === 'dial-failed')).toBe(false);
    }
    // Heard in the scan window of the next period (10 s after the scan began), not while paused.
    expect(found.at - lowStarted.at).toBeGreaterThanOrEqual(9_000);
    expect((await low.waitFor('sent')).scanPausedMs).toBeGreaterThan(0);
    console.log(
      `[ble-transport] duty 0.25: the dialler found the peer ${Math.round(found.at - lowStarted.at)} ms after ` +
        `its scan began (the peer started ${Math.round(paused.at - lowStarted.at)} ms in, during the pause), ` +
        `link at ${lowLink.at} ms`,
    );
  }, 90_000);
});
