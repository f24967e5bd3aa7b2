// The Wi-Fi/LAN medium: a TCP listener for inbound links and a dialer for outbound ones.
// Every socket becomes a TcpLink (tcp-link.ts); discovery of whom to dial lives in the resolvers.
import { connect, createServer, type NetConnectOpts, type Server, type Socket } from 'node:net';
import { TimeoutError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { checkHostPort, formatHostPort, type HostPort } from '../../agent/core/host-port.js';
import { DialError, type DialFailure, ListenError } from '../errors.js';
import type { DialOptions, FrameLink, Medium, Transport, TransportEvents } from '../transport.js';
import { checkMaxFrameBytes, DEFAULT_MAX_FRAME_BYTES } from './framing.js';
import { TcpLink } from './tcp-link.js';

/**
 * Bytes a socket buffers before write() asks the caller to wait. Node's 16 KiB default signals
 * back-pressure on every bulk frame, so the sender stalls for a drain per message and the pipe runs
 * half empty; 256 KiB keeps a few frames in flight while staying small on a Pi.
 */
const SOCKET_HIGH_WATER_MARK_BYTES = 256 * 1024;

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface TcpTransportOptions {
  /** Where to accept links; false for a dial-only transport. Port 0 picks a free port (see address()). */
  listen: HostPort | false;
  /** Largest frame either way; default 1 MiB. Both ends should agree. */
  maxFrameBytes?: number;
  /** Default dial timeout when dial() is given none; default 10 s. */
  connectTimeoutMs?: number;
  /** How long a closing link may flush before its socket is destroyed; default 1 s. */
  closeGraceMs?: number;
}

export class TcpTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly medium: Medium = 'wifi';
  readonly maxFrameBytes: number;
  readonly #listen: HostPort | false;
  readonly #connectTimeoutMs: number;
  readonly #closeGraceMs: number | undefined;
  readonly #links = new Set<TcpLink>();
  /** Cancels every dial in flight; stop() calls them. */
  readonly #dialCancels = new Set<() => void>();
  #server: Server | undefined;
  /** Settles once every socket the closed listener accepted is gone (server.close calls back then). */
  #serverClosed: Promise<void> = Promise.resolve();
  #starting: Promise<void> | undefined;
  #isAccepting = false;
  #isStopped = false;

  constructor(options: TcpTransportOptions) {
    super();
    this.#listen = options.listen;
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#closeGraceMs = options.closeGraceMs;
  }

  /** The bound listen address (the real port when 0 was asked for), or undefined when not listening. */
  address(): HostPort | undefined {
    const bound = this.#server?.address();
    if (bound === null || bound === undefined || typeof bound === 'string') return undefined;
    return { host: bound.address, port: bound.port };
  }

  /** Starts listening (when configured); resolves once bound, rejects with ListenError otherwise. */
  start(): Promise<void> {
    this.#isStopped = false;
    this.#isAccepting = true;
    if (this.#listen === false || this.#server !== undefined) return Promise.resolve();
    this.#starting ??= this.#startListening(this.#listen).finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Closes the listener: a connection attempt from now on is refused by the kernel (ECONNREFUSED). */
  async stopAccepting(): Promise<void> {
    this.#isAccepting = false;
    await this.#starting?.catch(() => undefined);
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    // The listening socket is closed at once; the callback waits for the accepted ones, which stop() closes.
    this.#serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops accepting, cancels dials in flight and closes every link this transport made. */
  async stop(): Promise<void> {
    this.#isStopped = true;
    await this.stopAccepting();
    for (const cancel of [...this.#dialCancels]) cancel();
    const areLinksClosed = [...this.#links].map(
      (link) =>
        new Promise<void>((resolve) => {
          link.once('close', () => resolve());
          link.close();
        }),
    );
    await Promise.all([this.#serverClosed, ...areLinksClosed]);
  }

  dial(address: string, options: DialOptions = {}): Promise<FrameLink> {
    const parsed = checkHostPort(address);
    if (!parsed.ok) return Promise.reject(new DialError(address, 'invalid-address', parsed.expected));
    const target = parsed.value;
    if (this.#isStopped) return Promise.reject(new DialError(address, 'stopped', 'the transport is stopped'));
    const { signal } = options;
    if (signal?.aborted) {
      return Promise.reject(new DialError(address, 'aborted', 'aborted', { cause: signal.reason }));
    }
    const timeoutMs = options.timeoutMs ?? this.#connectTimeoutMs;

    return new Promise<FrameLink>((resolve, reject) => {
      // Node honours highWaterMark here (it reaches the Duplex constructor); @types/node 20 omits it.
      const options: NetConnectOpts & { highWaterMark: number } = {
        host: target.host,
        port: target.port,
        highWaterMark: SOCKET_HIGH_WATER_MARK_BYTES,
      };
      const socket = connect(options);
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#dialCancels.delete(cancel);
        socket.off('error', onError);
        socket.off('connect', onConnect);
      };
      const fail = (error: DialError): void => {
        settle();
        // A late error from the abandoned socket must not become an unhandled 'error' event.
        socket.on('error', () => undefined);
        socket.destroy();
        reject(error);
      };
      const onError = (error: NodeJS.ErrnoException): void =>
        fail(new DialError(address, failureOf(error), error.code ?? error.message, { cause: error }));
      const onAbort = (): void =>
        fail(new DialError(address, 'aborted', 'aborted', { cause: signal?.reason }));
      const cancel = (): void => fail(new DialError(address, 'stopped', 'the transport stopped'));
      const onConnect = (): void => {
        settle();
        resolve(this.#adopt(socket, true));
      };
      const timer = setTimeout(
        () =>
          fail(
            new DialError(address, 'timeout', `no connection after ${timeoutMs} ms`, {
              cause: new TimeoutError('dial', timeoutMs),
            }),
          ),
        timeoutMs,
      );
      socket.once('error', onError);
      socket.once('connect', onConnect);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#dialCancels.add(cancel);
    });
  }

  async #startListening(listen: HostPort): Promise<void> {
    const server = createServer({ highWaterMark: SOCKET_HIGH_WATER_MARK_BYTES }, (socket) =>
      this.#onConnection(socket),
    );
    const where = formatHostPort(listen);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        reject(new ListenError(where, describeListenError(error), { cause: error }));
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: listen.host, port: listen.port });
    });
    // After binding, errors (EMFILE on accept...) are survivable: report and keep listening.
    server.on('error', (error) => this.emit('warning', error));
    if (!this.#isAccepting) {
      // stopAccepting() ran while we were binding: do not leave a listener behind it.
      server.close();
      return;
    }
    this.#server = server;
  }

  #onConnection(socket: Socket): void {
    if (!this.#isAccepting || this.#server === undefined) {
      socket.destroy();
      return;
    }
    this.emit('link', this.#adopt(socket, false));
  }

  #adopt(socket: Socket, isInitiator: boolean): TcpLink {
    const link = new TcpLink(socket, {
      isInitiator,
      maxFrameBytes: this.maxFrameBytes,
      ...(this.#closeGraceMs !== undefined && { closeGraceMs: this.#closeGraceMs }),
    });
    this.#links.add(link);
    link.once('close', () => this.#links.delete(link));
    return link;
  }
}

function failureOf(error: NodeJS.ErrnoException): DialFailure {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      // ENOTFOUND, EHOSTUNREACH, ENETUNREACH, ECONNRESET during connect...
      return 'unreachable';
  }
}

function describeListenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'the address is already in use (EADDRINUSE)';
    case 'EADDRNOTAVAIL':
      return 'no local interface has this address (EADDRNOTAVAIL)';
    case 'EACCES':
      return 'permission denied (EACCES)';
    default:
      return error.code ?? error.message;
  }
}
