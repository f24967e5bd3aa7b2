// Child process for test/system/ble-transport.test.ts: a protocol version 1 agent as its neighbours hear it,
// the real @stoprocent/bleno on one emulated controller advertising version 1's bytes (PROTOCOL.md §12.2: a
// mesh tag and 3 bytes of its peer id in the manufacturer data, its name in the scan response).
// Reports {"event":"advertising","address"}. Env: BLE_PTY (required).
import { withBindings } from '@stoprocent/bleno';
import { env, say } from '../../../scripts/ble-emulator/child-io.mjs';

const VERSION_1_ADVERTISING_DATA = '02010611074dcd79ad5b88158e1641f881c44e351709ffffff136cae56475a';
const VERSION_1_SCAN_RESPONSE = '0b096b69746368656e2d7069'; // "kitchen-pi"

const bleno = withBindings('hci', {
  hciDriver: 'uart',
  bindParams: { uart: { port: env('BLE_PTY'), baudRate: 1000000 } },
});
await bleno.waitForPoweredOnAsync(10_000);
await bleno.startAdvertisingWithEIRDataAsync(
  Buffer.from(VERSION_1_ADVERTISING_DATA, 'hex'),
  Buffer.from(VERSION_1_SCAN_RESPONSE, 'hex'),
);
say({ event: 'advertising', address: bleno.address });
