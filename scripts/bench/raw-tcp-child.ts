// A bare Node TCP process: the baselines of rows 14-17, run as a child (inside a namespace with `ip netns
// exec`, or on loopback) so they pay what an agent's process pays. No nearmesh code: plain sockets only.
// Each mode prints JSON lines on stdout ({"listening":port}, then its result) and exits when it is done:
//   echo   <host> <port>                                  a server echoing every byte back (rows 14, 17)
//   rtt    <host> <port> <samples> <warmups>              connect + one 32-byte round trip, per sample
//   sink   <host> <port> <bytes>                          a server counting <bytes> per connection, then 1 byte back
//   source <host> <port> <file>                           streams <file> to a sink and waits for its byte
//   window <host> <port> <count> <bytes> <in flight>      <count> messages of <bytes>, each answered by the echo
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

const ROUND_TRIP_BYTES = 32;

function print(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

/** Listens, prints the port, and lets `onConnection` have each socket; runs until the parent stops it. */
function serve(host: string, port: number, onConnection: (socket: Socket) => void): Server {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    onConnection(socket);
  });
  server.listen({ host, port }, () => {
    const address = server.address();
    print({ listening: typeof address === 'object' && address !== null ? address.port : port });
  });
  return server;
}

async function dial(host: string, port: number): Promise<Socket> {
  const socket = connect({ host, port, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads from `socket` until `bytes` more have arrived. */
function receive(socket: Socket, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = bytes;
    const onData = (chunk: Buffer): void => {
      left -= chunk.length;
      if (left > 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

async function roundTrips(host: string, port: number, samples: number, warmups: number): Promise<void> {
  const message = Buffer.alloc(ROUND_TRIP_BYTES, 0x61);
  const ms: number[] = [];
  for (let index = 0; index < warmups + samples; index++) {
    const startNs = process.hrtime.bigint();
    const socket = await dial(host, port);
    const echoed = receive(socket, message.length);
    socket.write(message);
    await echoed;
    if (index >= warmups) ms.push(elapsedMs(startNs));
    socket.destroy();
  }
  print({ samples: ms });
}

function sink(host: string, port: number, bytes: number): void {
  serve(host, port, (socket) => {
    void receive(socket, bytes).then(() => socket.end(Buffer.of(1)));
  });
}

async function source(host: string, port: number, file: string): Promise<void> {
  const startNs = process.hrtime.bigint();
  const socket = await dial(host, port);
  const confirmed = receive(socket, 1);
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    bytes += (chunk as Buffer).length;
    if (!socket.write(chunk as Buffer)) await once(socket, 'drain');
  }
  await confirmed;
  print({ bytes, ms: elapsedMs(startNs) });
  socket.destroy();
}

async function windowed(host: string, port: number, count: number, bytes: number, inFlight: number) {
  const startNs = process.hrtime.bigint();
  const socket = await dial(host, port);
  const message = Buffer.alloc(bytes, 0x62);
  let sent = 0;
  let answered = 0;
  let pending = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.length;
      while (pending >= bytes) {
        pending -= bytes;
        answered += 1;
        if (sent < count) {
          socket.write(message);
          sent += 1;
        }
      }
      if (answered >= count) resolve();
    });
  });
  for (; sent < Math.min(inFlight, count); sent++) socket.write(message);
  await done;
  print({ count: answered, ms: elapsedMs(startNs) });
  socket.destroy();
}

async function main(): Promise<void> {
  const [mode, host = '127.0.0.1', portText = '0', ...rest] = process.argv.slice(2);
  const port = Number(portText);
  const numbers = rest.map(Number);
  switch (mode) {
    case 'echo':
      serve(host, port, (socket) => socket.pipe(socket));
      return;
    case 'rtt':
      return roundTrips(host, port, numbers[0] ?? 20, numbers[1] ?? 3);
    case 'sink':
      return sink(host, port, numbers[0] ?? 0);
    case 'source':
      return source(host, port, rest[0] ?? '');
    case 'window':
      return windowed(host, port, numbers[0] ?? 0, numbers[1] ?? ROUND_TRIP_BYTES, numbers[2] ?? 1);
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((error: unknown) => {
  print({ error: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
