// Streams (like MultipeerConnectivity's startStream or Nearby's STREAM payloads): a named, flow-controlled
// byte stream from this agent to a peer, over the reliable, ordered channel bulk transfer uses (PROTOCOL.md
// §16). The engine only; the agent wires it to its links, the control socket and the CLI.
//
// API
//
//   new StreamService(channel: TransferChannel, options?: StreamServiceOptions)
//     options: windowBytes (256 KiB: what one incoming stream buffers, its credit), highWaterMark (64 KiB:
//     an OutgoingStream's local buffer), maxStreamsPerPeer (16) and maxStreams (64) incoming streams open
//     at once, idleTimeoutMs (30 s; 0: never).
//   open(peer, name, { highWaterMark? }): Promise<OutgoingStream>
//     Sends OPEN; resolves on ACCEPT with a Writable (streamId, peer, name, bytesSent, credit). Rejects with
//     StreamNameError (name not acceptable, see streamNameProblem), StreamRefusedError (reason no-listener,
//     busy, refused, bad-name), StreamTimeoutError (waitingFor 'accept'), StreamLinkError, StreamResetError
//     or StreamClosedError. Never more bytes go out than the listener granted: write() returns false once
//     the credit is used up and highWaterMark bytes wait here, 'drain' follows the CREDIT that makes room.
//     end() sends END with the length ('finish' once the peer's link acknowledged it); destroy(err) sends
//     END aborted. It errors with StreamResetError (reason closed: the reader stopped reading, EPIPE;
//     protocol, shutdown), StreamTimeoutError (waitingFor 'activity', noticed here or by the peer),
//     StreamLinkError or
//     StreamClosedError.
//   listen(name, handler, { accept? }): () => void
//     Accepts OPENs for `name`: handler(stream: IncomingStream) gets a Readable (streamId, from, name,
//     bytesReceived) right after the ACCEPT went out; it buffers at most windowBytes, granting credit as it
//     is read; destroying it before its end sends END closed. It errors with StreamResetError (reason
//     aborted: the writer gave up; shutdown), StreamProtocolError, StreamTimeoutError (either side's),
//     StreamLinkError or StreamClosedError. A handler that throws (or rejects) destroys the stream.
//     accept({ from, name }) returning false refuses
//     (REFUSE refused): who may open. Throws StreamNameError for an unacceptable or already listened name.
//     The returned function stops listening (streams already open go on).
//   listenAny(handler, { accept? }): () => void
//     The same for every name nothing listens on specifically (one at a time; a second throws).
//   handle(from, payload): void
//     One stream payload (system DATA of kind 24..29) from a peer. Never throws; what is malformed or
//     hostile is dropped and counted in `counters` (decode-<reason>, unknown-stream, wrong-peer,
//     unexpected, duplicate-id, bad-offset, beyond-credit, bad-length, stale-credit, refused-<code>,
//     handler-error, closed, internal-error, send-failed) or resets the stream.
//   linkDown(peer): void
//     The peer cannot be reached any more: every stream with it fails with StreamLinkError.
//   close(): Promise<void>
//     Ends every stream (END shutdown to the peer, StreamClosedError here); later OPENs are dropped.
//   active: { incoming, outgoing }   streams open now (outgoing counts OPENs not answered yet).
//   events: 'opened' (StreamInfo: streamId, peer, name, direction 'in' | 'out') and 'closed' (StreamInfo
//     + bytes, error: Error | null) when the stream object closes.
//
// Streams are not resumable: when the link fails (a send rejects, or linkDown), the stream errors with a
// StreamLinkError and whatever was in flight is lost; the application opens a new one. Nothing moving
// either way (no DATA, no CREDIT, no acknowledged send) for idleTimeoutMs ends a stream on both sides
// with StreamTimeoutError and END timeout, so a producer that pauses longer, or a consumer that stops
// reading longer, needs a larger idleTimeoutMs (or 0). The service listens for 'error' on every stream it
// makes, so a peer resetting a stream never crashes the agent; applications listen too (or use
// stream.pipeline) to hear why a stream ended.
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { Counters } from '../../core/counters.js';
import { NearmeshError } from '../../core/errors.js';
import { TypedEmitter } from '../../core/events.js';
import { DecodeError } from '../../protocol/errors.js';
import {
  decodeStream,
  MAX_STREAM_DATA_BYTES,
  type RefuseCode,
  STREAM_DATA_OVERHEAD_BYTES,
  STREAM_ID_BYTES,
  type StreamMessage,
  type StreamOpenMessage,
  streamIdToHex,
  streamNameProblem,
} from '../../protocol/stream.js';
import type { SystemHandlers } from '../../protocol/system-kind.js';
import type { TransferChannel } from '../transfer/channel.js';
import { StreamEndpoint, type StreamHost, sendQuietly } from './endpoint.js';
import {
  peerEndError,
  StreamClosedError,
  StreamLinkError,
  StreamNameError,
  StreamRefusedError,
} from './errors.js';
import { IncomingStream } from './incoming.js';
import { OutgoingStream } from './outgoing.js';

