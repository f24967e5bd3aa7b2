// mDNS system tests: one child process (test/system/children/mdns-child.mjs) per network namespace, since
// a vitest worker cannot enter one. It speaks JSON lines out and takes commands on stdin.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { until } from './until.js';

const CHILD = join(import.meta.dirname, '..', 'system', 'children', 'mdns-child.mjs');
const WAIT_MS = 15_000;

export interface MdnsChildEvent {
  event: string;
  candidate?: { medium: string; address: string; peerId?: string; name?: string; source: string };
  code?: string;
  message?: string;
  port?: number;
  text?: string;
  address?: string;
  instanceName?: string;
  count?: number;
  /** A record a browser heard: its owner name, type and data (bytes as latin1 text). */
  name?: string;
  type?: string;
  data?: unknown;
}

export class MdnsProcess {
  readonly events: MdnsChildEvent[] = [];
  /** Told of each event as it arrives. */
  readonly listeners: ((event: MdnsChildEvent) => void)[] = [];
  readonly #child: ChildProcess;
  #stderr = '';

  constructor(namespace: string, options: Record<string, unknown>) {
    this.#child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CHILD], {
      env: { ...process.env, NEARMESH_TEST_OPTIONS: JSON.stringify(options) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    if (this.#child.stdout) {
      createInterface({ input: this.#child.stdout }).on('line', (line) => {
        const event = JSON.parse(line) as MdnsChildEvent;
        this.events.push(event);
        for (const listener of this.listeners) listener(event);
      });
    }
  }

  command(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  /** The first event (from index `from` on) that is wanted, waiting up to 15 s. */
  async waitFor(
    isWanted: (event: MdnsChildEvent) => boolean,
    what: string,
    from = 0,
  ): Promise<MdnsChildEvent> {
    const failure = () => `${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.#stderr}`;
    return until(
      failure,
      () => {
        const event = this.events.slice(from).find(isWanted);
        if (event !== undefined) return event;
        if (this.#child.exitCode !== null) throw new Error(`the child exited before ${failure()}`);
        return undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 20 },
    );
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.command('stop');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
