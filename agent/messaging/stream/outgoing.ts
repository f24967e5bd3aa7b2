// The opener's side of a stream: a Node Writable whose bytes go out as DATA, never beyond the credit the
// listener granted. A write that does not fit the credit keeps its callback until CREDIT makes room, so
// the Writable's own buffer fills, write() returns false and 'drain' follows the CREDIT, as with a socket.
// end() sends END with the length once everything is out ('finish' when the peer's link acknowledged it);
// destroy() before that sends END aborted; an END from the listener (closed: it stopped reading) errors the
// stream with a StreamResetError.
import { Writable } from 'node:stream';
import type { StreamMessage } from '../../protocol/stream.js';
import { attachStream, type StreamEndpoint } from './endpoint.js';
import { peerEndError } from './errors.js';

interface PendingWrite {
  chunk: Buffer;
  /** How much of `chunk` has gone out. */
  at: number;
  callback: (error?: Error | null) => void;
}

export class OutgoingStream extends Writable {
  /** The stream's id as 32 hex digits. */
  readonly streamId: string;
  /** The peer the bytes go to. */
  readonly peer: string;
  readonly name: string;
  readonly #endpoint: StreamEndpoint;
  readonly #maxData: number;
  /** The bytes below this offset may be sent (the latest ACCEPT or CREDIT). */
  #creditUpTo: number;
  #sent = 0;
  #pending: PendingWrite | undefined;
  /** END went out: nothing more does. */
  #ended = false;

  /** Made by StreamService.open once the peer accepted; not for applications to construct. */
  constructor(
    endpoint: StreamEndpoint,
    credit: number,
    options: { maxDataBytes: number; highWaterMark: number },
  ) {
    super({ highWaterMark: options.highWaterMark, decodeStrings: true });
    this.#endpoint = endpoint;
    this.streamId = endpoint.hex;
    this.peer = endpoint.peer;
    this.name = endpoint.name;
    this.#maxData = options.maxDataBytes;
    this.#creditUpTo = credit;
    // A destroy by the application tells the peer it aborted.
    attachStream(endpoint, this, 'aborted', (message) => this.#receive(message));
  }

  /** Bytes handed to the channel as DATA. */
  get bytesSent(): number {
    return this.#sent;
  }

  /** Bytes the listener lets us send now (its credit not yet used). */
  get credit(): number {
    return Math.max(0, this.#creditUpTo - this.#sent);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = { chunk, at: 0, callback };
    this.#pump();
  }

  /** Small writes that queued up go out together, in as few DATA as the credit allows. */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.#pending = { chunk: Buffer.concat(chunks.map((entry) => entry.chunk)), at: 0, callback };
    this.#pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ended = true;
    const endpoint = this.#endpoint;
    endpoint.conclude();
    endpoint
      .transmit({ kind: 'end', streamId: endpoint.id, outcome: { ok: true, length: this.#sent } })
      .then(
        () => callback(),
        (error: Error) => callback(error),
      )
      .finally(() => endpoint.release());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#ended = true;
    this.#endpoint.close(error?.message ?? 'the sender destroyed the stream');
    const pending = this.#pending;
    this.#pending = undefined;
    if (error !== null) pending?.callback(error);
    callback(error);
  }

  /** Sends DATA while the credit lasts; the write's callback waits until all of it is out. */
  #pump(): void {
    const pending = this.#pending;
    if (pending === undefined || this.#ended) return;
    const endpoint = this.#endpoint;
    while (pending.at < pending.chunk.length) {
      const room = this.#creditUpTo - this.#sent;
      if (room <= 0) return;
      const length = Math.min(room, this.#maxData, pending.chunk.length - pending.at);
      const bytes = pending.chunk.subarray(pending.at, pending.at + length);
      endpoint.send({ kind: 'data', streamId: endpoint.id, offset: this.#sent, bytes });
      this.#sent += length;
      pending.at += length;
    }
    this.#pending = undefined;
    pending.callback();
  }

  #receive(message: StreamMessage): void {
    const counters = this.#endpoint.host.counters;
    if (message.kind === 'credit') {
      // Credit is cumulative: a smaller upTo than before says nothing new.
      if (message.upTo < this.#creditUpTo) {
        counters.increment('stale-credit');
        return;
      }
      this.#creditUpTo = message.upTo;
      this.#pump();
      return;
    }
    if (message.kind === 'end' && !message.outcome.ok) {
      const { code, message: detail } = message.outcome;
      const error = peerEndError(this.streamId, code, detail, this.#endpoint.host.idleTimeoutMs);
      this.#endpoint.control?.fail(error, null);
      return;
    }
    counters.increment('unexpected');
  }
}
