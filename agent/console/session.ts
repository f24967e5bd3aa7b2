// One console session over any pair of streams (a serial port, a test's pty): node:readline in
// terminal mode gives line editing, arrow-key history and tab completion; output ends lines with
// CRLF so a raw serial terminal shows them properly.
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
        void this.#queue.then(() => resolve());
      });
    });
    this.#rl.on('line', (line) => {
      this.#queue = this.#queue.then(() => this.#run(line));
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

  async #run(line: string): Promise<void> {
    const text = await runConsoleLine(line, this.#context);
    if (this.#closed) return;
    this.#write(text);
    this.#rl.prompt();
  }

  /** Lines end in CRLF: a raw serial line (no output post-processing) would otherwise staircase. */
  #write(text: string): void {
    if (text !== '' && this.#output.writable) this.#output.write(text.replace(/\r?\n/g, '\r\n'));
  }
}
