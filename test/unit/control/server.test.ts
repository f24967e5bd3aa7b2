// The control socket as a hostile or clumsy client meets it: bad JSON, unknown commands and
// oversized lines get an error on that client only; the socket is private; a stale file is replaced.
import { statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient, ControlCommandError } from '../../../agent/control/client.js';
import { type ControlHandlers, ControlServer, ControlSocketError } from '../../../agent/control/server.js';
import { MAX_CONTROL_LINE_BYTES } from '../../../agent/control/wire.js';
import { PeerUnreachableError } from '../../../agent/core/errors.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { stopAllAgents, temporaryDir } from '../../support/agent-process.js';

const servers: ControlServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await stopAllAgents();
});

const handlers: ControlHandlers = {
  id: () => ({ id: '0123456789abcdef', name: 'test' }),
  status: () => ({ ok: true }),
  peers: () => [],
  send: async (peer, payloads, options) => {
    if (peer !== 'known') throw new PeerUnreachableError(peer, 'unknown peer');
    return { peer, bytes: payloads.map((payload) => payload.length), wait: options.wait };
  },
  multicast: (group, payload) => ({ group: group ?? null, bytes: payload.length }),
  sendUnreliable: (peer, payload) => ({ peer, sent: payload.length > 0 }),
  routes: () => [],
  revoke: (peer, reason) => ({ revoked: peer, reason }),
  rekey: async (overlapMs) => ({ epoch: 1, overlap_ms: overlapMs }),
  meshKey: () => ({ epoch: 0, mesh_key: 'AAAA' }),
  streamOpen: async (peer, name) => ({ result: { stream: 1, peer, name }, stop: () => {} }),
  streamWrite: async (stream, bytes) => ({ stream, bytes: bytes.length }),
  streamEnd: async (stream) => ({ stream }),
  streamReceive: () => () => {},
  push: async (request) => ({ result: { transfer_id: 'f00d', path: request.path }, stop: () => {} }),
  call: async (request) => [{ peer: request.target, status: 'ok', result: request.args }],
  actions: () => [],
  sensors: () => [],
  read: async (peer, sensor) => ({ peer, sensor, value: 1 }),
  lease: async (request) => ({ result: { peer: request.peer, granted: true } }),
  watch: () => () => {},
  consoleLine: async (line, io) => {
    if (line !== 'stream') return { output: `ran ${line}\n` };
    // A long-running line (like trace): output as it goes, until the client cancels it.
    io?.write('first\n');
    await new Promise((resolve) => io?.signal.addEventListener('abort', resolve));
    return { output: 'stopped\n' };
  },
  consoleComplete: (line) => ({ completions: [], word: line }),
  trace: (peer, listener) => {
    if (peer !== 'known') throw new PeerUnreachableError(peer, 'unknown peer');
    const timer = setInterval(
      () =>
        listener({
          at: '2026-11-25T14:32:17.123Z',
          peer: 'known',
          peer_name: 'known',
          direction: 'in',
          medium: 'wifi',
          type: 'PING',
          id: 1,
          flags: [],
        }),
      10,
    );
    return { peer, name: peer, stop: () => clearInterval(timer) };
  },
  subscribe: (listener) => {
    const timer = setInterval(
      () =>
        listener({
          from: 'x',
          from_name: 'x',
          payload: 'p',
          payload_base64: 'cA==',
          received_at: 'now',
          hops: 1,
        }),
      10,
    );
    return () => clearInterval(timer);
  },
};

async function startServer(overrides: Partial<ControlHandlers> = {}): Promise<string> {
  const path = join(temporaryDir(), 'control.sock');
  const server = new ControlServer(path, { ...handlers, ...overrides }, silentLogger());
  await server.start();
  servers.push(server);
  return path;
}

