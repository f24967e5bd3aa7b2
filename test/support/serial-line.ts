// A serial line for tests: a socat pty pair whose one end an agent opens as `[console] serial`, and a
// Terminal on the other end that types (one key per write, as a person does) and keeps what it printed.
import { type ChildProcess, spawn } from 'node:child_process';
import { constants, existsSync, openSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReadStream } from 'node:tty';
import { until } from './until.js';

/** The pty pair: `agentEnd` for the agent's config, `testEnd` for a Terminal. */
export class SerialLine {
  readonly agentEnd: string;
  readonly testEnd: string;
  #socat: ChildProcess | undefined;

  constructor(dir: string) {
    this.agentEnd = join(dir, 'a');
    this.testEnd = join(dir, 'b');
  }

  async open(): Promise<void> {
    this.#socat = spawn(
      'socat',
      ['-d', '-d', `pty,raw,echo=0,link=${this.agentEnd}`, `pty,raw,echo=0,link=${this.testEnd}`],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    await until('socat pty pair', () => existsSync(this.agentEnd) && existsSync(this.testEnd));
  }

  /** Takes the line away, as an unplugged USB gadget does. */
  async close(): Promise<void> {
    const child = this.#socat;
    this.#socat = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/** The test's end of the serial line: a plain pty opened read-write. */
export class Terminal {
  output = '';
  readonly #fd: number;
  readonly #stream: ReadStream;

  constructor(path: string) {
    this.#fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
    this.#stream = new ReadStream(this.#fd);
    this.#stream.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    this.#stream.on('error', () => {});
  }

  /** Everything printed from now on, for `since`. */
  mark(): number {
    return this.output.length;
  }

  since(mark: number): string {
    return this.output.slice(mark);
  }

  async type(text: string): Promise<void> {
    for (const byte of Buffer.from(text, 'utf8')) {
      // Kept: pacing. A tab that arrives in one read with other keys is pasted text, not completion; a
      // busy machine can merge bytes written 3 ms apart, so a tab gets a quiet moment on each side.
      const isTab = byte === 0x09;
      if (isTab) await sleep(100);
      // The pty is non-blocking: a line still full (after a flood) takes the key once it drains.
      for (let waitedMs = 0; ; waitedMs += 10) {
        try {
          writeSync(this.#fd, Buffer.from([byte]));
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || waitedMs >= 10_000) throw error;
          await sleep(10);
        }
      }
      await sleep(isTab ? 100 : 3);
    }
  }

  /**
   * Writes `data` as fast as the line takes it, off the event loop (a flood must not stop the reading).
   * The pty is non-blocking: when it is full, wait a moment for the other side to drain it.
   */
  async send(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const start = offset;
      offset += await new Promise<number>((resolve, reject) => {
        write(this.#fd, data, start, data.length - start, null, (error, written) => {
          if (error === null) resolve(written);
          else if (error.code === 'EAGAIN') void sleep(5).then(() => resolve(0));
          else reject(error);
        });
      });
    }
  }

  waitFor(what: string, mark: number, test: (text: string) => boolean, timeoutMs = 8000): Promise<string> {
    return until(
      () => `${what} on the serial console; it printed ${JSON.stringify(this.since(mark))}`,
      () => {
        const text = this.since(mark);
        return test(text) ? text : undefined;
      },
      { timeoutMs, intervalMs: 20 },
    );
  }

  close(): void {
    this.#stream.destroy();
  }
}
