// Streams as the control socket offers them (`nearmesh stream`): a client opens a stream to a peer and
// writes to it chunk by chunk, each write answered once the stream took it (so the client's pace follows the
// peer's credit), or receives the streams opened to a name as events, paused while the client's socket is
// full. Streams die with the client that holds them.
import { NearmeshError } from '../../core/errors.js';
import type { IncomingStream, OutgoingStream, StreamService } from './service.js';

/** What a receiving client hears, per stream: open, data (base64), then end or error. */
export type StreamEvent =
  | { type: 'open'; stream_id: string; from: string; from_name: string; name: string }
  | { type: 'data'; stream_id: string; data: string }
  | { type: 'end'; stream_id: string; bytes: number }
  | { type: 'error'; stream_id: string; code: string; message: string };

/** Where a receiver's events go: `event` is false while the client's socket is full; `onDrain` says when not. */
export interface StreamSink {
  event(event: StreamEvent): boolean;
  onDrain(callback: () => void): void;
}

interface Held {
  stream: OutgoingStream;
  failure: Error | undefined;
}

export class StreamSessions {
  readonly #held = new Map<number, Held>();
  #next = 1;

  constructor(
    private readonly service: StreamService,
    private readonly nameOf: (peer: string) => string,
  ) {}

  /** Opens a stream to `peer`; `stop` destroys it (the client went away). */
  async open(
    peer: string,
    name: string,
  ): Promise<{ result: { stream: number; stream_id: string }; stop: () => void }> {
    const stream = await this.service.open(peer, name);
    const handle = this.#next++;
    const held: Held = { stream, failure: undefined };
    stream.on('error', (error) => {
      held.failure = error;
    });
    this.#held.set(handle, held);
    const stop = (): void => {
      if (!this.#held.delete(handle)) return;
      if (!stream.writableFinished)
        stream.destroy(new NearmeshError('stream-client-gone', 'the client went away'));
    };
    return { result: { stream: handle, stream_id: stream.streamId }, stop };
  }

  /** Writes bytes; resolves once the stream took them (within the peer's credit and the local buffer). */
  write(handle: number, bytes: Uint8Array): Promise<{ bytes_sent: number }> {
    const held = this.#get(handle);
    return new Promise((resolve, reject) => {
      // Why the stream ended (the peer reset it) says more than Node's "write after destroyed".
      if (held.failure) return reject(held.failure);
      held.stream.write(bytes, (error) => {
        const failure = held.failure ?? error;
        if (failure) reject(failure);
        else resolve({ bytes_sent: held.stream.bytesSent });
      });
    });
  }

  /** Ends the stream; resolves once the peer's link took the END. */
  end(handle: number): Promise<{ bytes: number }> {
    const held = this.#get(handle);
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        this.#held.delete(handle);
        reject(error);
      };
      held.stream.once('error', onError);
      held.stream.end(() => {
        held.stream.off('error', onError);
        this.#held.delete(handle);
        if (held.failure) reject(held.failure);
        else resolve({ bytes: held.stream.bytesSent });
      });
    });
  }

  /** Streams opened to `name` reach `sink` until the returned function stops listening (and ends them). */
  receive(name: string, sink: StreamSink): () => void {
    const open = new Set<IncomingStream>();
    const unlisten = this.service.listen(name, (incoming) => {
      open.add(incoming);
      const stream_id = incoming.streamId;
      sink.event({
        type: 'open',
        stream_id,
        from: incoming.from,
        from_name: this.nameOf(incoming.from),
        name,
      });
      incoming.on('data', (chunk: Buffer) => {
        if (sink.event({ type: 'data', stream_id, data: chunk.toString('base64') })) return;
        // The client reads slower than the peer sends: stop taking bytes, so credit stops too.
        incoming.pause();
        sink.onDrain(() => incoming.resume());
      });
      incoming.on('end', () => sink.event({ type: 'end', stream_id, bytes: incoming.bytesReceived }));
      incoming.on('error', (error: Error) => {
        const code = error instanceof NearmeshError ? error.code : 'stream-error';
        sink.event({ type: 'error', stream_id, code, message: error.message });
      });
      incoming.on('close', () => open.delete(incoming));
    });
    return () => {
      unlisten();
      for (const incoming of open) incoming.destroy();
    };
  }

  #get(handle: number): Held {
    const held = this.#held.get(handle);
    if (held === undefined)
      throw new NearmeshError('unknown-stream', `no open stream ${handle} on this agent`);
    return held;
  }
}
