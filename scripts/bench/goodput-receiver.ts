// Worker thread: the receiving end of one goodput run (row 3), on its own core like a second device.
// Listens on 127.0.0.1:0 (raw socket or TcpTransport + SecureLink), counts payload bytes, reports the rate.
import { createServer } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { generateIdentity } from '../../agent/identity/identity.js';
import { decodeMessage } from '../../agent/protocol/index.js';
import { establishSecureLink } from '../../agent/security/index.js';
import { TcpTransport } from '../../transports/wifi/tcp-transport.js';
import { SealedReader } from './sealed-stream.js';

/** raw: bytes only; sealed: the AEAD floor (sealed-stream.ts); nearmesh: TcpTransport + SecureLink + codec. */
export type GoodputKind = 'raw' | 'sealed' | 'nearmesh';

export interface ReceiverConfig {
  readonly kind: GoodputKind;
  readonly messageBytes: number;
  readonly messageCount: number;
  readonly meshKey: Uint8Array;
}

export type ReceiverReport =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'done'; readonly payloadBytes: number; readonly bytesPerSecond: number }
  | { readonly type: 'error'; readonly message: string };

/**
 * Rate from the first arrival to the last: the bytes of the first arrival are not counted, because
 * the clock starts when they land. Over 4096 messages the setup cost then stays out of the number.
 */
class GoodputMeter {
  readonly #expectedBytes: number;
  #firstNs: bigint | undefined;
  #totalBytes = 0;
  #bytesAfterFirst = 0;

  constructor(expectedBytes: number) {
    this.#expectedBytes = expectedBytes;
  }

  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** Counts an arrival; true once every expected byte has arrived. */
  add(bytes: number): boolean {
    if (this.#firstNs === undefined) this.#firstNs = process.hrtime.bigint();
    else this.#bytesAfterFirst += bytes;
    this.#totalBytes += bytes;
    return this.#totalBytes >= this.#expectedBytes;
  }

  bytesPerSecond(): number {
    if (this.#firstNs === undefined) return 0;
    const elapsedSeconds = Number(process.hrtime.bigint() - this.#firstNs) / 1e9;
    return this.#bytesAfterFirst / elapsedSeconds;
  }
}

function report(value: ReceiverReport): void {
  parentPort?.postMessage(value);
}

function reportError(error: unknown): void {
  report({ type: 'error', message: error instanceof Error ? error.message : String(error) });
}

/** Raw bytes, or (sealed) each frame opened and its plaintext counted. */
function receiveStream(config: ReceiverConfig): void {
  const meter = new GoodputMeter(config.messageBytes * config.messageCount);
  const server = createServer((socket) => {
    socket.on('error', reportError);
    const reader = config.kind === 'sealed' ? new SealedReader(config.meshKey) : undefined;
    socket.on('data', (chunk: Buffer) => {
      let bytes = chunk.length;
      if (reader !== undefined) {
        bytes = 0;
        try {
          for (const plaintext of reader.push(chunk)) bytes += plaintext.length;
        } catch (error) {
          reportError(error);
          socket.destroy();
          return;
        }
        if (bytes === 0) return;
      }
      if (!meter.add(bytes)) return;
      report({ type: 'done', payloadBytes: meter.totalBytes, bytesPerSecond: meter.bytesPerSecond() });
      socket.destroy();
      server.close();
    });
  });
  server.on('error', reportError);
  server.listen({ host: '127.0.0.1', port: 0 }, () => {
    const address = server.address();
    if (address === null || typeof address === 'string') reportError(new Error('raw listener has no port'));
    else report({ type: 'listening', port: address.port });
  });
}

async function receiveNearmesh(config: ReceiverConfig): Promise<void> {
  const meter = new GoodputMeter(config.messageBytes * config.messageCount);
  const identity = generateIdentity();
  const transport = new TcpTransport({ listen: { host: '127.0.0.1', port: 0 } });
  transport.on('warning', reportError);
  transport.on('link', (link) => {
    establishSecureLink(link, { identity, meshKeys: [config.meshKey], name: 'bench-receiver' }).then(
      (secure) => {
        secure.on('message', (plaintext) => {
          // What an agent does with every frame: decode it and take the payload.
          const result = decodeMessage(plaintext, { payloadView: true });
          if (result.kind !== 'message' || result.message.type !== 'data') {
            reportError(
              new Error(`receiver got ${result.kind === 'error' ? result.error.message : result.kind}`),
            );
            secure.close();
            return;
          }
          if (!meter.add(result.message.payload.length)) return;
          report({ type: 'done', payloadBytes: meter.totalBytes, bytesPerSecond: meter.bytesPerSecond() });
          void transport.stop();
        });
      },
      reportError,
    );
  });
  await transport.start();
  const address = transport.address();
  if (address === undefined) throw new Error('TcpTransport has no listen address');
  report({ type: 'listening', port: address.port });
}

const config = workerData as ReceiverConfig;
if (config.kind !== 'nearmesh') receiveStream(config);
else receiveNearmesh(config).catch(reportError);
