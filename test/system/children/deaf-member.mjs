// A member that keeps its link alive but never reads: it holds the mesh key, links to an agent over TCP
// (Noise handshake, its own fresh identity), then stops reading its socket and sends a PING every 400 ms,
// so the agent's keep-alive sees a live peer while everything the agent sends it piles up. It uses the
// built dist/ (npm test builds first).
// Usage: node deaf-member.mjs <host> <port> <mesh key (base64url)>
// Prints {"linked": "<peer id>"} once linked, {"closed": "<reason>"} when the agent cuts it, then exits.
import { connect } from 'node:net';
import { checkMeshKey } from '../../../dist/agent/config/mesh-key.js';
import { generateIdentity } from '../../../dist/agent/identity/identity.js';
import { encodeMessage } from '../../../dist/agent/protocol/index.js';
import { establishSecureLink } from '../../../dist/agent/security/secure-channel.js';
import { TcpLink } from '../../../dist/transports/wifi/tcp-link.js';

const [host, portText, meshKeyText] = process.argv.slice(2);
const meshKey = checkMeshKey(meshKeyText ?? '');
if (host === undefined || !meshKey.ok) {
  process.stderr.write('usage: deaf-member.mjs <host> <port> <mesh key>\n');
  process.exit(2);
}

const identity = generateIdentity();
const socket = connect({ host, port: Number(portText) });
await new Promise((resolve, reject) => {
  socket.once('connect', resolve);
  socket.once('error', reject);
});
const link = new TcpLink(socket, { isInitiator: true, maxFrameBytes: 1 << 20 });
const secure = await establishSecureLink(link, { identity, meshKeys: [meshKey.value], name: 'deaf' });
console.log(JSON.stringify({ linked: identity.peerId }));
// From now on nothing is read: the kernel's buffers fill, then the agent's.
socket.pause();
let id = 0;
const pinger = setInterval(() => secure.send(encodeMessage({ type: 'ping', id: ++id })), 400);
socket.on('close', () => {
  clearInterval(pinger);
  console.log(JSON.stringify({ closed: 'the agent closed the link' }));
  process.exit(0);
});
socket.on('error', () => {});
