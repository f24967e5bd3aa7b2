// One console session over any pair of streams (a serial port, a test's pty): node:readline in
// terminal mode gives line editing, arrow-key history and tab completion; output ends lines with
// CRLF so a raw serial terminal shows them properly. Ctrl-C or a new line stops a running command
// (a trace); Ctrl-C at the prompt drops the line being typed.
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { type ConsoleContext, completeConsoleLine, runConsoleLine } from './commands.js';

export const CONSOLE_PROMPT = 'nearmesh> ';

export interface ConsoleSessionOptions {
  input: Readable;
  output: Writable;
  context: ConsoleContext;
  historySize?: number;
}

export class ConsoleSession {
  readonly #rl: Interface;
  readonly #output: Writable;
  readonly #context: ConsoleContext;
  /** Lines run one after another, in the order they were typed. */
  #queue: Promise<void> = Promise.resolve();
  /** Stops the commands running or queued now (Ctrl-C, a new line). */
  #running = new AbortController();
  #busy = 0;
  #closed = false;
  /** Resolves once the session ended (input closed, or close() called) and the last command finished. */
  readonly closed: Promise<void>;

  constructor(options: ConsoleSessionOptions) {
    this.#output = options.output;
    this.#context = options.context;
    this.#rl = createInterface({
      input: options.input,
      output: options.output,
      terminal: true,
      historySize: options.historySize ?? 100,
      prompt: CONSOLE_PROMPT,
      completer: (line: string, callback: (error: Error | null, result: [string[], string]) => void) => {
        callback(null, completeConsoleLine(line, this.#context));
      },
    });
    this.closed = new Promise((resolve) => {
      this.#rl.once('close', () => {
        this.#closed = true;
        this.#running.abort();
        void this.#queue.then(() => resolve());
      });
    });
    this.#rl.on('line', (line) => {
      if (this.#busy > 0) this.#cancel();
      const signal = this.#running.signal;
      this.#busy++;
      this.#queue = this.#queue.then(() => this.#run(line, signal)).finally(() => this.#busy--);
    });
    // Without a listener readline would close the session on Ctrl-C.
    this.#rl.on('SIGINT', () => {
      if (this.#busy > 0) return this.#cancel();
      this.#rl.write(null, { ctrl: true, name: 'e' });
      this.#rl.write(null, { ctrl: true, name: 'u' });
      this.#write('^C\n');
      this.#rl.prompt();
    });
    // A write to a device that went away must not take the agent down; the owner notices the close.
    options.output.on('error', () => {});
    let banner: string;
    try {
      const { id, name } = this.#context.id();
      banner = `nearmesh console: ${name} (${id}); type help\n`;
    } catch {
      banner = 'nearmesh console; type help\n';
    }
    this.#write(banner);
    this.#rl.prompt();
  }

  close(): void {
    if (!this.#closed) this.#rl.close();
  }

  #cancel(): void {
    this.#running.abort();
    this.#running = new AbortController();
  }

  async #run(line: string, signal: AbortSignal): Promise<void> {
    const text = await runConsoleLine(line, this.#context, {
      write: (output) => this.#write(output),
      signal,
    });
    if (this.#closed) return;
    this.#write(text);
    this.#rl.prompt();
  }

  /** Lines end in CRLF: a raw serial line (no output post-processing) would otherwise staircase. */
  #write(text: string): void {
    if (text !== '' && this.#output.writable) this.#output.write(text.replace(/\r?\n/g, '\r\n'));
  }
}