export { IncomingStream } from './incoming.js';
export { OutgoingStream } from './outgoing.js';

export interface StreamServiceOptions {
  /** Bytes one incoming stream buffers at most, which is the credit it grants (default 256 KiB). */
  windowBytes?: number;
  /** An OutgoingStream's local buffer, beyond the credit, before write() returns false (default 64 KiB). */
  highWaterMark?: number;
  /** Incoming streams one peer may have open (default 16); more are refused busy. */
  maxStreamsPerPeer?: number;
  /** Incoming streams open in all (default 64); more are refused busy. */
  maxStreams?: number;
  /** A stream on which nothing moves this long ends with StreamTimeoutError (default 30 s; 0: never). */
  idleTimeoutMs?: number;
}

export interface StreamInfo {
  streamId: string;
  peer: string;
  name: string;
  /** out: opened here, its bytes go to the peer; in: opened by the peer. */
  direction: 'in' | 'out';
}

export interface StreamServiceEvents {
  opened: (info: StreamInfo) => void;
  /** The stream object closed: `bytes` sent (out) or received (in), `error` why it failed, if it did. */
  closed: (info: StreamInfo & { bytes: number; error: Error | null }) => void;
}

export type StreamHandler = (stream: IncomingStream) => void | Promise<void>;

export interface ListenOptions {
  /** Whether this OPEN may go ahead (false answers REFUSE refused); default: everyone may. */
  accept?: (request: { from: string; name: string }) => boolean;
}

interface Listener {
  handler: StreamHandler;
  accept: ListenOptions['accept'];
}

const KiB = 1024;
const DEFAULTS = {
  windowBytes: 256 * KiB,
  highWaterMark: 64 * KiB,
  maxStreamsPerPeer: 16,
  maxStreams: 64,
  idleTimeoutMs: 30_000,
};

/** The kinds a stream takes from its peer, by direction (OPEN is the service's). */
const RECEIVES: Record<StreamEndpoint['direction'], ReadonlySet<StreamMessage['kind']>> = {
  out: new Set(['accept', 'refuse', 'credit', 'end']),
  in: new Set(['data', 'end']),
};

export class StreamService extends TypedEmitter<StreamServiceEvents> {
  /** Dropped and refused messages by reason; see the list at the top of this file. */
  readonly counters = new Counters();
  readonly #host: StreamHost;
  readonly #options: Required<StreamServiceOptions>;
  readonly #maxData: number;
  readonly #streams = new Map<string, StreamEndpoint>();
  readonly #listeners = new Map<string, Listener>();
  #any: Listener | undefined;
  #closed = false;

