// Child process for the BLE system tests: a scanner without the mesh key, as an outsider's would be. The real
// @stoprocent/noble on one emulated controller scans actively (so scan responses come too) and reports every
// distinct raw advertising report it hears, from noble's HCI layer, before any parsing: JSON lines
// {"event":"report","address","addressType","type","data":hex}, type 4 being a scan response.
// Env: BLE_PTY (required); RESCAN_MS (restart the scan this often, default 2000: the emulator reports each
// advertiser once per scan start, so a changed advertisement is heard at the next one).
import { withBindings } from '@stoprocent/noble';
import { env, say } from '../../../scripts/ble-emulator/child-io.mjs';

const noble = withBindings('hci', {
  hciDriver: 'uart',
  bindParams: { uart: { port: env('BLE_PTY'), baudRate: 1000000 } },
});
const seen = new Set();
await noble.waitForPoweredOnAsync(10_000);
// noble's own HCI object: the one place the raw bytes of each report pass through.
noble._bindings._hci.on('leAdvertisingReport', (_status, type, address, addressType, eir) => {
  const report = { address, addressType, type, data: eir.toString('hex') };
  const key = JSON.stringify(report);
  if (seen.has(key)) return;
  seen.add(key);
  say({ event: 'report', ...report });
});
await noble.startScanningAsync([], true);
say({ event: 'scanning', address: noble.address });
setInterval(
  async () => {
    await noble.stopScanningAsync();
    await noble.startScanningAsync([], true);
  },
  Number(env('RESCAN_MS', '2000')),
);
