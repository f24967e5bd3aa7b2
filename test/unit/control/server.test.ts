// The control socket as a hostile or clumsy client meets it: bad JSON, unknown commands and
// oversized lines get an error on that client only; the socket is private; a stale file is replaced.
import { statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentApi, AppMessage } from '../../../agent/api.js';
import { ControlClient, ControlCommandError } from '../../../agent/control/client.js';
import { MAX_CONTROL_LINE_BYTES } from '../../../agent/control/limits.js';
import { ControlServer, ControlSocketError, type ControlTarget } from '../../../agent/control/server.js';
import type { ListenEvent } from '../../../agent/control/wire.js';
import { NearmeshError, PeerUnreachableError } from '../../../agent/core/errors.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { stopAllAgents, temporaryDir } from '../../support/agent-process.js';
import { until } from '../../support/until.js';

const servers: ControlServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await stopAllAgents();
});

/** What the fake agent's listens were told was taken. */
const taken: number[] = [];

/** What the fake agent was asked to send, decoded: the control socket turns base64 into bytes. */
const sent: { peer: string; bytes: number[]; wait: boolean }[] = [];

function fakeApi(): AgentApi {
  const unsupported = (): never => {
    throw new NearmeshError('unsupported', 'not in this fake');
  };
  return {
    id: () => ({ id: '0123456789abcdef', name: 'test' }),
    status: unsupported,
    peers: () => [],
    routes: () => [],
    topology: () => [],
    leases: () => [],
    transfers: () => [],
    resolvers: () => [],
    groups: () => [],
    logLevel: () => 'info',
    send: async (peer, payloads, options) => {
      if (peer !== 'known') throw new PeerUnreachableError(peer, 'unknown peer');
      sent.push({ peer, bytes: payloads.map((payload) => payload.length), wait: options.wait });
      return { peer, seq: 1, last_seq: payloads.length, count: payloads.length, acknowledged: options.wait };
    },
    enqueue: (peer, payloads) => ({
      peer,
      seq: 1,
      last_seq: payloads.length,
      count: payloads.length,
      acknowledged: false,
    }),
    sendUnreliable: (peer, payload) => ({ peer, sent: payload.length > 0 }),
    multicast: () => ({ links: 0 }),
    subscribe: unsupported,
    listen: (options, listener) => {
      let inboxId = 0;
      const timer = setInterval(() => {
        inboxId++;
        listener({ from: 'x', fromName: 'x', payload: Buffer.from('p'), receivedAtMs: 0, hops: 1, inboxId });
      }, 10);
      return {
        result: { consumer: options.consumer ?? 'listen' },
        take: (upTo) => taken.push(upTo),
        stop: () => clearInterval(timer),
      };
    },
    inbox: unsupported,
    inboxList: () => [],
    inboxClear: () => ({ removed: 0 }),
    inboxForget: () => ({ forgotten: false }),
    invite: unsupported,
    invitation: unsupported,
    inviteCancel: unsupported,
    join: unsupported,
    revoke: unsupported,
    meshKey: () => ({ epoch: 0, mesh_key: 'AAAA' }),
    rekey: unsupported,
    streamOpen: unsupported,
    streamWrite: unsupported,
    streamEnd: unsupported,
    streamReceive: () => () => {},
    push: async (request) => ({
      result: { transferId: 'f00d', peer: request.peer, name: request.path, size: 1 },
      stop: () => {},
    }),
    call: unsupported,
    actions: () => [],
    sensors: () => [],
    read: unsupported,
    lease: unsupported,
    watch: () => () => {},
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
  };
}

function controlTarget(api: Partial<AgentApi> = {}): ControlTarget {
  return {
    api: { ...fakeApi(), ...api },
    consoleLine: async (line, io) => {
      if (line !== 'stream') return { output: `ran ${line}\n` };
      // A long-running line (like trace): output as it goes, until the client cancels it.
      io.write('first\n');
      await new Promise((resolve) => io.signal.addEventListener('abort', resolve));
      return { output: 'stopped\n' };
    },
    consoleComplete: async (line) => ({ completions: [], word: line }),
  };
}

