// Child process for test/system/ble-emulator.test.ts: the real @stoprocent/bleno on one emulated
// controller (a pty from scripts/ble-emulator). It advertises a 128-bit service with a
// write-without-response characteristic (RX) and a notify characteristic (TX) and echoes every RX
// value back on TX to the subscribed central. bleno keeps one global binding per process, which is
// why this runs in its own process. Reports JSON lines on stdout:
//   {"event":"advertising","address":...}  {"event":"accept",...}  {"event":"mtu","mtu":N}
//   {"event":"subscribed","maxValueSize":N}  {"event":"done","received":[seq...],"bytes":N}
// Env: BLE_PTY (required), BLE_SERVICE_UUID, BLE_RX_UUID, BLE_TX_UUID, BLE_NAME, BLE_EXPECT (count
// after which it reports "done"), BLE_FLOOD (if set: on subscription, notify that many numbered
// values of BLE_FLOOD_SIZE bytes (default: the largest the MTU allows), as fast as bleno takes them,
// and report "flooded").
import { withBindings } from '@stoprocent/bleno';
import { say } from '../../../scripts/ble-emulator/child-io.mjs';

const port = process.env.BLE_PTY;
if (!port) throw new Error('BLE_PTY is required');
const serviceUuid = process.env.BLE_SERVICE_UUID ?? '6e6d0001-6e65-6172-6d65-736800000000';
const rxUuid = process.env.BLE_RX_UUID ?? '6e6d0002-6e65-6172-6d65-736800000000';
const txUuid = process.env.BLE_TX_UUID ?? '6e6d0003-6e65-6172-6d65-736800000000';
const name = process.env.BLE_NAME ?? 'nm-echo';
const expect = Number(process.env.BLE_EXPECT ?? '200');
const flood = Number(process.env.BLE_FLOOD ?? '0');
const floodSize = process.env.BLE_FLOOD_SIZE ? Number(process.env.BLE_FLOOD_SIZE) : undefined;

const bleno = withBindings('hci', {
  hciDriver: 'uart',
  bindParams: { uart: { port, baudRate: 1000000 } },
});

const received = [];
let bytes = 0;
let notify;
const pending = [];

const rx = new bleno.Characteristic({
  uuid: rxUuid,
  properties: ['writeWithoutResponse'],
  onWriteRequest(_handle, data, _offset, withoutResponse, callback) {
    received.push(data.readUInt32BE(0));
    bytes += data.length;
    if (notify) notify(data);
    else pending.push(data);
    if (!withoutResponse) callback(bleno.Characteristic.RESULT_SUCCESS ?? 0);
    if (received.length === expect) say({ event: 'done', received, bytes });
  },
});

const tx = new bleno.Characteristic({
  uuid: txUuid,
  properties: ['notify'],
  onSubscribe(_handle, maxValueSize, updateValueCallback) {
    notify = updateValueCallback;
    say({ event: 'subscribed', maxValueSize });
    for (const data of pending.splice(0)) notify(data);
    if (flood > 0) {
      // Later, not here: bleno answers the subscribing CCCD write only after this returns, and the
      // answer would queue behind the whole flood.
      setTimeout(() => {
        const size = Math.min(floodSize ?? maxValueSize, maxValueSize);
        for (let seq = 0; seq < flood; seq++) {
          const data = Buffer.alloc(size, seq & 0xff);
          data.writeUInt32BE(seq, 0);
          notify(data);
        }
        say({ event: 'flooded', count: flood, size });
      }, 100);
    }
  },
  onUnsubscribe() {
    notify = undefined;
  },
});

bleno.on('accept', (address, handle) => say({ event: 'accept', address, handle }));
bleno.on('disconnect', (address) => say({ event: 'disconnect', address }));
bleno.on('mtuChange', (mtu) => say({ event: 'mtu', mtu }));

bleno.on('stateChange', async (state) => {
  say({ event: 'state', state });
  if (state !== 'poweredOn') return;
  try {
    await bleno.setServicesAsync([
      new bleno.PrimaryService({ uuid: serviceUuid, characteristics: [rx, tx] }),
    ]);
    await bleno.startAdvertisingAsync(name, [serviceUuid]);
    say({ event: 'advertising', address: bleno.address });
  } catch (error) {
    say({ event: 'error', message: String(error?.stack ?? error) });
    process.exit(1);
  }
});

process.on('SIGTERM', () => process.exit(0));
