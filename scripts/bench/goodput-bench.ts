// Row 3: goodput of an authenticated nearmesh TCP link against a raw Node TCP socket on 127.0.0.1,
// 64 KiB messages with back-pressure, receiver in a worker thread; median of 3 runs each, interleaved.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { generateMeshKey, parseMeshKey } from '../../agent/config/mesh-key.js';
import { generateIdentity } from '../../agent/identity/identity.js';
import { encodeMessageParts } from '../../agent/protocol/index.js';
import { establishSecureLink } from '../../agent/security/index.js';
import { TcpTransport } from '../../transports/wifi/tcp-transport.js';
import type { GoodputKind, ReceiverConfig, ReceiverReport } from './goodput-receiver.js';
import { writeSealed } from './sealed-stream.js';
import { median } from './stats.js';
import { formatMegabytes, formatPercent, passMark, type ResultRow } from './table.js';
import { withTimeout } from './timing.js';

const MESSAGE_BYTES = 64 * 1024;
const TOTAL_BYTES = 256 * 1024 * 1024;
const RUNS = 3;
/** One discarded run per kind first: the sender's encode/seal path is cold JIT-wise on its first run. */
const WARMUP_TOTAL_BYTES = 64 * 1024 * 1024;
const MIN_RATIO = 0.5;
/**
 * What nearmesh's own framing, codec and Noise state may cost over the bare sealed stream (3b): the cipher is the
 * floor of any authenticated link, and on a machine where it alone takes most of raw's time no link reaches 3's goal.
 */
const MIN_SEALED_RATIO = 0.9;
/** A run that takes this long is broken, not slow: fail instead of hanging the bench. */
const RUN_TIMEOUT_MS = 30_000;
const WORKER_EXIT_GRACE_MS = 2_000;

type Report<T extends ReceiverReport['type']> = Extract<ReceiverReport, { type: T }>;

