// Child process for scripts/bench/ble-bench.ts: the raw baseline's sender. The real @stoprocent/noble on one
// emulated controller, once powered on, scans for the sink's service UUID, connects (ATT MTU 256, noble's
// default), waits for the MTU exchange, discovers RX and TX, subscribes to TX, and reports the time from scan
// start to each step; then writes TOTAL_BYTES to RX without response in values of MTU − 3 bytes.
// Reports JSON lines: ready, link {scanToFoundMs, scanToConnectMs, scanToLinkMs, mtu}, sent.
// Env: BLE_PTY, TOTAL_BYTES, BLE_SERVICE_UUID, BLE_RX_UUID, BLE_TX_UUID.
import { withBindings } from '@stoprocent/noble';
import { findRxTx, say } from '../../ble-emulator/child-io.mjs';

const port = process.env.BLE_PTY;
if (!port) throw new Error('BLE_PTY is required');
const total = Number(process.env.TOTAL_BYTES ?? String(256 * 1024));
const bare = (uuid) => uuid.replaceAll('-', '');
const serviceUuid = bare(process.env.BLE_SERVICE_UUID ?? '6e6d0101-6e65-6172-6d65-736800000000');
const rxUuid = bare(process.env.BLE_RX_UUID ?? '6e6d0102-6e65-6172-6d65-736800000000');
const txUuid = bare(process.env.BLE_TX_UUID ?? '6e6d0103-6e65-6172-6d65-736800000000');

const noble = withBindings('hci', { hciDriver: 'uart', bindParams: { uart: { port, baudRate: 1000000 } } });
await noble.waitForPoweredOnAsync(10_000);
say({ event: 'ready' });

const scanStart = performance.now();
const found = new Promise((resolve) => {
  noble.on('discover', (candidate) => {
    if (candidate.advertisement.serviceUuids?.includes(serviceUuid)) resolve(candidate);
  });
});
await noble.startScanningAsync([serviceUuid], false);
const peripheral = await found;
const foundAt = performance.now();
await noble.stopScanningAsync();
const mtuSeen = new Promise((resolve) => peripheral.once('mtu', (value) => resolve(value)));
await noble.connectAsync(peripheral.id);
const connectAt = performance.now();
const mtu = await Promise.race([
  mtuSeen,
  new Promise((resolve) => setTimeout(() => resolve(peripheral.mtu), 3000)),
]);
const { rx, tx } = await findRxTx(peripheral, serviceUuid, rxUuid, txUuid);
await tx.subscribeAsync();
const linkAt = performance.now();
say({
  event: 'link',
  scanToFoundMs: foundAt - scanStart,
  scanToConnectMs: connectAt - scanStart,
  scanToLinkMs: linkAt - scanStart,
  mtu,
});

const chunk = (mtu ?? 23) - 3;
const value = Buffer.alloc(chunk, 0x5a);
let sent = 0;
while (sent < total) {
  const size = Math.min(chunk, total - sent);
  await rx.writeAsync(size === chunk ? value : value.subarray(0, size), true);
  sent += size;
}
say({ event: 'sent', bytes: sent });
