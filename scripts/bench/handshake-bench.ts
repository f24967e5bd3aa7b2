// Row 4: how long dial + establishSecureLink (Noise XXpsk0, 3 frames) takes over loopback TCP, against
// a plain TCP connect to the same address family; both ends in this process, samples interleaved.
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { generateMeshKey, parseMeshKey } from '../../agent/config/mesh-key.js';
import { generateIdentity, type Identity } from '../../agent/identity/identity.js';
import { establishSecureLink } from '../../agent/security/index.js';
import { TcpTransport } from '../../transports/wifi/tcp-transport.js';
import { median, quantile } from './stats.js';
import { formatMilliseconds, formatTimes, type ResultRow } from './table.js';
import { elapsedMs, withTimeout } from './timing.js';

export const HANDSHAKES = 50;
export const WARMUP_HANDSHAKES = 5;
const STEP_TIMEOUT_MS = 10_000;

interface Endpoints {
  readonly dialer: TcpTransport;
  readonly listener: TcpTransport;
  readonly secureAddress: string;
  readonly plainServer: Server;
  readonly plainPort: number;
  readonly initiator: Identity;
  readonly meshKey: Uint8Array;
}

async function plainConnectMs(port: number): Promise<number> {
  const startNs = process.hrtime.bigint();
  const socket = connect({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    return elapsedMs(startNs);
  } finally {
    socket.destroy();
  }
}

async function secureHandshakeMs(endpoints: Endpoints): Promise<number> {
  const startNs = process.hrtime.bigint();
  const link = await endpoints.dialer.dial(endpoints.secureAddress);
  const secure = await establishSecureLink(link, {
    identity: endpoints.initiator,
    meshKeys: [endpoints.meshKey],
    name: 'bench-initiator',
  });
  const handshakeMs = elapsedMs(startNs);
  // Closed outside the timed part, and awaited so one handshake's teardown does not overlap the next.
  const closed = new Promise<void>((resolve) => secure.once('close', () => resolve()));
  secure.close();
  await closed;
  return handshakeMs;
}

async function openEndpoints(): Promise<Endpoints> {
  const meshKey = parseMeshKey(generateMeshKey());
  const responder = generateIdentity();
  const listener = new TcpTransport({ listen: { host: '127.0.0.1', port: 0 } });
  listener.on('link', (link) => {
    // A failure here also fails the initiator's handshake, which is where it gets reported.
    establishSecureLink(link, { identity: responder, meshKeys: [meshKey], name: 'bench-responder' }).catch(
      () => undefined,
    );
  });
  await listener.start();
  const listenAddress = listener.address();
  if (listenAddress === undefined) throw new Error('handshake listener has no address');

  const plainServer = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.resume();
  });
  plainServer.listen({ host: '127.0.0.1', port: 0 });
  await once(plainServer, 'listening');
  const plainAddress = plainServer.address();
  if (plainAddress === null || typeof plainAddress === 'string') throw new Error('plain server has no port');

  return {
    dialer: new TcpTransport({ listen: false }),
    listener,
    secureAddress: `127.0.0.1:${listenAddress.port}`,
    plainServer,
    plainPort: plainAddress.port,
    initiator: generateIdentity(),
    meshKey,
  };
}

export async function handshakeRow(): Promise<ResultRow> {
  const endpoints = await openEndpoints();
  const secureMs: number[] = [];
  const plainMs: number[] = [];
  try {
    for (let i = 0; i < WARMUP_HANDSHAKES + HANDSHAKES; i++) {
      const plain = await withTimeout(plainConnectMs(endpoints.plainPort), STEP_TIMEOUT_MS, 'a TCP connect');
      const secure = await withTimeout(secureHandshakeMs(endpoints), STEP_TIMEOUT_MS, 'a handshake');
      if (i < WARMUP_HANDSHAKES) continue;
      plainMs.push(plain);
      secureMs.push(secure);
    }
  } finally {
    await endpoints.dialer.stop();
    await endpoints.listener.stop();
    endpoints.plainServer.close();
  }
  const describe = (samples: number[]): string =>
    `${formatMilliseconds(median(samples))} (p95 ${formatMilliseconds(quantile(samples, 0.95))})`;
  return {
    benchmark: `4  handshake ms, dial+XXpsk0 vs TCP connect`,
    nearmesh: describe(secureMs),
    baseline: describe(plainMs),
    ratio: formatTimes(median(secureMs) / median(plainMs)),
    goal: '— (info)',
    pass: '—',
  };
}