/** Resolves with the worker's first report of `type`; rejects on an error report or a dead worker. */
function nextReport<T extends ReceiverReport['type']>(worker: Worker, type: T): Promise<Report<T>> {
  const promise = new Promise<Report<T>>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (value: ReceiverReport): void => {
      if (value.type === 'error') {
        cleanup();
        reject(new Error(`receiver: ${value.message}`));
      } else if (value.type === type) {
        cleanup();
        resolve(value as Report<T>);
      }
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`receiver exited with ${code} before '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`receiver sent no '${type}' within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
  // Awaited later; until then a rejection must not count as unhandled.
  promise.catch(() => undefined);
  return promise;
}

/**
 * Writes every message with back-pressure, as it is (raw) or sealed (sealed-stream.ts), then ends; the caller
 * destroys the socket whatever happens.
 */
async function sendStream(socket: Socket, config: ReceiverConfig): Promise<void> {
  await once(socket, 'connect');
  const chunk = Buffer.alloc(config.messageBytes, 0xa5);
  for (let i = 0; i < config.messageCount; i++) {
    const isBelowHighWater =
      config.kind === 'sealed' ? writeSealed(socket, config.meshKey, i, chunk) : socket.write(chunk);
    if (!isBelowHighWater) await once(socket, 'drain');
  }
  socket.end();
}

/** Dials, authenticates, sends every message with back-pressure; the caller stops the transport. */
async function sendNearmesh(transport: TcpTransport, port: number, config: ReceiverConfig): Promise<void> {
  const link = await transport.dial(`127.0.0.1:${port}`);
  const secure = await establishSecureLink(link, {
    identity: generateIdentity(),
    meshKeys: [config.meshKey],
    name: 'bench-sender',
  });
  const payload = new Uint8Array(config.messageBytes).fill(0xa5);
  for (let id = 0; id < config.messageCount; id++) {
    // A fresh encode per message: that is what a sender of distinct messages pays.
    if (!secure.send(encodeMessageParts({ type: 'data', id, ackRequested: false, payload }))) {
      if (!secure.isOpen) throw new Error('secure link closed while sending');
      await secure.drained();
    }
  }
}

/** One run: a fresh receiver worker, one connection, every message; the receiver's bytes per second. */
async function runOnce(kind: GoodputKind, meshKey: Uint8Array, totalBytes: number): Promise<number> {
  const config: ReceiverConfig = {
    kind,
    messageBytes: MESSAGE_BYTES,
    messageCount: totalBytes / MESSAGE_BYTES,
    meshKey,
  };
  const worker = new Worker(new URL('./goodput-receiver.js', import.meta.url), { workerData: config });
  const exited = once(worker, 'exit').catch(() => undefined);
  const listening = nextReport(worker, 'listening');
  const done = nextReport(worker, 'done');
  let rawSocket: Socket | undefined;
  const transport = kind === 'nearmesh' ? new TcpTransport({ listen: false }) : undefined;
  try {
    const { port } = await listening;
    if (transport === undefined) {
      rawSocket = connect({ host: '127.0.0.1', port });
      rawSocket.on('error', () => undefined);
      await withTimeout(sendStream(rawSocket, config), RUN_TIMEOUT_MS, `sending over the ${kind} socket`);
    } else {
      await withTimeout(sendNearmesh(transport, port, config), RUN_TIMEOUT_MS, 'sending over nearmesh');
    }
    const result = await done;
    if (result.payloadBytes !== totalBytes) {
      throw new Error(`receiver counted ${result.payloadBytes} bytes, expected ${totalBytes}`);
    }
    return result.bytesPerSecond;
  } finally {
    rawSocket?.destroy();
    await transport?.stop();
    const timer = setTimeout(() => void worker.terminate(), WORKER_EXIT_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}

export async function goodputRows(): Promise<ResultRow[]> {
  const meshKey = parseMeshKey(generateMeshKey());
  const kinds = ['raw', 'sealed', 'nearmesh'] as const;
  const rates: Record<GoodputKind, number[]> = { raw: [], sealed: [], nearmesh: [] };
  for (const kind of kinds) await runOnce(kind, meshKey, WARMUP_TOTAL_BYTES);
  for (let run = 0; run < RUNS; run++) {
    // Interleaved, each run in another order, so a slow spell of the machine hits every kind alike.
    for (let index = 0; index < kinds.length; index++) {
      const kind = kinds[(index + run) % kinds.length] as GoodputKind;
      rates[kind].push(await runOnce(kind, meshKey, TOTAL_BYTES));
    }
  }
  const perRun = (kind: GoodputKind): string => rates[kind].map((rate) => (rate / 1e6).toFixed(0)).join('/');
  process.stderr.write(
    `[runs MB/s: raw ${perRun('raw')}, sealed ${perRun('sealed')}, nearmesh ${perRun('nearmesh')}] `,
  );
  const [raw, sealed, nearmesh] = kinds.map((kind) => median(rates[kind])) as [number, number, number];
  const rate = (bytesPerSecond: number) => formatMegabytes(bytesPerSecond, 'MB/s');
  return [
    {
      benchmark: '3  TCP goodput, 64 KiB msgs vs raw socket',
      nearmesh: rate(nearmesh),
      baseline: rate(raw),
      ratio: formatPercent(nearmesh / raw),
      goal: `≥ ${formatPercent(MIN_RATIO)}`,
      pass: passMark(nearmesh / raw >= MIN_RATIO),
    },
    {
      benchmark: '3b TCP goodput vs a bare sealed stream',
      nearmesh: rate(nearmesh),
      baseline: `sealed ${rate(sealed)}`,
      ratio: formatPercent(nearmesh / sealed),
      goal: `≥ ${formatPercent(MIN_SEALED_RATIO)}`,
      pass: passMark(nearmesh / sealed >= MIN_SEALED_RATIO),
    },
    {
      benchmark: '3c a bare sealed stream vs raw socket',
      nearmesh: `sealed ${rate(sealed)}`,
      baseline: rate(raw),
      ratio: formatPercent(sealed / raw),
      goal: '— (info)',
      pass: '—',
    },
  ];
}
