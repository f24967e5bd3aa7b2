// A device without the mesh key, for the trust system test: it dials an agent, or waits for an agent to
// dial it, and runs the project's handshake with a key of its own over a plain TCP socket whose every
// received byte it records. Protocol v2 says such a device learns nothing: as initiator it gets no byte at
// all, as responder only the agent's 48-byte first handshake message. It uses the built dist/.
// Usage: node outsider.mjs dial <host:port> | listen <host:port>
// Prints one JSON line once the first connection is over:
// { received: hex of every byte the agent sent, sent_bytes, handshake: how our handshake ended }.
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { checkHostPort } from '../../../dist/agent/core/host-port.js';
import { generateIdentity } from '../../../dist/agent/identity/identity.js';
import { establishSecureLink } from '../../../dist/agent/security/secure-channel.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../../dist/transports/wifi/framing.js';
import { TcpLink } from '../../../dist/transports/wifi/tcp-link.js';

const [mode, addressText] = process.argv.slice(2);
const address = checkHostPort(addressText ?? '');
if ((mode !== 'dial' && mode !== 'listen') || !address.ok) {
  process.stderr.write('usage: outsider.mjs dial|listen <host:port>\n');
  process.exit(2);
}

/** Handshakes under a random key over `socket`, recording what arrives, until the socket is closed. */
async function handshake(socket, isInitiator) {
  const received = [];
  socket.on('data', (chunk) => received.push(chunk));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const link = new TcpLink(socket, { isInitiator, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
  let outcome = 'established';
  try {
    const secure = await establishSecureLink(link, {
      identity: generateIdentity(),
      meshKeys: [randomBytes(32)],
      name: 'outsider',
      timeoutMs: 10_000,
    });
    secure.close();
  } catch (error) {
    outcome = error.reason ?? String(error);
  }
  await closed;
  return {
    received: Buffer.concat(received).toString('hex'),
    sent_bytes: socket.bytesWritten,
    handshake: outcome,
  };
}

const { host, port } = address.value;
let result;
if (mode === 'dial') {
  const socket = connect({ host, port });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  result = await handshake(socket, true);
} else {
  const server = createServer();
  await new Promise((resolve) => server.listen({ host, port }, resolve));
  process.stdout.write(`${JSON.stringify({ listening: `${host}:${port}` })}\n`);
  const socket = await new Promise((resolve) => server.once('connection', resolve));
  server.close();
  result = await handshake(socket, false);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
