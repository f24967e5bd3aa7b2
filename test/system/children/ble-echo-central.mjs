// Child process for test/system/ble-emulator.test.ts: the real @stoprocent/noble on one emulated
// controller (a pty from scripts/ble-emulator). It scans for the echo peripheral's service UUID,
// connects, lets noble negotiate the ATT MTU, subscribes to TX, writes BLE_COUNT numbered values of
// BLE_SIZE bytes to RX without response, and waits for every echo. noble keeps one global binding per
// process, which is why this runs in its own process. Reports JSON lines on stdout, last
// {"event":"result", ...} with timings (ms, from performance.now()) and the sequence numbers echoed.
// Env: BLE_PTY (required), BLE_SERVICE_UUID, BLE_RX_UUID, BLE_TX_UUID, BLE_COUNT, BLE_SIZE, BLE_MTU
// (MTU noble asks for; noble's default is 256), BLE_FLOOD + BLE_BLOCK_MS (flood mode: no writes;
// after subscribing, block the event loop for BLE_BLOCK_MS while the peripheral notifies BLE_FLOOD
// values, then count what arrives; reports {"event":"flood-result"}).
import { withBindings } from '@stoprocent/noble';
import { fail, findRxTx, say } from '../../../scripts/ble-emulator/child-io.mjs';

const port = process.env.BLE_PTY;
if (!port) throw new Error('BLE_PTY is required');
const serviceUuid = (process.env.BLE_SERVICE_UUID ?? '6e6d0001-6e65-6172-6d65-736800000000').replaceAll(
  '-',
  '',
);
const rxUuid = (process.env.BLE_RX_UUID ?? '6e6d0002-6e65-6172-6d65-736800000000').replaceAll('-', '');
const txUuid = (process.env.BLE_TX_UUID ?? '6e6d0003-6e65-6172-6d65-736800000000').replaceAll('-', '');
const count = Number(process.env.BLE_COUNT ?? '200');
const size = Number(process.env.BLE_SIZE ?? '180');
const wantedMtu = process.env.BLE_MTU ? Number(process.env.BLE_MTU) : undefined;
const flood = Number(process.env.BLE_FLOOD ?? '0');
const blockMs = Number(process.env.BLE_BLOCK_MS ?? '0');

const t0 = performance.now();
const at = () => Math.round((performance.now() - t0) * 10) / 10;

const noble = withBindings('hci', {
  hciDriver: 'uart',
  bindParams: { uart: { port, baudRate: 1000000 } },
});

await noble.waitForPoweredOnAsync(10_000);
const poweredOn = at();
say({ event: 'poweredOn', at: poweredOn, address: noble.address });

// Listen before scanning: the emulator reports an advertiser in the same HCI read as the scan
// enable's Command Complete, i.e. before startScanningAsync() resolves.
const found = new Promise((resolve) => {
  noble.on('discover', (candidate) => {
    if (candidate.advertisement.serviceUuids?.includes(serviceUuid)) resolve(candidate);
  });
});
await noble.startScanningAsync([serviceUuid], false);
const scanStarted = at();
const peripheral = await found;
const discovered = at();
await noble.stopScanningAsync();
say({
  event: 'discovered',
  at: discovered,
  address: peripheral.address,
  addressType: peripheral.addressType,
  rssi: peripheral.rssi,
  localName: peripheral.advertisement.localName,
  serviceUuids: peripheral.advertisement.serviceUuids,
});

let mtu = null;
const mtuSeen = new Promise((resolve) => peripheral.once('mtu', (value) => resolve(value)));
// `mtu` is read by noble's HCI bindings from the connect parameters (not in its typings).
await noble.connectAsync(peripheral.id, wantedMtu === undefined ? undefined : { mtu: wantedMtu });
const connected = at();
mtu = await Promise.race([
  mtuSeen,
  new Promise((resolve) => setTimeout(() => resolve(peripheral.mtu), 3000)),
]);
const mtuAt = at();
say({ event: 'connected', at: connected, mtu, mtuAt });

const { rx, tx } = await findRxTx(peripheral, serviceUuid, rxUuid, txUuid);
const gattReady = at();

const echoed = [];
let corrupt = 0;
let allEchoed;
const echoesDone = new Promise((resolve) => {
  allEchoed = resolve;
});
tx.on('data', (data) => {
  const seq = data.readUInt32BE(0);
  if (data.length !== size || data[size - 1] !== (seq & 0xff)) corrupt++;
  echoed.push(seq);
  if (echoed.length === count) allEchoed();
});
if (flood > 0) {
  const seen = [];
  let last = performance.now();
  let first;
  tx.on('data', (data) => {
    seen.push(data.readUInt32BE(0));
    last = performance.now();
    first ??= last;
  });
  await tx.subscribeAsync();
  const until = performance.now() + blockMs;
  while (performance.now() < until) {
    // busy: the host does not read its pty, as when its event loop is stuck
  }
  const start = performance.now();
  const firstAt = seen.length;
  last = start;
  while (seen.length < flood && performance.now() - last < 3000) await new Promise((r) => setTimeout(r, 20));
  const lost = flood - new Set(seen).size;
  const inOrder = seen.every((v, i) => i === 0 || v > seen[i - 1]);
  say({
    event: 'flood-result',
    flood,
    received: seen.length,
    lost,
    inOrder,
    firstGaps: seen.filter((v, i) => i > 0 && v !== seen[i - 1] + 1).slice(0, 10),
    drainMs: Math.round(last - start),
    receivedDuringBlock: firstAt,
    firstToLastMs: first === undefined ? null : Math.round(last - first),
  });
  process.exit(0);
}
await tx.subscribeAsync();
const subscribed = at();

const value = (seq) => {
  const data = Buffer.alloc(size, seq & 0xff);
  data.writeUInt32BE(seq, 0);
  return data;
};
const writesStart = performance.now();
for (let seq = 0; seq < count; seq++) await rx.writeAsync(value(seq), true);
const writesMs = performance.now() - writesStart;
const timeout = setTimeout(() => fail(new Error(`only ${echoed.length}/${count} echoes after 20 s`)), 20_000);
await echoesDone;
clearTimeout(timeout);
const roundTripMs = performance.now() - writesStart;

say({
  event: 'result',
  mtu,
  count,
  size,
  echoed,
  corrupt,
  timings: {
    poweredOn,
    scanStarted,
    discovered,
    connected,
    mtuAt,
    gattReady,
    subscribed,
    writesMs: Math.round(writesMs * 10) / 10,
    allEchoedMs: Math.round(roundTripMs * 10) / 10,
    total: at(),
  },
});
await peripheral.disconnectAsync().catch(() => {});
noble.stop?.();
process.exit(0);
