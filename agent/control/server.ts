// The agent's control socket: a UNIX socket (mode 0600) speaking JSON lines. Each client is handled
// on its own; a malformed request gets an error reply on that client only.
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AgentApi, AppMessage } from '../api.js';
import type { ConsoleIo } from '../console/commands.js';
import { NearmeshError } from '../core/errors.js';
import { LineReader } from '../core/line-reader.js';
import { listening } from '../core/listen.js';
import type { Logger } from '../core/logger.js';
import { MAX_CONTROL_LINE_BYTES } from './limits.js';
import {
  type ConsoleCompleteResult,
  type ConsoleLineResult,
  type ControlCommand,
  type ControlEvents,
  type ControlRequest,
  type ControlResponse,
  type ControlResults,
  callRequestOf,
  type ListenEvent,
  type RequestOf,
  requestSchema,
} from './wire.js';

export class ControlSocketError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('control-socket', message, options);
  }
}

/** What the control socket serves: the agent's typed API, and the console's command language on top of it. */
export interface ControlTarget {
  api: AgentApi;
  /** Runs one console line; errors come back as its text. `io` carries its live output and its cancellation. */
  consoleLine(line: string, io: ConsoleIo): Promise<ConsoleLineResult>;
  consoleComplete(line: string): Promise<ConsoleCompleteResult>;
}

/** What a handler gets besides its request: the client it serves, and a way to stream events to it. */
interface HandlerContext<C extends ControlCommand> {
  readonly client: ClientState;
  readonly emit: (event: C extends keyof ControlEvents ? ControlEvents[C] : never) => void;
}

type Handler<C extends ControlCommand> = (
  request: RequestOf<C>,
  context: HandlerContext<C>,
) => ControlResults[C] | Promise<ControlResults[C]>;

/** What one client has running: stream subscriptions and console lines it may cancel. */
interface ClientState {
  readonly socket: Socket;
  readonly unsubscribers: Array<() => void>;
  readonly consoleLines: Set<AbortController>;
  /** What the `listen` on this connection has taken, said by `inbox-take`. */
  inboxTake?: (upTo: number) => void;
}

/**
 * What one client may leave unread before it is disconnected: a `listen` or `trace` that stopped reading
 * (suspended with Ctrl-Z, stuck behind a full pipe) would otherwise grow the agent's memory with every
 * event. `stream --receive` paces itself (its events wait for 'drain') and stays far below this.
 */
export const MAX_UNREAD_CONTROL_BYTES = 8 * 1024 * 1024;