  constructor(channel: TransferChannel, options: StreamServiceOptions = {}) {
    super();
    this.#options = { ...DEFAULTS, ...withoutUndefined(options) };
    for (const [key, value] of Object.entries(this.#options)) {
      const least = key === 'idleTimeoutMs' ? 0 : 1;
      if (!Number.isSafeInteger(value) || value < least) {
        throw new RangeError(`stream option ${key} is ${value}, not an integer of at least ${least}`);
      }
    }
    this.#maxData = Math.min(MAX_STREAM_DATA_BYTES, channel.maxPayloadBytes - STREAM_DATA_OVERHEAD_BYTES);
    if (!Number.isInteger(this.#maxData) || this.#maxData < 1) {
      throw new RangeError(`the channel's ${channel.maxPayloadBytes} bytes leave no room for stream data`);
    }
    this.#host = {
      channel,
      idleTimeoutMs: this.#options.idleTimeoutMs,
      counters: this.counters,
      release: (endpoint) => {
        if (this.#streams.get(endpoint.hex) === endpoint) this.#streams.delete(endpoint.hex);
      },
    };
  }

  /** Streams open now; outgoing ones include OPENs not answered yet. */
  get active(): { incoming: number; outgoing: number } {
    let incoming = 0;
    for (const endpoint of this.#streams.values()) if (endpoint.direction === 'in') incoming += 1;
    return { incoming, outgoing: this.#streams.size - incoming };
  }

  /** Opens a stream to `peer`'s listener for `name`; resolves once the peer accepted it. */
  open(peer: string, name: string, options: { highWaterMark?: number } = {}): Promise<OutgoingStream> {
    const problem = streamNameProblem(name);
    if (problem !== null) return Promise.reject(new StreamNameError(name, problem));
    const endpoint = new StreamEndpoint(
      new Uint8Array(randomBytes(STREAM_ID_BYTES)),
      peer,
      name,
      'out',
      this.#host,
    );
    if (this.#closed) return Promise.reject(new StreamClosedError(endpoint.hex));
    const highWaterMark = options.highWaterMark ?? this.#options.highWaterMark;
    return new Promise<OutgoingStream>((resolve, reject) => {
      const settle = (error: Error): void => {
        endpoint.release();
        reject(error);
      };
      endpoint.control = {
        waitingFor: 'accept',
        receive: (message) => {
          if (message.kind === 'accept') {
            const stream = new OutgoingStream(endpoint, message.credit, {
              maxDataBytes: this.#maxData,
              highWaterMark,
            });
            this.#track(stream, endpoint, () => stream.bytesSent);
            resolve(stream);
          } else if (message.kind === 'refuse') {
            settle(new StreamRefusedError(endpoint.hex, message.code, message.message));
          } else if (message.kind === 'end' && !message.outcome.ok) {
            const { code, message: detail } = message.outcome;
            settle(peerEndError(endpoint.hex, code, detail, endpoint.host.idleTimeoutMs));
          } else {
            this.counters.increment('unexpected');
          }
        },
        fail: (error, code) => {
          if (endpoint.released) return;
          if (code !== null) endpoint.reset(code, error.message);
          settle(error);
        },
      };
      this.#streams.set(endpoint.hex, endpoint);
      endpoint.touch();
      endpoint.send({ kind: 'open', streamId: endpoint.id, name });
    });
  }

  /** Accepts streams opened for `name`; returns the function that stops listening. */
  listen(name: string, handler: StreamHandler, options: ListenOptions = {}): () => void {
    const problem = streamNameProblem(name);
    if (problem !== null) throw new StreamNameError(name, problem);
    if (this.#listeners.has(name)) throw new StreamNameError(name, 'has a listener already');
    const listener: Listener = { handler, accept: options.accept };
    this.#listeners.set(name, listener);
    return () => {
      if (this.#listeners.get(name) === listener) this.#listeners.delete(name);
    };
  }

  /** Accepts streams for every name without a listener of its own; returns the function that stops it. */
  listenAny(handler: StreamHandler, options: ListenOptions = {}): () => void {
    if (this.#any !== undefined) {
      throw new NearmeshError('stream-listening', 'a listener for any stream name is registered already');
    }
    const listener: Listener = { handler, accept: options.accept };
    this.#any = listener;
    return () => {
      if (this.#any === listener) this.#any = undefined;
    };
  }

  /** Takes stream messages from the agent's system inbox. */
  registerWith(inbox: SystemHandlers): void {
    inbox.register('stream', (message) => this.handle(message.from, message.payload));
  }

  /** One stream payload from `from`. Never throws. */
  handle(from: string, payload: Uint8Array): void {
    const message = decodeStream(payload);
    if (message instanceof DecodeError) {
      this.counters.increment(`decode-${message.reason}`);
      return;
    }
    if (this.#closed) {
      this.counters.increment('closed');
      return;
    }
    try {
      if (message.kind === 'open') {
        this.#onOpen(from, message);
        return;
      }
      const endpoint = this.#streams.get(streamIdToHex(message.streamId));
      if (endpoint === undefined) {
        this.counters.increment('unknown-stream');
      } else if (endpoint.peer !== from) {
        this.counters.increment('wrong-peer');
      } else if (!RECEIVES[endpoint.direction].has(message.kind)) {
        this.counters.increment('unexpected');
      } else {
        endpoint.touch();
        endpoint.control?.receive(message);
      }
    } catch {
      this.counters.increment('internal-error');
    }
  }

  /** `peer` cannot be reached any more: its streams fail now rather than at their idle timeout. */
  linkDown(peer: string): void {
    for (const endpoint of [...this.#streams.values()]) {
      if (endpoint.peer === peer) endpoint.control?.fail(new StreamLinkError(endpoint.hex), null);
    }
  }

  /** Ends every stream (END shutdown) and takes no more. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const endpoint of [...this.#streams.values()]) {
      endpoint.control?.fail(new StreamClosedError(endpoint.hex), 'shutdown');
    }
  }

  #onOpen(from: string, open: StreamOpenMessage): void {
    const hex = streamIdToHex(open.streamId);
    if (this.#streams.has(hex)) {
      this.counters.increment('duplicate-id');
      return;
    }
    const listener = this.#admit(from, open.name);
    if (Array.isArray(listener)) {
      const [code, message] = listener;
      this.counters.increment(`refused-${code}`);
      sendQuietly(this.#host, from, { kind: 'refuse', streamId: open.streamId, code, message });
      return;
    }
    const endpoint = new StreamEndpoint(open.streamId, from, open.name, 'in', this.#host);
    const stream = new IncomingStream(endpoint, this.#options.windowBytes);
    this.#streams.set(hex, endpoint);
    endpoint.touch();
    endpoint.send({ kind: 'accept', streamId: open.streamId, credit: this.#options.windowBytes });
    this.#track(stream, endpoint, () => stream.bytesReceived);
    const failed = (error: unknown): void => {
      this.counters.increment('handler-error');
      stream.destroy(error instanceof Error ? error : new Error(String(error)));
    };
    try {
      const result = listener.handler(stream);
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  /** The listener an OPEN for `name` from `from` goes to, or why it is refused. */
  #admit(from: string, name: string): Listener | [RefuseCode, string] {
    const problem = streamNameProblem(name);
    if (problem !== null) return ['bad-name', `stream name ${problem}`];
    const listener = this.#listeners.get(name) ?? this.#any;
    if (listener === undefined) return ['no-listener', `nothing listens on ${JSON.stringify(name)}`];
    let fromPeer = 0;
    let incoming = 0;
    for (const endpoint of this.#streams.values()) {
      if (endpoint.direction !== 'in') continue;
      incoming += 1;
      if (endpoint.peer === from) fromPeer += 1;
    }
    if (fromPeer >= this.#options.maxStreamsPerPeer) {
      return ['busy', `${fromPeer} streams from this peer are open already`];
    }
    if (incoming >= this.#options.maxStreams) return ['busy', `${incoming} streams are open already`];
    if (listener.accept !== undefined && !accepts(listener.accept, from, name)) {
      return ['refused', 'refused by the application'];
    }
    return listener;
  }

  #track(stream: Readable | Writable, endpoint: StreamEndpoint, bytes: () => number): void {
    const info: StreamInfo = {
      streamId: endpoint.hex,
      peer: endpoint.peer,
      name: endpoint.name,
      direction: endpoint.direction,
    };
    // A peer's reset must never be an unhandled 'error' that stops the agent; the application's own
    // listeners still hear it.
    stream.on('error', () => {});
    stream.once('close', () => this.emit('closed', { ...info, bytes: bytes(), error: stream.errored }));
    this.emit('opened', info);
  }
}

function accepts(accept: NonNullable<ListenOptions['accept']>, from: string, name: string): boolean {
  try {
    return accept({ from, name }) === true;
  } catch {
    return false;
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
