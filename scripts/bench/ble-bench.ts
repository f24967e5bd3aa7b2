// Rows 6 and 7: the BLE medium on the emulator (scripts/ble-emulator). 6: goodput of authenticated messages
// over a GattLink between two BleTransports vs a raw noble writeWithoutResponse burst to a bleno
// characteristic, same emulator, same ATT MTU (256), both measured at the receiver. 7: time from scan start to
// an authenticated link vs the raw noble scan -> connect -> MTU -> discover -> subscribe. Every noble/bleno role
// runs in its own child process (scripts/bench/children/bench-ble-*.mjs: the libraries keep global bindings).
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { type BleEmulator, startEmulator, whyEmulatorUnavailable } from '../ble-emulator/emulator.js';
import { median } from './stats.js';
import { formatMilliseconds, formatPercent, formatTimes, passMark, type ResultRow } from './table.js';
import { withTimeout } from './timing.js';

export const BLE_TOTAL_BYTES = 256 * 1024;
export const BLE_MESSAGE_BYTES = 1024;
export const BLE_MTU = 256;
export const BLE_WARMUPS = 1;
export const BLE_RUNS = 3;
const MIN_GOODPUT_RATIO = 0.8;
const MAX_LINK_MS = 1000;
const STEP_TIMEOUT_MS = 15_000;
const MESH_KEY = '6d6573682d6b65792d666f722d626c652d62656e63686d61726b2d72756e2d31';
const DIALER_PEER_ID = '1a2b3c4d5e6f7081'; // the smaller peer id dials
const ACCEPTOR_PEER_ID = 'e1d2c3b4a5968778';

const GOODPUT_NAME = '6  BLE goodput, 1 KiB msgs vs raw GATT burst';
const LINK_NAME = '7  BLE scan→auth link ms vs raw scan→subscribe';

// biome-ignore lint/suspicious/noExplicitAny: child messages are free-form JSON
type ChildMessage = { event: string; [key: string]: any };

/** The .mjs children are not compiled: the bench runs from dist/scripts/bench, they stay in the source tree. */
function childrenDirectory(): string {
  return resolve(import.meta.dirname, '../../../scripts/bench/children');
}

/** A node child that reports JSON lines on stdout; killed by its PID. */
class Child {
  readonly #process: ChildProcess;
  readonly #messages: ChildMessage[] = [];
  readonly #waiters = new Set<() => void>();
  #stderr = '';
  #exited = false;