export class ControlServer {
  #server: Server | undefined;
  readonly #clients = new Set<Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly target: ControlTarget,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await removeStaleSocket(this.socketPath);
    const server = createServer((socket) => this.#serve(socket));
    // The socket must never exist with looser permissions, not even for a moment.
    const previousUmask = process.umask(0o177);
    try {
      await listening(server, this.socketPath);
    } catch (error) {
      throw new ControlSocketError(
        `cannot listen on control socket ${this.socketPath}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    } finally {
      process.umask(previousUmask);
    }
    await chmod(this.socketPath, 0o600);
    server.on('error', (error) => this.log.warn({ err: error }, 'control socket error'));
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const client of this.#clients) client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  #serve(socket: Socket): void {
    this.#clients.add(socket);
    const reader = new LineReader(MAX_CONTROL_LINE_BYTES);
    const client: ClientState = { socket, unsubscribers: [], consoleLines: new Set() };
    const reply = (response: ControlResponse): void => {
      if (socket.destroyed) return;
      if (socket.writableLength > MAX_UNREAD_CONTROL_BYTES) {
        this.log.warn(
          { unreadBytes: socket.writableLength },
          'control client stopped reading its events: disconnected',
        );
        socket.destroy();
        return;
      }
      socket.write(`${JSON.stringify(response)}\n`);
    };
    socket.on('data', (chunk) => {
      const lines = reader.push(chunk);
      if (lines === 'too-long') {
        reply({ id: -1, ok: false, error: { code: 'bad-request', message: 'request line too long' } });
        socket.end();
        return;
      }
      for (const line of lines) if (line.trim() !== '') void this.#handle(line, reply, client);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#clients.delete(socket);
      for (const unsubscribe of client.unsubscribers) unsubscribe();
      for (const running of client.consoleLines) running.abort();
    });
  }

  async #handle(
    line: string,
    reply: (response: ControlResponse) => void,
    client: ClientState,
  ): Promise<void> {
    let request: ControlRequest;
    try {
      const parsed = requestSchema.safeParse(JSON.parse(line));
      if (!parsed.success) {
        const id = extractId(line);
        const issue = parsed.error.issues[0];
        const where = issue !== undefined && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
        reply({
          id,
          ok: false,
          error: { code: 'bad-request', message: `${where}${issue?.message ?? 'invalid request'}` },
        });
        return;
      }
      request = parsed.data;
    } catch {
      reply({ id: -1, ok: false, error: { code: 'bad-request', message: 'request is not JSON' } });
      return;
    }
    try {
      const result = await this.#dispatch(request, reply, client);
      reply({ id: request.id, ok: true, result });
    } catch (error) {
      const code = error instanceof NearmeshError ? error.code : 'internal';
      if (code === 'internal') this.log.error({ err: error, cmd: request.cmd }, 'control command failed');
      reply({ id: request.id, ok: false, error: { code, message: (error as Error).message } });
    }
  }

  #dispatch(
    request: ControlRequest,
    reply: (response: ControlResponse) => void,
    client: ClientState,
  ): Promise<unknown> {
    const handler = this.#handlers[request.cmd] as Handler<ControlCommand>;
    // Each command's events go out under its request's id, before and after its result.
    const emit = (event: unknown): void => reply({ id: request.id, event });
    return Promise.resolve(handler(request, { client, emit }));
  }

  /** One handler per command, each typed by its request and checked against ControlResults. */
  readonly #handlers: { [C in ControlCommand]: Handler<C> } = {
    id: () => this.target.api.id(),
    status: () => this.target.api.status(),
    peers: () => this.target.api.peers(),
    send: (request) => {
      const payloads = (Array.isArray(request.payload) ? request.payload : [request.payload]).map((text) =>
        Buffer.from(text, 'base64'),
      );
      return this.target.api.send(request.peer, payloads, {
        wait: request.wait !== false,
        timeoutMs: request.timeout_ms,
      });
    },
    'send-unreliable': (request) =>
      this.target.api.sendUnreliable(request.peer, Buffer.from(request.payload, 'base64')),
    multicast: (request) => this.target.api.multicast(request.group, Buffer.from(request.payload, 'base64')),
    routes: () => this.target.api.routes(),
    topology: () => this.target.api.topology(),
    transfers: () => this.target.api.transfers(),
    resolvers: () => this.target.api.resolvers(),
    revoke: (request) => this.target.api.revoke(request.peer, request.reason ?? ''),
    rekey: (request) => this.target.api.rekey(request.overlap_ms),
    'mesh-key': () => this.target.api.meshKey(),
    invite: (request) =>
      this.target.api.invite({
        ...(request.ttl_ms !== undefined && { ttlMs: request.ttl_ms }),
        ...(request.attempts !== undefined && { attempts: request.attempts }),
        ...(request.mesh_name !== undefined && { meshName: request.mesh_name }),
      }),
    invitation: (request) => this.target.api.invitation(request.invitation),
    'invite-cancel': () => this.target.api.inviteCancel(),
    join: (request) =>
      this.target.api.join(request.code, {
        ...(request.address !== undefined && { address: request.address }),
        ...(request.timeout_ms !== undefined && { timeoutMs: request.timeout_ms }),
      }),
    call: (request) => this.target.api.call(callRequestOf(request)),
    actions: () => this.target.api.actions(),
    leases: () => this.target.api.leases(),
    sensors: () => this.target.api.sensors(),
    read: (request) => this.target.api.read(request.peer, request.sensor),
    lease: async (request, { client }) => {
      const { id: _id, cmd: _cmd, ...lease } = request;
      const { result, stop } = await this.target.api.lease(lease);
      if (stop !== undefined) client.unsubscribers.push(stop);
      return result;
    },
    watch: (request, { client, emit }) => {
      client.unsubscribers.push(
        this.target.api.watch(request.peer, request.sensor, request.interval_ms, emit),
      );
      return { watching: true };
    },
    push: async (request, { client, emit }) => {
      const { id: _id, cmd: _cmd, ...push } = request;
      const { result, stop } = await this.target.api.push(push, emit);
      client.unsubscribers.push(stop);
      return result;
    },
    'stream-open': async (request, { client }) => {
      const { result, stop } = await this.target.api.streamOpen(request.peer, request.name);
      client.unsubscribers.push(stop);
      return result;
    },
    'stream-write': (request) =>
      this.target.api.streamWrite(request.stream, Buffer.from(request.data, 'base64')),
    'stream-end': (request) => this.target.api.streamEnd(request.stream),
    'stream-receive': (request, { client, emit }) => {
      const { socket } = client;
      client.unsubscribers.push(
        this.target.api.streamReceive(request.name, {
          event: (event) => {
            emit(event);
            return !socket.writableNeedDrain;
          },
          onDrain: (callback) => socket.once('drain', callback),
        }),
      );
      return { receiving: request.name };
    },
    listen: (request, { client, emit }) => {
      if (client.inboxTake !== undefined)
        throw new NearmeshError(
          'bad-request',
          'this connection already listens: open another for another listen',
        );
      const { result, take, stop } = this.target.api.listen(
        { consumer: request.consumer, peek: request.peek, from: request.from, sinceMs: request.since_ms },
        (message) => emit(toListenEvent(message)),
      );
      client.unsubscribers.push(stop);
      client.inboxTake = take;
      return result;
    },
    'inbox-take': (request, { client }) => {
      if (client.inboxTake === undefined)
        throw new NearmeshError('bad-request', 'inbox-take needs a listen on the same connection');
      client.inboxTake(request.up_to);
      return { taken_up_to: request.up_to };
    },
    inbox: () => this.target.api.inbox(),
    'inbox-list': (request) =>
      this.target.api
        .inboxList({ from: request.from, sinceMs: request.since_ms, limit: request.limit ?? 1000 })
        .map(toListenEvent),
    'inbox-clear': (request) => this.target.api.inboxClear(request.up_to),
    'inbox-forget': (request) => this.target.api.inboxForget(request.consumer),
    trace: (request, { client, emit }) => {
      const { stop, ...started } = this.target.api.trace(request.peer, emit);
      client.unsubscribers.push(stop);
      return started;
    },
    'console-line': async (request, { client, emit }) => {
      // Output written while the line runs (a trace) goes out as events, before the result.
      const running = new AbortController();
      client.consoleLines.add(running);
      try {
        return await this.target.consoleLine(request.line, {
          write: (text) => emit({ output: text }),
          signal: running.signal,
        });
      } finally {
        client.consoleLines.delete(running);
      }
    },
    'console-cancel': (_request, { client }) => {
      const cancelled = client.consoleLines.size;
      for (const running of client.consoleLines) running.abort();
      return { cancelled };
    },
    'console-complete': (request) => this.target.consoleComplete(request.line),
  };
}

/** A received message as `listen` streams it: the payload as text and as base64. */
function toListenEvent(message: AppMessage): ListenEvent {
  const payload = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  return {
    from: message.from,
    from_name: message.fromName,
    payload: payload.toString('utf8'),
    payload_base64: payload.toString('base64'),
    received_at: new Date(message.receivedAtMs).toISOString(),
    ...(message.to !== undefined && { to: message.to }),
    hops: message.hops,
    ...(message.inboxId !== undefined && { inbox_id: message.inboxId }),
  };
}

function extractId(line: string): number {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && 'id' in value && Number.isInteger(value.id))
      return value.id as number;
  } catch {}
  return -1;
}

/** A socket file left by a crashed agent is removed; a live agent's is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  const isLive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (isLive) throw new ControlSocketError(`another agent is already running on control socket ${path}`);
  await rm(path, { force: true });
}