async function startServer(api: Partial<AgentApi> = {}): Promise<string> {
  const path = join(temporaryDir(), 'control.sock');
  const server = new ControlServer(path, controlTarget(api), silentLogger());
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
      transferId: 'f00d',
      peer: 'known',
      name: '/srv/a.bin',
      size: 1,
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
    sent.length = 0;
    await expect(client.request({ cmd: 'send', peer: 'known', payload: 'aGk=' })).resolves.toMatchObject({
      peer: 'known',
      count: 1,
      acknowledged: true,
    });
    // A batch is queued in its order; wait false answers once queued.
    await expect(
      client.request({ cmd: 'send', peer: 'known', payload: ['aGk=', 'aGVsbG8='], wait: false }),
    ).resolves.toMatchObject({ peer: 'known', count: 2, acknowledged: false });
    expect(sent).toEqual([
      { peer: 'known', bytes: [2], wait: true },
      { peer: 'known', bytes: [2, 5], wait: false },
    ]);
    await expect(client.request({ cmd: 'send-unreliable', peer: 'known', payload: 'aGk=' })).resolves.toEqual(
      { peer: 'known', sent: true },
    );
    client.close();
  });

  it('fails a request made after the agent went away at once, instead of waiting forever', async () => {
    const path = join(temporaryDir(), 'gone.sock');
    // An agent killed while the client was idle: the connection ends before the next request.
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = await ControlClient.connect(path);
    await new Promise<void>((resolve) => client.onClose(() => resolve()));
    await expect(client.request({ cmd: 'id' })).rejects.toMatchObject({ code: 'agent-gone' });
    server.close();
  });

  it('closes a client whose line never ends, and only that client', async () => {
    const path = await startServer();
    const other = await ControlClient.connect(path);
    const replies = await rawExchange(path, 'x'.repeat(MAX_CONTROL_LINE_BYTES + 1024), 1);
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    await expect(other.request({ cmd: 'id' })).resolves.toMatchObject({ name: 'test' });
    other.close();
  });

  it('streams events to a listener, takes what it says it took, and stops when it disconnects', async () => {
    let listening = 0;
    let stopped = 0;
    const listen = fakeApi().listen;
    const path = await startServer({
      listen: (options, listener) => {
        listening++;
        const running = listen(options, listener);
        return {
          ...running,
          stop: () => {
            stopped++;
            running.stop();
          },
        };
      },
    });
    const client = await ControlClient.connect(path);
    const events: ListenEvent[] = [];
    await expect(client.request({ cmd: 'inbox-take', up_to: 1 })).rejects.toThrow(/needs a listen/);
    await expect(
      client.stream({ cmd: 'listen', consumer: 'app' }, (event) => {
        events.push(event);
      }),
    ).resolves.toEqual({ consumer: 'app' });
    await until('events streamed', () => events.length > 1);
    expect(events[0]).toMatchObject({ inbox_id: 1, payload: 'p' });
    taken.length = 0;
    await client.request({ cmd: 'inbox-take', up_to: 2 });
    expect(taken).toEqual([2]);
    await expect(client.request({ cmd: 'listen' })).rejects.toThrow(/already listens/);
    client.close();
    await until('the listen stopped', () => stopped === 1);
    expect(listening).toBe(1);
  });

  it('disconnects a listener that stopped reading once 8 MiB wait for it, and keeps serving others', async () => {
    let emit: ((message: AppMessage) => void) | undefined;
    const path = await startServer({
      listen: (_options, listener) => {
        emit = listener;
        return {
          result: { consumer: 'listen' },
          take: () => {},
          stop: () => {
            emit = undefined;
          },
        };
      },
    });
    const stuck: Socket = connect(path);
    stuck.on('error', () => {});
    const closed = new Promise<void>((resolve) => stuck.once('close', () => resolve()));
    stuck.write(`${JSON.stringify({ id: 1, cmd: 'listen' })}\n`);
    await until('the listen subscribed', () => emit !== undefined);
    stuck.pause();
    // 48 MiB of events, far more than the socket buffers hold; nothing reads them.
    const event: AppMessage = {
      from: 'x',
      fromName: 'x',
      payload: Buffer.alloc(64 * 1024, 'x'),
      receivedAtMs: 0,
      hops: 1,
    };
    for (let sent = 0; sent < 768 && emit !== undefined; sent++) {
      emit(event);
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve)); // pacing: let writes go out
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
    await until('trace events streamed', () => events.length > 1);
    client.close();
    expect(events.length).toBeGreaterThan(1);
    expect(events[0]).toMatchObject({ type: 'PING', direction: 'in' });
  });

  it("streams a console line's output as it runs and stops it on console-cancel", async () => {
    const path = await startServer();
    const client = await ControlClient.connect(path);
    const outputs: string[] = [];
    const running = client.requestWithEvents({ cmd: 'console-line', line: 'stream' }, (event) =>
      outputs.push(event.output),
    );
    await until('the output so far', () => outputs.length > 0);
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
    const server = new ControlServer(path, controlTarget(), silentLogger());
    await server.start();
    servers.push(server);
    const second = new ControlServer(path, controlTarget(), silentLogger());
    await expect(second.start()).rejects.toBeInstanceOf(ControlSocketError);
    await expect((await ControlClient.connect(path)).request({ cmd: 'id' })).resolves.toMatchObject({
      name: 'test',
    });
  });
});
