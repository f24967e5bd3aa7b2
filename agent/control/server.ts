// The agent's control socket: a UNIX socket (mode 0600) speaking JSON lines. Each client is handled
// on its own; a malformed request gets an error reply on that client only.
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ConsoleIo } from '../console/commands.js';
import { NearmeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { StreamSink } from '../messaging/stream/sessions.js';
import { LineReader } from './line-reader.js';
import {
  type ConsoleCompleteResult,
  type ConsoleLineResult,
  type ControlRequest,
  type ControlResponse,
  type ListenEvent,
  MAX_CONTROL_LINE_BYTES,
  requestSchema,
  type TraceEvent,
  type TraceStarted,
} from './wire.js';

export class ControlSocketError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('control-socket', message, options);
  }
}

/** What the control socket can ask of the agent. */
export interface ControlHandlers {
  id(): unknown;
  status(): unknown;
  peers(): unknown;
  /** Reliable: queued durably, in order; with `wait`, answered once the peer confirmed the last of them. */
  send(
    peer: string,
    payloads: Uint8Array[],
    options: { wait: boolean; timeoutMs?: number },
  ): Promise<unknown>;
  /** Unreliable mode: one attempt now; says whether a link took it. */
  sendUnreliable(peer: string, payload: Uint8Array): unknown;
  /** To a group's members, or to everyone (group undefined): best effort. */
  multicast(group: string | undefined, payload: Uint8Array): unknown;
  routes(): unknown;
  /** Revokes an identity across the mesh (admins only). */
  revoke(peer: string, reason: string): unknown;
  /** The mesh key in use now and its epoch (a secret: the socket is 0600), to give a new device. */
  meshKey(): unknown;
  /** Rotates the mesh key; the old one stays accepted for `overlapMs` (default: the config's) (admins only). */
  rekey(overlapMs: number | undefined): Promise<unknown>;
  /** Streams (`nearmesh stream`): open one to a peer, write to it, end it; receive those opened to a name. */
  streamOpen(peer: string, name: string): Promise<{ result: unknown; stop: () => void }>;
  streamWrite(stream: number, bytes: Uint8Array): Promise<unknown>;
  streamEnd(stream: number): Promise<unknown>;
  streamReceive(name: string, sink: StreamSink): () => void;
  /** Starts a bulk transfer; `listener` gets its progress, waits and outcome until `stop`. */
  push(
    request: Extract<ControlRequest, { cmd: 'push' }>,
    listener: (event: unknown) => void,
  ): Promise<{ result: unknown; stop: () => void }>;
  call(request: Extract<ControlRequest, { cmd: 'call' }>): Promise<unknown>;
  actions(): unknown;
  sensors(): unknown;
  read(peer: string, sensor: string): Promise<unknown>;
  /** A lease on a peer's action; `hold` keeps it until the returned stop function is called. */
  lease(request: Extract<ControlRequest, { cmd: 'lease' }>): Promise<{ result: unknown; stop?: () => void }>;
  /** Streams a sensor's readings to `listener` until the returned function is called. */
  watch(peer: string, sensor: string, intervalMs: number, listener: (event: unknown) => void): () => void;
  /** Calls `listener` for every received message until the returned function is called. */
  subscribe(listener: (event: ListenEvent) => void): () => void;
  /**
   * Calls `listener` for every frame on the direct link to `peer` until `stop` is called; throws when
   * there is no such link.
   */
  trace(peer: string, listener: (event: TraceEvent) => void): TraceStarted & { stop: () => void };
  /** Runs one console line; errors come back as its text. `io` streams output and stops it (trace). */
  /** `io` carries the line's live output (sent as events before its result) and its cancellation. */
  consoleLine(line: string, io?: ConsoleIo): Promise<ConsoleLineResult>;
  consoleComplete(line: string): ConsoleCompleteResult | Promise<ConsoleCompleteResult>;
}

