// TcpTransport beyond the shared FrameLink contract: dialling failures, listening failures, stop(),
// hostile or broken peers on the raw socket, and bulk transfer. Loopback only.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameTooLargeError } from '../../../../agent/core/errors.js';
import { DialError, ListenError } from '../../../../transports/errors.js';
import type { FrameLink } from '../../../../transports/transport.js';
import { encodeFrame, encodeFrameHeader } from '../../../../transports/wifi/framing.js';
import { TruncatedFrameError } from '../../../../transports/wifi/tcp-link.js';
import { TcpTransport, type TcpTransportOptions } from '../../../../transports/wifi/tcp-transport.js';
import { until } from '../../../support/until.js';
import { LinkProbe } from '../transport-contract.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startTransport(options: Partial<TcpTransportOptions> = {}): Promise<TcpTransport> {
  const transport = new TcpTransport({
    listen: { host: '127.0.0.1', port: 0 },
    closeGraceMs: 200,
    ...options,
  });
  cleanups.push(() => transport.stop());
  await transport.start();
  return transport;
}

function addressOf(transport: TcpTransport): string {
  const bound = transport.address();
  if (bound === undefined) throw new Error('transport is not listening');
  return `${bound.host}:${bound.port}`;
}

async function connectedPair(): Promise<{
  server: TcpTransport;
  client: TcpTransport;
  a: FrameLink;
  b: FrameLink;
}> {
  const server = await startTransport();
  const client = await startTransport({ listen: false });
  const accepted = new Promise<FrameLink>((resolve) => server.once('link', resolve));
  const a = await client.dial(addressOf(server));
  return { server, client, a, b: await accepted };
}