  constructor(script: string, env: Record<string, string>) {
    this.#process = spawn(process.execPath, [join(childrenDirectory(), script)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.#process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.#messages.push(JSON.parse(line) as ChildMessage);
        } catch {
          this.#stderr += `${line}\n`;
        }
      }
      this.#wake();
    });
    this.#process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    this.#process.on('exit', () => {
      this.#exited = true;
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** The first message of `event`; rejects on a child error or exit. */
  waitFor(event: string): Promise<ChildMessage> {
    const what = `${event} from ${this.#process.spawnargs.at(-1)}`;
    const found = new Promise<ChildMessage>((resolvePromise, reject) => {
      const check = (): void => {
        const message = this.#messages.find((m) => m.event === event);
        const error = this.#messages.find((m) => m.event === 'error');
        if (message !== undefined) resolvePromise(message);
        else if (error !== undefined) reject(new Error(`${what}: ${String(error.message).slice(0, 300)}`));
        else if (this.#exited) reject(new Error(`${what}: child exited. ${this.#stderr.slice(-300)}`));
        else return;
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
    return withTimeout(found, STEP_TIMEOUT_MS, what);
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolvePromise) => this.#process.once('exit', () => resolvePromise()));
    const pid = this.#process.pid;
    if (pid !== undefined) process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (!this.#exited && pid !== undefined) process.kill(pid, 'SIGKILL');
    }, 2000);
    await exited;
    clearTimeout(timer);
  }
}

interface RunResult {
  /** Receiver goodput in bytes/s: bytes after the first message / first-to-last arrival. */
  readonly bytesPerSecond: number;
  readonly scanToLinkMs: number;
}

async function oneRun(
  receiverScript: string,
  senderScript: string,
  ptys: readonly [string, string],
  extraEnv: (role: 'receiver' | 'sender') => Record<string, string>,
): Promise<RunResult> {
  const common = { TOTAL_BYTES: String(BLE_TOTAL_BYTES), FRAME_BYTES: String(BLE_MESSAGE_BYTES) };
  const receiver = new Child(receiverScript, { ...common, BLE_PTY: ptys[0], ...extraEnv('receiver') });
  let sender: Child | undefined;
  try {
    await receiver.waitFor('advertising');
    sender = new Child(senderScript, { ...common, BLE_PTY: ptys[1], ...extraEnv('sender') });
    const link = await sender.waitFor('link');
    const mtu = Number(link.mtu ?? Number(link.maxFragmentBytes) + 3);
    if (mtu !== BLE_MTU) throw new Error(`${senderScript}: ATT MTU ${mtu}, expected ${BLE_MTU}`);
    const received = await receiver.waitFor('received');
    const bytes = Number(received.bytes) - Number(received.firstSize);
    return {
      bytesPerSecond: bytes / (Number(received.firstToLastMs) / 1000),
      scanToLinkMs: Number(link.scanToLinkMs),
    };
  } finally {
    await sender?.stop();
    await receiver.stop();
  }
}

/** Controllers `first` and `first + 1`: receiver, sender. */
function ptyPair(emulator: BleEmulator, first: number): readonly [string, string] {
  const receiver = emulator.ptys[first];
  const sender = emulator.ptys[first + 1];
  if (receiver === undefined || sender === undefined)
    throw new Error(`emulator has no controller ${first + 1}`);
  return [receiver, sender];
}

const rawRun = (emulator: BleEmulator): Promise<RunResult> =>
  oneRun('bench-ble-raw-sink.mjs', 'bench-ble-raw-source.mjs', ptyPair(emulator, 0), () => ({}));

const nearmeshRun = (emulator: BleEmulator): Promise<RunResult> =>
  oneRun('bench-ble-link.mjs', 'bench-ble-link.mjs', ptyPair(emulator, 2), (role) => ({
    ROLE: role === 'receiver' ? 'acceptor' : 'dialer',
    PEER_ID: role === 'receiver' ? ACCEPTOR_PEER_ID : DIALER_PEER_ID,
    MESH_KEY,
  }));

function skippedRows(reason: string): ResultRow[] {
  return [GOODPUT_NAME, LINK_NAME].map((benchmark) => ({
    benchmark,
    nearmesh: '—',
    baseline: '—',
    ratio: '—',
    goal: `skipped: ${reason}`,
    pass: '—' as const,
  }));
}

const kilobytesPerSecond = (bytesPerSecond: number): string => `${Math.round(bytesPerSecond / 1e3)} kB/s`;

export async function bleRows(): Promise<ResultRow[]> {
  const reason = whyEmulatorUnavailable();
  if (reason !== undefined) return skippedRows(reason);
  let emulator: BleEmulator;
  try {
    emulator = await startEmulator({ controllers: 4 });
  } catch (error) {
    return skippedRows(
      `emulator did not start (${error instanceof Error ? error.message : String(error)})`.slice(0, 80),
    );
  }
  try {
    const raw: RunResult[] = [];
    const nearmesh: RunResult[] = [];
    for (let run = 0; run < BLE_WARMUPS + BLE_RUNS; run++) {
      // Interleaved, so drift on the machine hits both sides alike; the first pair warms caches up.
      const rawResult = await rawRun(emulator);
      const nearmeshResult = await nearmeshRun(emulator);
      if (run >= BLE_WARMUPS) {
        raw.push(rawResult);
        nearmesh.push(nearmeshResult);
      }
    }
    const list = (results: RunResult[], pick: (r: RunResult) => number): string =>
      results.map((r) => Math.round(pick(r))).join('/');
    process.stderr.write(
      `[runs kB/s: raw ${list(raw, (r) => r.bytesPerSecond / 1e3)}, nearmesh ${list(nearmesh, (r) => r.bytesPerSecond / 1e3)}; ` +
        `link ms: raw ${list(raw, (r) => r.scanToLinkMs)}, nearmesh ${list(nearmesh, (r) => r.scanToLinkMs)}] `,
    );
    const goodput = median(nearmesh.map((r) => r.bytesPerSecond));
    const rawGoodput = median(raw.map((r) => r.bytesPerSecond));
    const linkMs = median(nearmesh.map((r) => r.scanToLinkMs));
    const rawLinkMs = median(raw.map((r) => r.scanToLinkMs));
    const goodputRatio = goodput / rawGoodput;
    return [
      {
        benchmark: GOODPUT_NAME,
        nearmesh: kilobytesPerSecond(goodput),
        baseline: kilobytesPerSecond(rawGoodput),
        ratio: formatPercent(goodputRatio),
        goal: `≥ ${formatPercent(MIN_GOODPUT_RATIO)}`,
        pass: passMark(goodputRatio >= MIN_GOODPUT_RATIO),
      },
      {
        benchmark: LINK_NAME,
        nearmesh: formatMilliseconds(linkMs),
        baseline: formatMilliseconds(rawLinkMs),
        ratio: formatTimes(linkMs / rawLinkMs),
        goal: `≤ ${MAX_LINK_MS} ms`,
        pass: passMark(linkMs <= MAX_LINK_MS),
      },
    ];
  } finally {
    await emulator.stop();
  }
}