/** What one client has running: stream subscriptions and console lines it may cancel. */
interface ClientState {
  readonly socket: Socket;
  readonly unsubscribers: Array<() => void>;
  readonly consoleLines: Set<AbortController>;
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
    private readonly handlers: ControlHandlers,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await removeStaleSocket(this.socketPath);
    const server = createServer((socket) => this.#serve(socket));
    // The socket must never exist with looser permissions, not even for a moment.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
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

  async #dispatch(
    request: ControlRequest,
    reply: (response: ControlResponse) => void,
    client: ClientState,
  ): Promise<unknown> {
    switch (request.cmd) {
      case 'id':
        return this.handlers.id();
      case 'status':
        return this.handlers.status();
      case 'peers':
        return this.handlers.peers();
      case 'send': {
        const payloads = (Array.isArray(request.payload) ? request.payload : [request.payload]).map((text) =>
          Buffer.from(text, 'base64'),
        );
        if (request.unreliable === true) {
          if (payloads.length !== 1)
            throw new NearmeshError('bad-request', 'an unreliable send takes one payload');
          return this.handlers.sendUnreliable(request.peer, payloads[0] as Uint8Array);
        }
        return this.handlers.send(request.peer, payloads, {
          wait: request.wait !== false,
          ...(request.timeout_ms !== undefined && { timeoutMs: request.timeout_ms }),
        });
      }
      case 'multicast':
        return this.handlers.multicast(request.group, Buffer.from(request.payload, 'base64'));
      case 'routes':
        return this.handlers.routes();
      case 'revoke':
        return this.handlers.revoke(request.peer, request.reason ?? '');
      case 'rekey':
        return this.handlers.rekey(request.overlap_ms);
      case 'mesh-key':
        return this.handlers.meshKey();
      case 'call':
        return this.handlers.call(request);
      case 'actions':
        return this.handlers.actions();
      case 'sensors':
        return this.handlers.sensors();
      case 'read':
        return this.handlers.read(request.peer, request.sensor);
      case 'lease': {
        const { result, stop } = await this.handlers.lease(request);
        if (stop !== undefined) client.unsubscribers.push(stop);
        return result;
      }
      case 'watch':
        client.unsubscribers.push(
          this.handlers.watch(request.peer, request.sensor, request.interval_ms, (event) =>
            reply({ id: request.id, event }),
          ),
        );
        return { watching: true };
      case 'push': {
        const { result, stop } = await this.handlers.push(request, (event) =>
          reply({ id: request.id, event }),
        );
        client.unsubscribers.push(stop);
        return result;
      }
      case 'stream-open': {
        const { result, stop } = await this.handlers.streamOpen(request.peer, request.name);
        client.unsubscribers.push(stop);
        return result;
      }
      case 'stream-write':
        return this.handlers.streamWrite(request.stream, Buffer.from(request.data, 'base64'));
      case 'stream-end':
        return this.handlers.streamEnd(request.stream);
      case 'stream-receive': {
        const { socket } = client;
        client.unsubscribers.push(
          this.handlers.streamReceive(request.name, {
            event: (event) => {
              reply({ id: request.id, event });
              return !socket.writableNeedDrain;
            },
            onDrain: (callback) => socket.once('drain', callback),
          }),
        );
        return { receiving: request.name };
      }
      case 'listen':
        client.unsubscribers.push(this.handlers.subscribe((event) => reply({ id: request.id, event })));
        return { listening: true };
      case 'trace': {
        const { stop, ...started } = this.handlers.trace(request.peer, (event) =>
          reply({ id: request.id, event }),
        );
        client.unsubscribers.push(stop);
        return started;
      }
      case 'console-line': {
        // Output written while the line runs (a trace) goes out as events, before the result.
        const running = new AbortController();
        client.consoleLines.add(running);
        try {
          return await this.handlers.consoleLine(request.line, {
            write: (text) => reply({ id: request.id, event: { output: text } }),
            signal: running.signal,
          });
        } finally {
          client.consoleLines.delete(running);
        }
      }
      case 'console-cancel': {
        const cancelled = client.consoleLines.size;
        for (const running of client.consoleLines) running.abort();
        return { cancelled };
      }
      case 'console-complete':
        return this.handlers.consoleComplete(request.line);
    }
  }
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
