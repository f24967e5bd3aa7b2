// Child process for scripts/bench/ble-bench.ts: one end of a nearmesh BLE link (dist/transports/ble) on one
// emulated controller. ROLE=acceptor: a peripheral-only BleTransport that answers the Noise handshake
// (establishSecureLink) and counts the plaintext bytes of the messages it receives. ROLE=dialer: a
// central-only BleTransport that, once powered on, starts the BLE resolver (scan start), dials the first
// candidate, authenticates and then sends TOTAL_BYTES in FRAME_BYTES messages honouring back-pressure.
// Reports JSON lines: advertising | ready, link {scanToLinkMs, scanToFoundMs, scanToGattMs}, sent,
// received {bytes, firstSize, firstToLastMs}. Env: ROLE, BLE_PTY, PEER_ID, MESH_KEY (hex), TOTAL_BYTES, FRAME_BYTES.

import { generateIdentity } from '../../../dist/agent/identity/identity.js';
import { establishSecureLink } from '../../../dist/agent/security/index.js';
import { BleResolver } from '../../../dist/transports/ble/ble-resolver.js';
import { BleTransport } from '../../../dist/transports/ble/ble-transport.js';
import { env, say } from '../../ble-emulator/child-io.mjs';

const role = env('ROLE');
const peerId = env('PEER_ID');
const meshKey = Buffer.from(env('MESH_KEY'), 'hex');
const total = Number(env('TOTAL_BYTES', String(256 * 1024)));
const frameBytes = Number(env('FRAME_BYTES', '1024'));
const adapter = { kind: 'uart', path: env('BLE_PTY') };
const identity = generateIdentity();

const transport = new BleTransport({
  ...(role === 'acceptor' ? { peripheral: adapter } : { central: adapter }),
  peerId,
  meshKeys: () => [meshKey],
});
transport.on('warning', (error) => say({ event: 'warning', message: String(error) }));

if (role === 'acceptor') {
  transport.on('link', async (link) => {
    const secure = await establishSecureLink(link, { identity, meshKeys: [meshKey], name: 'bench-acceptor' });
    let bytes = 0;
    let first;
    let firstSize = 0;
    secure.on('message', (plaintext) => {
      const now = performance.now();
      if (first === undefined) {
        first = now;
        firstSize = plaintext.byteLength;
      }
      bytes += plaintext.byteLength;
      if (bytes >= total) {
        say({ event: 'received', bytes, firstSize, firstToLastMs: now - first });
      }
    });
  });
  await transport.start();
  say({ event: 'advertising', address: transport.peripheralAddress });
} else {
  await transport.start();
  say({ event: 'ready' });
  const resolver = new BleResolver(transport, { peerId, meshKeys: () => [meshKey] });
  let dialing = false;
  const scanStart = performance.now();
  resolver.on('found', async (candidate) => {
    if (dialing) return;
    dialing = true;
    const foundAt = performance.now();
    const link = await transport.dial(candidate.address);
    const gattAt = performance.now();
    await resolver.stop();
    const secure = await establishSecureLink(link, { identity, meshKeys: [meshKey], name: 'bench-dialer' });
    const linkAt = performance.now();
    say({
      event: 'link',
      scanToFoundMs: foundAt - scanStart,
      scanToGattMs: gattAt - scanStart,
      scanToLinkMs: linkAt - scanStart,
      maxFragmentBytes: link.maxFragmentBytes,
    });
    const payload = Buffer.alloc(frameBytes, 0x5a);
    let sent = 0;
    while (sent < total) {
      const size = Math.min(frameBytes, total - sent);
      sent += size;
      if (!secure.send(size === frameBytes ? payload : payload.subarray(0, size))) await secure.drained();
    }
    await secure.drained();
    say({ event: 'sent', bytes: sent });
  });
  await resolver.start();
}