function rawExchange(path: string, text: string, lines: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      const complete = buffered.split('\n').filter((line) => line !== '');
      if (buffered.endsWith('\n') && complete.length >= lines) {
        socket.destroy();
        resolve(complete.map((line) => JSON.parse(line) as Record<string, unknown>));
      }
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

describe('control socket', () => {
  it('is created with mode 0600', async () => {
    const path = await startServer();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('answers bad requests with typed errors and keeps serving the same client', async () => {
    const path = await startServer();
    const replies = await rawExchange(
      path,
      'not json\n{"id":2,"cmd":"reboot"}\n{"id":3,"cmd":"send","peer":"known"}\n{"id":4,"cmd":"send","peer":"known","payload":"!!"}\n{"id":5,"cmd":"id"}\n',
      5,
    );
    expect(replies.map((reply) => [reply.id, reply.ok])).toEqual([
      [-1, false],
      [2, false],
      [3, false],
      [4, false],
      [5, true],
    ]);
    for (const reply of replies.slice(0, 4))
      expect((reply.error as { code: string }).code).toBe('bad-request');
    expect(replies[2]?.error).toMatchObject({ message: expect.stringMatching(/payload/) });
  });

  it('takes a push with an absolute path only', async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    await expect(client.request({ cmd: 'push', peer: 'known', path: '/srv/a.bin' })).resolves.toEqual({
      transfer_id: 'f00d',
      path: '/srv/a.bin',
    });
    await expect(client.request({ cmd: 'push', peer: 'known', path: 'a.bin' })).rejects.toMatchObject({
      code: 'bad-request',
      message: expect.stringMatching(/absolute path/),
    });
    client.close();
  });

  it('passes handler errors through with their code', async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    const refused = client.request({ cmd: 'send', peer: 'ghost', payload: 'aGk=' });
    await expect(refused).rejects.toBeInstanceOf(ControlCommandError);
    await expect(refused).rejects.toMatchObject({
      code: 'peer-unreachable',
      message: expect.stringMatching(/unknown peer/),
    });
    await expect(client.request({ cmd: 'send', peer: 'known', payload: 'aGk=' })).resolves.toEqual({
      peer: 'known',
      bytes: [2],
      wait: true,
    });
    // A batch is queued in its order; wait false answers once queued.
    await expect(
      client.request({ cmd: 'send', peer: 'known', payload: ['aGk=', 'aGVsbG8='], wait: false }),
    ).resolves.toEqual({ peer: 'known', bytes: [2, 5], wait: false });
    await expect(
      client.request({ cmd: 'send', peer: 'known', payload: ['aGk=', 'aGk='], unreliable: true }),
    ).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/one payload/) });
    client.close();
  });

  it('closes a client whose line never ends, and only that client', async () => {
    const path = await startServer();
    const other = await ControlClient.connect(path);
    const replies = await rawExchange(path, 'x'.repeat(MAX_CONTROL_LINE_BYTES + 1024), 1);
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    await expect(other.request({ cmd: 'id' })).resolves.toMatchObject({ name: 'test' });
    other.close();
  });

  it('streams events to a listener and stops when it disconnects', async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    const events: unknown[] = [];
    await client.stream({ cmd: 'listen' }, (event) => {
      events.push(event);
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    client.close();
    expect(events.length).toBeGreaterThan(1);
  });

  it('disconnects a listener that stopped reading once 8 MiB wait for it, and keeps serving others', async () => {
    let emit: ((event: Parameters<Parameters<ControlHandlers['subscribe']>[0]>[0]) => void) | undefined;
    const path = await startServer({
      subscribe: (listener) => {
        emit = listener;
        return () => {
          emit = undefined;
        };
      },
    });
    const stuck: Socket = connect(path);
    stuck.on('error', () => {});
    const closed = new Promise<void>((resolve) => stuck.once('close', () => resolve()));
    stuck.write(`${JSON.stringify({ id: 1, cmd: 'listen' })}\n`);
    while (emit === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    stuck.pause();
    // 48 MiB of events, far more than the socket buffers hold; nothing reads them.
    const payload = 'x'.repeat(64 * 1024);
    const event = { from: 'x', from_name: 'x', payload, payload_base64: '', received_at: 'now', hops: 1 };
    for (let sent = 0; sent < 768 && emit !== undefined; sent++) {
      emit(event);
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // The server let go of it (its subscription ended); read what was sent and the stream ends.
    expect(emit).toBeUndefined();
    stuck.resume();
    await closed;
    const other = await ControlClient.connect(path);
    await expect(other.request({ cmd: 'id' })).resolves.toMatchObject({ name: 'test' });
    other.close();
  });

  it('streams trace events for a known peer and refuses an unknown one', async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    await expect(client.request({ cmd: 'trace', peer: 'ghost' })).rejects.toMatchObject({
      code: 'peer-unreachable',
    });
    const events: unknown[] = [];
    await client.stream({ cmd: 'trace', peer: 'known' }, (event) => {
      events.push(event);
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    client.close();
    expect(events.length).toBeGreaterThan(1);
    expect(events[0]).toMatchObject({ type: 'PING', direction: 'in' });
  });

  it("streams a console line's output as it runs and stops it on console-cancel", async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    const outputs: string[] = [];
    const running = client.requestWithEvents({ cmd: 'console-line', line: 'stream' }, (event) =>
      outputs.push((event as { output: string }).output),
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(outputs).toEqual(['first\n']);
    await expect(client.request({ cmd: 'console-cancel' })).resolves.toEqual({ cancelled: 1 });
    await expect(running).resolves.toEqual({ output: 'stopped\n' });
    await expect(client.request({ cmd: 'console-line', line: 'peers' })).resolves.toEqual({
      output: 'ran peers\n',
    });
    client.close();
  });

  it('replaces a stale socket file but refuses to steal a live one', async () => {
    const dir = temporaryDir();
    const path = join(dir, 'control.sock');
    writeFileSync(path, 'left over by a crash');
    const server = new ControlServer(path, handlers, silentLogger());
    await server.start();
    servers.push(server);
    const second = new ControlServer(path, handlers, silentLogger());
    await expect(second.start()).rejects.toBeInstanceOf(ControlSocketError);
    await expect((await ControlClient.connect(path)).request({ cmd: 'id' })).resolves.toMatchObject({
      name: 'test',
    });
  });
});
