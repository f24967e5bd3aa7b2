// The client side of the control socket, used by every CLI command that talks to a running agent.
import { connect, type Socket } from 'node:net';
import { NearmeshError } from '../core/errors.js';
import { LineReader } from '../core/line-reader.js';
import { MAX_CONTROL_LINE_BYTES } from './limits.js';
import type {
  ControlCommand,
  ControlErrorBody,
  ControlEvents,
  ControlResults,
  RequestOf,
  StreamingCommand,
} from './wire.js';

/** The agent answered with an error (its code and message are kept). */
export class ControlCommandError extends NearmeshError {
  constructor(body: ControlErrorBody) {
    super(body.code, body.message);
  }
}

export class AgentNotRunningError extends NearmeshError {
  constructor(socketPath: string, cause: unknown) {
    super('agent-not-running', `no agent is listening on ${socketPath} (${(cause as Error).message})`, {
      cause,
    });
  }
}

/** A request for command `C` without its id (the client numbers them). */
export type RequestBody<C extends ControlCommand> = C extends ControlCommand
  ? Omit<RequestOf<C>, 'id'>
  : never;

/**
 * The agent is the same version as this client (one package), so its answers have the shapes of
 * ControlResults and ControlEvents; the CLI prints them, it does not act on them.
 */
export class ControlClient {
  #nextId = 1;
  readonly #waiting = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  readonly #streams = new Map<number, (event: unknown) => Promise<void> | void>();
  #closeListeners: Array<(error: Error) => void> = [];
  /** Why the connection ended, once it has: a request after that fails at once instead of waiting forever. */
  #failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    const reader = new LineReader(MAX_CONTROL_LINE_BYTES);
    socket.on('data', (chunk) => {
      const lines = reader.push(chunk);
      if (lines === 'too-long')
        return this.#fail(new NearmeshError('protocol', 'agent sent an overlong line'));
      for (const line of lines) this.#receive(line);
    });
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () =>
      this.#fail(new NearmeshError('agent-gone', 'the agent closed the control socket')),
    );
  }

  static connect(socketPath: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      socket.once('connect', () => resolve(new ControlClient(socket)));
      socket.once('error', (error) => reject(new AgentNotRunningError(socketPath, error)));
    });
  }

  request<C extends ControlCommand>(body: RequestBody<C> & { cmd: C }): Promise<ControlResults[C]> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#failure !== undefined) {
        reject(this.#failure);
        return;
      }
      this.#waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ ...body, id })}\n`);
    });
  }

  /**
   * Starts a stream command; `onEvent` gets each event until the connection closes. When it returns a
   * promise (its output is full), no more is read from the agent until that settles, so the agent's
   * socket fills and it stops taking data for us: the backpressure reaches the sender. A rejection ends
   * the connection with that error.
   */
  async stream<C extends StreamingCommand>(
    body: RequestBody<C> & { cmd: C },
    onEvent: (event: ControlEvents[C]) => Promise<void> | void,
  ): Promise<ControlResults[C]> {
    const id = this.#nextId;
    this.#streams.set(id, onEvent as (event: unknown) => Promise<void> | void);
    return this.request<C>(body);
  }

  /** A request whose events (output while it runs) reach `onEvent` until its result arrives. */
  async requestWithEvents<C extends StreamingCommand>(
    body: RequestBody<C> & { cmd: C },
    onEvent: (event: ControlEvents[C]) => void,
  ): Promise<ControlResults[C]> {
    const id = this.#nextId;
    this.#streams.set(id, onEvent as (event: unknown) => void);
    try {
      return await this.request<C>(body);
    } finally {
      this.#streams.delete(id);
    }
  }

  onClose(listener: (error: Error) => void): void {
    this.#closeListeners.push(listener);
  }

  close(): void {
    this.socket.end();
  }

  #receive(line: string): void {
    let message: { id?: unknown; ok?: unknown; result?: unknown; error?: ControlErrorBody; event?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      this.#fail(new NearmeshError('protocol', 'agent sent a line that is not JSON'));
      return;
    }
    if (typeof message.id !== 'number') return;
    if ('event' in message) {
      const busy = this.#streams.get(message.id)?.(message.event);
      if (busy instanceof Promise) this.#waitFor(busy);
      return;
    }
    const waiter = this.#waiting.get(message.id);
    if (waiter === undefined) return;
    this.#waiting.delete(message.id);
    if (message.ok === true) waiter.resolve(message.result);
    else
      waiter.reject(new ControlCommandError(message.error ?? { code: 'internal', message: 'unknown error' }));
  }

  #waitFor(busy: Promise<void>): void {
    this.socket.pause();
    busy.then(
      () => this.socket.resume(),
      (error: unknown) => {
        this.#fail(error instanceof Error ? error : new Error(String(error)));
        this.socket.destroy();
      },
    );
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const listener of listeners) listener(error);
  }
}
