// A hostile member of the mesh for the mesh system test: it holds the mesh key, so it links to an agent
// like any peer (TCP, Noise handshake, its own fresh identity), then sends routed frames as fast as
// back-pressure allows: half of them copies of one (source, id), half with a spent hop budget (ttl 0 or
// 1) from random sources with random ids, each with a made-up origin tag (a relay cannot check a tag for
// someone else, so these are forwarded as far as their hop budget lets them). It uses the built dist/
// (npm test builds first).
// Usage: node mesh-flooder.mjs <host:port> <mesh key (base64url)> <frame count> [mode]
// mode: "mixed" (default, as above), "duplicates" (only copies), "expired" (only spent frames, random
// sources), "expired-one-source" (only spent frames, one source, random ids).
// Prints one JSON line when done: { peer_id, sent, duplicates, expired, ms }.
import { randomBytes, randomInt } from 'node:crypto';
import { checkMeshKey } from '../../../dist/agent/config/mesh-key.js';
import { generateIdentity } from '../../../dist/agent/identity/identity.js';
import { encodeMessage } from '../../../dist/agent/protocol/index.js';
import { establishSecureLink } from '../../../dist/agent/security/secure-channel.js';
import { TcpTransport } from '../../../dist/transports/wifi/tcp-transport.js';

const [address, meshKeyText, countText, mode = 'mixed'] = process.argv.slice(2);
const MODES = ['mixed', 'duplicates', 'expired', 'expired-one-source'];
const count = Number(countText);
const meshKey = checkMeshKey(meshKeyText ?? '');
if (address === undefined || !meshKey.ok || !Number.isInteger(count) || count <= 0 || !MODES.includes(mode)) {
  process.stderr.write(`usage: mesh-flooder.mjs <host:port> <mesh key> <frame count> [${MODES.join('|')}]\n`);
  process.exit(2);
}

const randomPeerId = () => randomBytes(8).toString('hex');
const payload = new Uint8Array(16).fill(0x61);
/** Every duplicate is this one message, to a destination nobody has, so its first copy floods the mesh. */
const duplicate = encodeMessage({
  type: 'data',
  id: 424_242,
  ackRequested: false,
  payload,
  route: { ttlHops: 4, source: randomPeerId(), destination: randomPeerId() },
  auth: randomBytes(16),
});

const oneSource = randomPeerId();
const isDuplicate = (index) => (mode === 'mixed' ? index % 2 === 0 : mode === 'duplicates');

const identity = generateIdentity();
const transport = new TcpTransport({ listen: false });
const link = await transport.dial(address, { timeoutMs: 5_000 });
const secure = await establishSecureLink(link, { identity, meshKeys: [meshKey.value], name: 'flooder' });
// Read (and ignore) what the agent sends, so its side never backs up on us.
secure.on('message', () => {});
secure.on('close', (error) => {
  if (sent < count) {
    process.stderr.write(`link closed after ${sent} frames: ${error?.message ?? 'closed'}\n`);
    process.exit(1);
  }
});

const startedAtMs = Date.now();
let sent = 0;
let duplicates = 0;
let expired = 0;
while (sent < count) {
  let frame;
  if (isDuplicate(sent)) {
    frame = duplicate;
    duplicates++;
  } else {
    frame = encodeMessage({
      type: 'data',
      id: randomInt(0, 2 ** 32),
      ackRequested: false,
      payload,
      route: {
        ttlHops: expired % 2,
        source: mode === 'expired-one-source' ? oneSource : randomPeerId(),
        destination: randomPeerId(),
      },
      auth: randomBytes(16),
    });
    expired++;
  }
  sent++;
  if (!secure.send(frame)) await secure.drained();
  if (!secure.isOpen) break;
}
await secure.drained();
const ms = Date.now() - startedAtMs;
process.stdout.write(`${JSON.stringify({ peer_id: identity.peerId, sent, duplicates, expired, ms })}\n`);
// Stay linked until told to go (SIGTERM), so the agent counts everything before the link closes.
process.on('SIGTERM', () => {
  secure.close();
  void transport.stop().finally(() => process.exit(0));
});
