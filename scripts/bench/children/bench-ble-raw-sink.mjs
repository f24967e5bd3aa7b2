// Child process for scripts/bench/ble-bench.ts: the raw baseline's receiver. The real @stoprocent/bleno on one
// emulated controller advertises a service with a write-without-response characteristic (RX) and a notify
// characteristic (TX, only so the central's subscribe step matches nearmesh's) and counts the bytes written
// to RX. Reports {"event":"advertising"} and, once TOTAL_BYTES arrived, {"event":"received", bytes,
// firstSize, firstToLastMs}. Env: BLE_PTY, TOTAL_BYTES, BLE_SERVICE_UUID, BLE_RX_UUID, BLE_TX_UUID.
import { withBindings } from '@stoprocent/bleno';
import { fail, say } from '../../ble-emulator/child-io.mjs';

const port = process.env.BLE_PTY;
if (!port) throw new Error('BLE_PTY is required');
const total = Number(process.env.TOTAL_BYTES ?? String(256 * 1024));
const serviceUuid = process.env.BLE_SERVICE_UUID ?? '6e6d0101-6e65-6172-6d65-736800000000';
const rxUuid = process.env.BLE_RX_UUID ?? '6e6d0102-6e65-6172-6d65-736800000000';
const txUuid = process.env.BLE_TX_UUID ?? '6e6d0103-6e65-6172-6d65-736800000000';

const bleno = withBindings('hci', { hciDriver: 'uart', bindParams: { uart: { port, baudRate: 1000000 } } });

let bytes = 0;
let first;
let firstSize = 0;
let reported = false;
const rx = new bleno.Characteristic({
  uuid: rxUuid,
  properties: ['writeWithoutResponse'],
  onWriteRequest(_handle, data, _offset, withoutResponse, callback) {
    const now = performance.now();
    if (first === undefined) {
      first = now;
      firstSize = data.length;
    }
    bytes += data.length;
    if (!withoutResponse) callback(bleno.Characteristic.RESULT_SUCCESS ?? 0);
    if (bytes >= total && !reported) {
      reported = true;
      say({ event: 'received', bytes, firstSize, firstToLastMs: now - first });
    }
  },
});
const tx = new bleno.Characteristic({ uuid: txUuid, properties: ['notify'] });

bleno.on('stateChange', async (state) => {
  if (state !== 'poweredOn') return;
  try {
    await bleno.setServicesAsync([
      new bleno.PrimaryService({ uuid: serviceUuid, characteristics: [rx, tx] }),
    ]);
    await bleno.startAdvertisingAsync('nm-bench', [serviceUuid]);
    say({ event: 'advertising', address: bleno.address });
  } catch (error) {
    fail(error);
  }
});
