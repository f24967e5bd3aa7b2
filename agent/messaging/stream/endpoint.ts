// One stream as its service sees it: the peer it is with, the way out over the channel, and the idle timer.
// A pending open, an OutgoingStream and an IncomingStream each own one and install their `control` in it,
// through which the service hands them the peer's messages and ends them.
import type { Readable, Writable } from 'node:stream';
import type { Counters } from '../../core/counters.js';
import { type EndCode, encodeStream, type StreamMessage, streamIdToHex } from '../../protocol/stream.js';
import type { TransferChannel } from '../transfer/channel.js';
import { StreamLinkError, StreamTimeoutError } from './errors.js';

/** What the streams share with their service. */
export interface StreamHost {
  readonly channel: TransferChannel;
  /** How long a stream may carry nothing either way (or an OPEN wait for its answer); 0: for ever. */
  readonly idleTimeoutMs: number;
  readonly counters: Counters;
  /** The stream is over: forget it. */
  release(endpoint: StreamEndpoint): void;
}

export interface StreamControl {
  /** What a silent peer has not sent: the answer to the OPEN, or any traffic on an open stream. */
  readonly waitingFor: 'accept' | 'activity';
  /** A message from the peer for this stream, of a kind its direction takes. */
  receive(message: StreamMessage): void;
  /** Ends the stream with `error`, first telling the peer END `code` unless it is null. Idempotent. */
  fail(error: Error, code: EndCode | null): void;
}

export class StreamEndpoint {
  readonly hex: string;
  control: StreamControl | undefined;
  /** What closing the stream tells the peer (END false with this code), unless it is null or concluded. */
  resetCode: EndCode | null = null;
  #timer: NodeJS.Timeout | undefined;
  #released = false;
  #concluded = false;

  constructor(
    readonly id: Uint8Array,
    readonly peer: string,
    readonly name: string,
    /** out: we opened it and send the bytes; in: the peer did. */
    readonly direction: 'in' | 'out',
    readonly host: StreamHost,
  ) {
    this.hex = streamIdToHex(id);
  }

  get released(): boolean {
    return this.#released;
  }

  /** Sends; a failure ends the stream with a StreamLinkError (and an END aborted, should it get through). */
  send(message: StreamMessage): void {
    this.transmit(message).catch((error: StreamLinkError) => this.control?.fail(error, 'aborted'));
  }

  /** Sends; resolves once the peer's link acknowledged it (which counts as activity). */
  transmit(message: StreamMessage): Promise<void> {
    return this.host.channel.send(this.peer, encodeStream(message)).then(
      () => this.touch(),
      (cause: unknown) => {
        throw new StreamLinkError(this.hex, { cause });
      },
    );
  }

  /** Tells the peer the stream is reset, whatever becomes of the message. */
  reset(code: EndCode, message: string): void {
    sendQuietly(this.host, this.peer, {
      kind: 'end',
      streamId: this.id,
      outcome: { ok: false, code, message },
    });
  }

  /** Something moved: the idle timer starts again. */
  touch(): void {
    if (this.#released) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const timeoutMs = this.host.idleTimeoutMs;
    if (timeoutMs <= 0) return;
    this.#timer = setTimeout(() => {
      const control = this.control;
      control?.fail(new StreamTimeoutError(this.hex, control.waitingFor, timeoutMs), 'timeout');
    }, timeoutMs);
    this.#timer.unref();
  }

  /** The stream is over for the protocol (its END went or came): closing it tells the peer nothing. */
  conclude(): void {
    this.#concluded = true;
  }

  /** The stream object is gone: tells the peer `resetCode` unless the stream concluded, then releases. */
  close(message: string): void {
    if (!this.#concluded && this.resetCode !== null) this.reset(this.resetCode, message);
    this.#concluded = true;
    this.release();
  }

  /** The stream is over for the protocol: no timer, and the service forgets it. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.host.release(this);
  }
}

/** Sends a message no stream waits for (REFUSE, a reset); a failure is only counted. */
export function sendQuietly(host: StreamHost, peer: string, message: StreamMessage): void {
  host.channel.send(peer, encodeStream(message)).catch(() => host.counters.increment('send-failed'));
}

/**
 * Makes `stream` the endpoint's: the peer's messages go to `receive`, and the service ends it by destroying
 * it with the error, after which its _destroy calls `endpoint.close` (telling the peer the code given, or
 * `resetCode` when the application destroyed it).
 */
export function attachStream(
  endpoint: StreamEndpoint,
  stream: Readable | Writable,
  resetCode: EndCode,
  receive: (message: StreamMessage) => void,
): void {
  endpoint.resetCode = resetCode;
  endpoint.control = {
    waitingFor: 'activity',
    receive,
    fail: (error, code) => {
      if (stream.destroyed) return;
      endpoint.resetCode = code;
      stream.destroy(error);
    },
  };
}
