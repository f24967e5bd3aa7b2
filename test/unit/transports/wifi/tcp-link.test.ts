// TcpLink over a real loopback socket: a burst of frames is handed up in order over several event-loop
// turns when handling them takes long, so that other work (timers, other links) runs in between.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../../../transports/wifi/framing.js';
import { TcpLink } from '../../../../transports/wifi/tcp-link.js';
import { countTurns } from '../../../support/turns.js';
import { until } from '../../../support/until.js';

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const dialled = connect(address.port, '127.0.0.1');
  await once(dialled, 'connect');
  const [other] = await accepted;
  server.close();
  sockets.push(dialled, other);
  return [dialled, other];
}

describe('TcpLink', () => {
  it('hands a burst of frames up in order, over several turns when each takes long', async () => {
    const [sending, receiving] = await socketPair();
    const link = new TcpLink(receiving, { isInitiator: false, maxFrameBytes: 1024 });
    const got: number[] = [];
    link.on('frame', (frame) => {
      got.push(frame[0] as number);
      const until = performance.now() + 0.2; // a costly frame: 0.2 ms of work each
      while (performance.now() < until) {
        // busy
      }
    });
    const turns = countTurns();
    const count = 500;
    sending.write(
      Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame(Uint8Array.of(i % 256)))),
    );
    await until('every frame', () => got.length === count);
    // 100 ms of frame handling, at most ~10 ms a turn (all in one turn, it would take 2 or 3).
    expect(turns.stop()).toBeGreaterThanOrEqual(8);
    expect(got).toEqual(Array.from({ length: count }, (_, i) => i % 256));
    link.close();
  });
});
