// The listener's side of a stream: a Node Readable fed by the opener's DATA. Its buffer is bounded by the
// window: credit is granted only as the consumer takes bytes out, so what is buffered here plus what the
// opener may still send never exceeds `window` bytes, however slow the consumer. A consumer that destroys
// the stream before its end sends END closed, so the opener's Writable errors (EPIPE); an END aborted from
// the opener errors this one with a StreamResetError; data beyond the credit, a gap or a wrong length at
// the end is a StreamProtocolError here and an END protocol there.
import { Readable } from 'node:stream';
import type { StreamMessage } from '../../protocol/stream.js';
import { attachStream, type StreamEndpoint } from './endpoint.js';
import { peerEndError, StreamProtocolError } from './errors.js';

export class IncomingStream extends Readable {
  /** The stream's id as 32 hex digits. */
  readonly streamId: string;
  /** The peer that opened the stream and sends its bytes. */
  readonly from: string;
  readonly name: string;
  readonly #endpoint: StreamEndpoint;
  readonly #window: number;
  /** Credit is granted in steps of at least this much (no CREDIT for every few bytes read). */
  readonly #step: number;
  #received = 0;
  /** The opener may send the bytes below this offset. */
  #granted: number;
  /** END arrived (or the stream is destroyed): no more credit. */
  #ended = false;

  /** Made by StreamService when it accepts an OPEN (ACCEPT grants `window`); not for applications. */
  constructor(endpoint: StreamEndpoint, window: number) {
    super({ highWaterMark: window });
    this.#endpoint = endpoint;
    this.streamId = endpoint.hex;
    this.from = endpoint.peer;
    this.name = endpoint.name;
    this.#window = window;
    this.#step = Math.max(1, Math.floor(window / 4));
    this.#granted = window;
    // A destroy by the application tells the peer the reader closed the stream.
    attachStream(endpoint, this, 'closed', (message) => this.#receive(message));
  }

  /** Bytes the opener has sent so far (delivered to this stream, read or not). */
  get bytesReceived(): number {
    return this.#received;
  }

  override _read(): void {
    // Bytes are pushed as they arrive; credit follows consumption in read() below.
  }

  /**
   * Node calls _read only once until the next push, so a consumer draining the buffer while the opener
   * waits for credit would never be seen there. Every way of consuming (read(), 'data' in flowing mode,
   * pipe, async iteration) goes through read(), so credit is granted after it.
   */
  // biome-ignore lint/suspicious/noExplicitAny: Readable.read returns any
  override read(size?: number): any {
    const chunk = super.read(size);
    this.#grant();
    return chunk;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#ended = true;
    this.#endpoint.close(error?.message ?? 'the reader closed the stream');
    callback(error);
  }

  /** Grants what the consumer freed: buffered + still allowed stays at most the window. */
  #grant(): void {
    if (this.#ended || this.destroyed) return;
    const upTo = this.#received - this.readableLength + this.#window;
    if (upTo - this.#granted < this.#step) return;
    this.#granted = upTo;
    this.#endpoint.send({ kind: 'credit', streamId: this.#endpoint.id, upTo });
  }

  #receive(message: StreamMessage): void {
    const counters = this.#endpoint.host.counters;
    switch (message.kind) {
      case 'data': {
        const end = message.offset + message.bytes.length;
        if (message.offset !== this.#received) {
          counters.increment('bad-offset');
          this.#violation(`DATA at offset ${message.offset}, expected ${this.#received}`);
          return;
        }
        if (end > this.#granted) {
          counters.increment('beyond-credit');
          this.#violation(`DATA up to ${end} beyond the credit up to ${this.#granted}`);
          return;
        }
        this.#received = end;
        const { bytes } = message;
        this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        return;
      }
      case 'end': {
        const { outcome } = message;
        if (!outcome.ok) {
          this.#endpoint.control?.fail(
            peerEndError(this.streamId, outcome.code, outcome.message, this.#endpoint.host.idleTimeoutMs),
            null,
          );
          return;
        }
        if (outcome.length !== this.#received) {
          counters.increment('bad-length');
          this.#violation(`END says ${outcome.length} bytes, ${this.#received} arrived`);
          return;
        }
        this.#ended = true;
        this.#endpoint.conclude();
        this.#endpoint.release();
        this.push(null);
        return;
      }
      default:
        counters.increment('unexpected');
    }
  }

  #violation(detail: string): void {
    this.#endpoint.control?.fail(new StreamProtocolError(this.streamId, detail), 'protocol');
  }
}
