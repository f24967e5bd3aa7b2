// Child process for test/system/ble-transport.test.ts: one agent's BLE medium (dist/transports/ble), with a
// bleno peripheral on BLE_PERIPHERAL_PTY and a noble central on BLE_CENTRAL_PTY in this one process. It finds
// the other agent with the BLE resolver (only the smaller peer id dials), opens a FrameLink, sends
// FRAME_COUNT numbered frames of FRAME_BYTES honouring back-pressure, and checks what arrives: order, no
// loss, no duplicates, content. Reports JSON lines: started, link, sent, received (timings in ms from start).
// Once the dialler has sent and received everything it closes the link (both sides report 'close').
// Also reports 'advertising' with the address scanners see, at start and after every hint rotation, and
// 'scan-paused' when a duty-cycled scan first pauses.
// Env: BLE_PERIPHERAL_PTY, BLE_CENTRAL_PTY, PEER_ID, MESH_KEY (hex), BLE_MTU, FRAME_COUNT, FRAME_BYTES,
// SCAN_DUTY (the transport's scan duty, default 1), HINT_ROTATION_MS (default the transport's 15 minutes).
import { BleResolver } from '../../../dist/transports/ble/ble-resolver.js';
import { BleTransport } from '../../../dist/transports/ble/ble-transport.js';
import { env, say } from '../../../scripts/ble-emulator/child-io.mjs';

const t0 = performance.now();
const at = () => Math.round((performance.now() - t0) * 10) / 10;
const peerId = env('PEER_ID');
const meshKeys = () => [Buffer.from(env('MESH_KEY'), 'hex')];
const count = Number(env('FRAME_COUNT', '1024'));
const size = Number(env('FRAME_BYTES', '1024'));

const transport = new BleTransport({
  peripheral: { kind: 'uart', path: env('BLE_PERIPHERAL_PTY') },
  central: { kind: 'uart', path: env('BLE_CENTRAL_PTY') },
  peerId,
  meshKeys,
  ...(process.env.BLE_MTU && { requestedMtu: Number(process.env.BLE_MTU) }),
  ...(process.env.HINT_ROTATION_MS && { hintRotationMs: Number(process.env.HINT_ROTATION_MS) }),
});
transport.on('warning', (error) => say({ event: 'warning', message: String(error) }));
const resolver = new BleResolver(transport, { peerId, meshKeys });

let link;
const onLink = (newLink) => {
  if (link !== undefined) {
    say({ event: 'extra-link', remoteAddress: newLink.remoteAddress });
    newLink.close();
    return;
  }
  link = newLink;
  say({
    event: 'link',
    at: at(),
    isInitiator: link.isInitiator,
    remoteAddress: link.remoteAddress,
    maxFragmentBytes: link.maxFragmentBytes,
  });
  link.on('close', (error) =>
    say({ event: 'close', at: at(), error: error === undefined ? null : String(error) }),
  );
  receive(link);
  void send(link);
};
transport.on('link', onLink);

let dialing = false;
resolver.on('found', async (candidate) => {
  say({ event: 'found', at: at(), candidate });
  if (dialing || link !== undefined) return;
  dialing = true;
  try {
    onLink(await transport.dial(candidate.address));
  } catch (error) {
    dialing = false;
    say({ event: 'dial-failed', message: String(error) });
  }
});

let finished = 0;
const onFinished = () => {
  // The dialler closes right after its last frame is handed over: close() must still deliver it.
  if (++finished === 2 && link.isInitiator) link.close();
};

const frameOf = (seq) => {
  const frame = Buffer.alloc(size, seq & 0xff);
  frame.writeUInt32BE(seq, 0);
  return frame;
};

async function send(link) {
  const started = performance.now();
  let refusals = 0;
  for (let seq = 0; seq < count; seq++) {
    if (!link.send(frameOf(seq))) {
      refusals++;
      await link.drained();
    }
  }
  await link.drained();
  say({
    event: 'sent',
    at: at(),
    ms: Math.round(performance.now() - started),
    refusals,
    scanPausedMs: transport.scanPausedMs(),
  });
  onFinished();
}

function receive(link) {
  let expected = 0;
  let started;
  const problems = [];
  link.on('frame', (frame) => {
    started ??= performance.now();
    const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const seq = view.length >= 4 ? view.readUInt32BE(0) : -1;
    const isIntact = view.length === size && view.subarray(4).every((byte) => byte === (seq & 0xff));
    if (seq !== expected || !isIntact) {
      if (problems.length < 10) problems.push({ expected, seq, length: view.length, isIntact });
    }
    expected = seq + 1;
    if (seq === count - 1) {
      say({
        event: 'received',
        at: at(),
        ms: Math.round(performance.now() - started),
        frames: expected,
        problems,
      });
      onFinished();
    }
  });
}

await transport.start();
if (process.env.SCAN_DUTY) transport.setScanDuty(Number(process.env.SCAN_DUTY));
say({
  event: 'started',
  at: at(),
  scanDuty: transport.scanDuty,
  peripheral: transport.peripheralAddress,
});
await resolver.start();
// The address changes when the transport rotates the hint: report each one scanners get to see.
let advertising;
setInterval(() => {
  if (transport.advertisingAddress === advertising) return;
  advertising = transport.advertisingAddress;
  say({ event: 'advertising', at: at(), address: advertising, peripheral: transport.peripheralAddress });
}, 100).unref();
// A duty-cycled scan: report when it first pauses (its paused time starts to grow).
const watchingPause = setInterval(() => {
  if (transport.scanPausedMs() === 0) return;
  clearInterval(watchingPause);
  say({ event: 'scan-paused', at: at() });
}, 20);
watchingPause.unref();