/** A raw socket to the transport's listener, plus the FrameLink the transport made of it. */
async function rawClient(server: TcpTransport): Promise<{ socket: Socket; link: FrameLink }> {
  const accepted = new Promise<FrameLink>((resolve) => server.once('link', resolve));
  const bound = server.address();
  const socket = connect({ host: bound?.host, port: bound?.port ?? 0 });
  socket.on('error', () => undefined);
  cleanups.push(() => socket.destroy());
  return { socket, link: await accepted };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * A loopback address whose SYNs go unanswered, so a dial hangs: a child process listens with a
 * backlog of 1 and then blocks its event loop, never accepting; two fillers fill the accept queue,
 * and Linux then drops further SYNs. No traffic leaves loopback.
 */
async function unansweringAddress(): Promise<string> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer();
       s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         process.stdout.write(s.address().port + '\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve) =>
    child.stdout?.once('data', (d) => resolve(Number(String(d)))),
  );
  for (let i = 0; i < 2; i++) {
    const filler = connect({ host: '127.0.0.1', port });
    filler.on('error', () => undefined);
    cleanups.push(() => filler.destroy());
    await new Promise((resolve) => filler.once('connect', resolve));
  }
  return `127.0.0.1:${port}`;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('TcpTransport listening', () => {
  it('reports the real port when port 0 was asked for, and nothing once stopped', async () => {
    const transport = await startTransport();
    const bound = transport.address();
    expect(bound?.host).toBe('127.0.0.1');
    expect(bound?.port).toBeGreaterThan(0);
    await transport.stop();
    expect(transport.address()).toBeUndefined();
  });

  it('rejects start() with a ListenError naming the address when it is in use', async () => {
    const first = await startTransport();
    const port = first.address()?.port;
    const second = new TcpTransport({ listen: { host: '127.0.0.1', port: port ?? 0 } });
    const error = await rejectionOf(second.start());
    expect(error).toBeInstanceOf(ListenError);
    expect((error as ListenError).code).toBe('listen');
    expect((error as ListenError).message).toContain(`127.0.0.1:${port}`);
    expect((error as ListenError).message).toContain('EADDRINUSE');
  });

  it('accepts IPv6 addresses in brackets', async () => {
    const server = new TcpTransport({ listen: { host: '::1', port: 0 } });
    try {
      await server.start();
    } catch (error) {
      if (error instanceof ListenError) return; // no IPv6 loopback on this machine
      throw error;
    }
    cleanups.push(() => server.stop());
    const client = await startTransport({ listen: false });
    const accepted = new Promise<FrameLink>((resolve) => server.once('link', resolve));
    const link = await client.dial(`[::1]:${server.address()?.port}`);
    expect(link.remoteAddress).toBe(`[::1]:${server.address()?.port}`);
    expect((await accepted).remoteAddress).toMatch(/^\[::1\]:\d+$/);
  });
});

describe('TcpTransport dialling', () => {
  it('rejects quickly with DialError "refused" for a closed port', async () => {
    const client = await startTransport({ listen: false });
    const port = await closedPort();
    const startedMs = Date.now();
    const error = await rejectionOf(client.dial(`127.0.0.1:${port}`));
    expect(error).toBeInstanceOf(DialError);
    expect((error as DialError).code).toBe('dial');
    expect((error as DialError).reason).toBe('refused');
    expect(Date.now() - startedMs).toBeLessThan(1000);
  });

  it('rejects an unparsable address without connecting', async () => {
    const client = await startTransport({ listen: false });
    for (const address of ['nohost', '::1:80', 'host:0', 'host:99999', '[::1]80']) {
      const error = await rejectionOf(client.dial(address));
      expect((error as DialError).reason).toBe('invalid-address');
    }
  });

  it('gives up after the timeout when nobody answers', async () => {
    const client = await startTransport({ listen: false });
    const address = await unansweringAddress();
    const startedMs = Date.now();
    const error = await rejectionOf(client.dial(address, { timeoutMs: 200 }));
    expect((error as DialError).reason).toBe('timeout');
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(190);
    expect(Date.now() - startedMs).toBeLessThan(2000);
  });

  it('uses connectTimeoutMs when dial() gives no timeout', async () => {
    const client = await startTransport({ listen: false, connectTimeoutMs: 150 });
    const error = await rejectionOf(client.dial(await unansweringAddress()));
    expect((error as DialError).reason).toBe('timeout');
  });

  it('stops at once when the signal aborts, before or during the dial', async () => {
    const client = await startTransport({ listen: false });
    const address = await unansweringAddress();
    const early = await rejectionOf(client.dial(address, { signal: AbortSignal.abort() }));
    expect((early as DialError).reason).toBe('aborted');

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const startedMs = Date.now();
    const late = await rejectionOf(client.dial(address, { signal: controller.signal, timeoutMs: 5000 }));
    expect((late as DialError).reason).toBe('aborted');
    expect(Date.now() - startedMs).toBeLessThan(1000);
  });

  it('rejects dials in flight when stopped, and new dials afterwards', async () => {
    const client = await startTransport({ listen: false });
    const address = await unansweringAddress();
    const pending = rejectionOf(client.dial(address, { timeoutMs: 5000 }));
    await client.stop();
    expect(((await pending) as DialError).reason).toBe('stopped');
    expect(((await rejectionOf(client.dial(address))) as DialError).reason).toBe('stopped');
  });
});

describe('TcpTransport links', () => {
  it('stop() closes every link it accepted or dialled, on both ends', async () => {
    const { server, client, a, b } = await connectedPair();
    const second = new Promise<FrameLink>((resolve) => server.once('link', resolve));
    const c = await client.dial(addressOf(server));
    const d = await second;
    const probes = [a, b, c, d].map((link) => new LinkProbe(link));
    await server.stop();
    await Promise.all(probes.map((p) => p.waitForClose()));
    expect(probes.every((p) => p.closes.length === 1)).toBe(true);
    await client.stop();
    expect(server.address()).toBeUndefined();
  });

  it('stopAccepting() refuses new connections at the TCP level while its links carry on; start() accepts again', async () => {
    const { server, client, a, b } = await connectedPair();
    const address = addressOf(server);
    const [atClient, atServer] = [new LinkProbe(a), new LinkProbe(b)];
    await server.stopAccepting();
    expect(server.address()).toBeUndefined();
    // Refused by the kernel, not accepted and then closed: the dialler never gets a link to hand a handshake.
    const error = await rejectionOf(client.dial(address));
    expect((error as DialError).reason).toBe('refused');
    const raw = connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
    const rawError = await new Promise<NodeJS.ErrnoException>((resolve) => raw.once('error', resolve));
    expect(rawError.code).toBe('ECONNREFUSED');
    a.send(Buffer.from('still here'));
    b.send(Buffer.from('and here'));
    expect(Buffer.from((await atServer.waitForFrames(1))[0] as Uint8Array).toString()).toBe('still here');
    expect(Buffer.from((await atClient.waitForFrames(1))[0] as Uint8Array).toString()).toBe('and here');
    expect([atClient.closes, atServer.closes]).toEqual([[], []]);

    await server.start();
    const accepted = new Promise<FrameLink>((resolve) => server.once('link', resolve));
    await client.dial(addressOf(server));
    await accepted;
    await server.stop();
    await Promise.all([atClient, atServer].map((probe) => probe.waitForClose()));
  });

  it('writes exactly the wire format: a 4-byte big-endian length, then the frame', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    link.send(Uint8Array.from([1, 2, 3]));
    link.send(new Uint8Array(0));
    link.send(new Uint8Array(10_000).fill(7));
    await until('the raw bytes', () => Buffer.concat(received).length >= 7 + 4 + 10_004, { timeoutMs: 5000 });
    expect(Buffer.concat(received)).toEqual(
      Buffer.concat([
        encodeFrame(Uint8Array.from([1, 2, 3])),
        encodeFrame(new Uint8Array(0)),
        encodeFrame(new Uint8Array(10_000).fill(7)),
      ]),
    );
  });

  it('reassembles frames a peer writes one byte at a time', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    const frames = [Uint8Array.from([5, 6, 7]), new Uint8Array(0), Uint8Array.from(randomBytes(300))];
    const bytes = Buffer.concat(frames.map(encodeFrame));
    for (const byte of bytes) {
      socket.write(Uint8Array.of(byte));
      await new Promise((resolve) => setImmediate(resolve)); // pacing: each byte leaves in a write of its own
    }
    expect(await probe.waitForFrames(3)).toEqual(frames);
  });

  it('tells when bytes last arrived, those of a frame still incomplete included (a slow link is not silent)', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    const frame = randomBytes(64 * 1024);
    const bytes = encodeFrame(frame);
    const clockPassesLastArrival = () =>
      until('the clock to pass the last arrival', () => Date.now() > link.lastReceivedAtMs);
    await clockPassesLastArrival();
    const firstAt = Date.now();
    socket.write(bytes.subarray(0, 1_000));
    await until('the first bytes', () => link.lastReceivedAtMs >= firstAt, { timeoutMs: 5_000 });
    await clockPassesLastArrival();
    const before = Date.now();
    socket.write(bytes.subarray(1_000, 2_000));
    await until('the bytes after the pause', () => link.lastReceivedAtMs >= before, { timeoutMs: 5_000 });
    expect(probe.frames).toHaveLength(0);
    socket.write(bytes.subarray(2_000));
    expect(await probe.waitForFrames(1)).toEqual([Uint8Array.from(frame)]);
  });

  it('closes the link with FrameTooLargeError on an oversized incoming length, without reading a body', async () => {
    const server = await startTransport({ maxFrameBytes: 1024 });
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    const isSocketClosed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(encodeFrame(Uint8Array.from([1])));
    socket.write(encodeFrameHeader(0xffff_ffff)); // 4 GiB announced, nothing follows
    const error = await probe.waitForClose();
    expect(error).toBeInstanceOf(FrameTooLargeError);
    expect((error as FrameTooLargeError).sizeBytes).toBe(0xffff_ffff);
    expect(probe.frames).toEqual([Uint8Array.from([1])]);
    await isSocketClosed;
  });

  it('ends a reset connection as one close carrying ECONNRESET', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    socket.resetAndDestroy();
    const error = await probe.waitForClose();
    expect((error as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNRESET');
    await server.stop(); // resolves once every socket it held is gone: no second close can follow
    expect(probe.closes).toHaveLength(1);
    expect(link.send(Uint8Array.from([1]))).toBe(false);
  });

  it('reports a stream that ends inside a frame as TruncatedFrameError', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    socket.end(encodeFrame(new Uint8Array(100)).subarray(0, 50));
    expect(await probe.waitForClose()).toBeInstanceOf(TruncatedFrameError);
  });

  it('an orderly remote close ends the link without an error', async () => {
    const server = await startTransport();
    const { socket, link } = await rawClient(server);
    const probe = new LinkProbe(link);
    socket.end(encodeFrame(Uint8Array.from([1])));
    expect(await probe.waitForClose()).toBeUndefined();
    expect(probe.frames).toEqual([Uint8Array.from([1])]);
  });

  it('close() gives a peer that never finishes the grace period, then destroys the socket', async () => {
    // A half-open raw server: it reads our FIN but never sends its own.
    const rawSockets: Socket[] = [];
    const raw: Server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => undefined);
      rawSockets.push(socket);
    });
    await new Promise<void>((resolve) => raw.listen({ host: '127.0.0.1', port: 0 }, resolve));
    cleanups.push(() => {
      for (const socket of rawSockets) socket.destroy();
      return new Promise((resolve) => raw.close(resolve));
    });
    const rawAddress = raw.address();
    if (rawAddress === null || typeof rawAddress === 'string') throw new Error('no port');
    const client = await startTransport({ listen: false, closeGraceMs: 150 });
    const link = await client.dial(`127.0.0.1:${rawAddress.port}`);
    const probe = new LinkProbe(link);
    const startedMs = Date.now();
    link.close();
    expect(await probe.waitForClose()).toBeUndefined();
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(140);
    expect(Date.now() - startedMs).toBeLessThan(1000);
  });

  it('carries 10 MiB of frames each way, intact and in order', async () => {
    const { a, b } = await connectedPair();
    const totalBytes = 10 * 1024 * 1024;
    const frameBytes = 64 * 1024;
    const count = totalBytes / frameBytes;
    const digests = { aToB: createHash('sha256'), bToA: createHash('sha256') };
    const received = { atB: createHash('sha256'), atA: createHash('sha256') };
    let framesAtA = 0;
    let framesAtB = 0;
    a.on('frame', (frame) => {
      received.atA.update(frame);
      framesAtA++;
    });
    b.on('frame', (frame) => {
      received.atB.update(frame);
      framesAtB++;
    });
    const pump = async (from: FrameLink, digest: ReturnType<typeof createHash>) => {
      for (let i = 0; i < count; i++) {
        const frame = randomBytes(frameBytes - (i % 7)); // uneven sizes shift frame boundaries
        digest.update(frame);
        if (!from.send(frame)) await from.drained();
      }
    };
    await Promise.all([pump(a, digests.aToB), pump(b, digests.bToA)]);
    await until(
      () => `${count} frames each way (got ${framesAtA} at a, ${framesAtB} at b)`,
      () => framesAtA === count && framesAtB === count,
      { timeoutMs: 20_000 },
    );
    expect(received.atB.digest('hex')).toBe(digests.aToB.digest('hex'));
    expect(received.atA.digest('hex')).toBe(digests.bToA.digest('hex'));
  });
});
