// BLE system tests: they need the emulator (root, btvirt, socat, cc), and their noble and bleno
// children speak JSON lines (each library keeps one global binding, so every role runs in its own process).
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { whyEmulatorUnavailable } from '../../scripts/ble-emulator/emulator.js';
import { describeWhenAvailable } from './requirements.js';
import { until } from './until.js';

export const CHILDREN_DIR = resolve(import.meta.dirname, '../system/children');

/** describe() for tests that need the BLE emulator (see describeWhenAvailable). */
export function describeWithBleEmulator(title: string, body: () => void): void {
  describeWhenAvailable(title, whyEmulatorUnavailable(), body);
}

// biome-ignore lint/suspicious/noExplicitAny: child messages are free-form JSON
export type ChildMessage = { event: string; [key: string]: any };

const running = new Set<JsonChild>();

/** A node child process (a script in test/system/children) that reports JSON lines on stdout. */
export class JsonChild {
  readonly child: ChildProcess;
  readonly messages: ChildMessage[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private closed = false;

  constructor(
    readonly script: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [resolve(CHILDREN_DIR, script)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    let pending = '';
    this.child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line === '') continue;
        try {
          this.messages.push(JSON.parse(line) as ChildMessage);
        } catch {
          this.messages.push({ event: 'text', text: line });
        }
      }
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = `${this.stderr}${chunk.toString('utf8')}`.slice(-64 * 1024);
    });
    // 'close', not 'exit': by then every line the child printed has been read.
    this.exited = new Promise((done) =>
      this.child.once('close', (code) => {
        running.delete(this);
        this.closed = true;
        done(code);
      }),
    );
  }

  /** The first message with this event (and matching the test, if given), waiting up to timeoutMs. */
  async waitFor(
    event: string,
    timeoutMs = 15_000,
    test: (message: ChildMessage) => boolean = () => true,
  ): Promise<ChildMessage> {
    return until(
      () =>
        `"${event}" from ${this.script}; got ${JSON.stringify(this.messages).slice(0, 2000)}\n${this.stderr}`,
      () => {
        const found = this.messages.find((m) => m.event === event && test(m));
        if (found !== undefined) return found;
        const failure = this.messages.find((m) => m.event === 'error');
        if (failure !== undefined) throw new Error(`${this.script} failed: ${failure.message}`);
        if (this.closed) {
          throw new Error(
            `${this.script} exited (${this.child.exitCode ?? this.child.signalCode}) before "${event}"\n${this.stderr}`,
          );
        }
        return undefined;
      },
      { timeoutMs },
    );
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.closed && this.child.exitCode === null && this.child.signalCode === null)
      this.child.kill(signal);
    await this.exited;
  }
}

/** Stops every child started by JsonChild that is still running. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop('SIGKILL')));
}
