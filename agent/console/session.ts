// One serial console session over any pair of streams (a serial port, a test's pty): the line editor
// reads every byte (no byte can stop the agent or end the session), lines run one after another, and
// output ends lines with CRLF so a raw serial terminal shows them properly. Ctrl-C or a new line stops a
// running command (a trace); Ctrl-C at the prompt drops the line being typed. Lines waiting to run and
// output that the other end does not take are dropped past a bound, so neither a flood nor a terminal that
// stopped reading can grow the agent.
import type { Readable, Writable } from 'node:stream';
import type { Counters } from '../core/counters.js';
import { type ConsoleAccess, type ConsoleContext, completeConsoleLine, runConsoleLine } from './commands.js';
import { type EnteredLine, LineEditor, MAX_LINE_CHARS } from './line-editor.js';
import type { ConsoleLogin } from './login.js';

export const CONSOLE_PROMPT = 'nearmesh> ';
const PASSWORD_PROMPT = 'password: ';
/** Output waiting for a slow or absent reader, in bytes, past which more is dropped (and counted). */
export const MAX_PENDING_OUTPUT = 64 * 1024;
/** Lines running or waiting their turn, past which a new line is dropped (and counted): a flood of Enters. */
export const MAX_WAITING_LINES = 16;

export interface ConsoleSessionOptions {
  input: Readable;
  output: Writable;
  context: ConsoleContext;
  /** Who may act from this console: shared by the sessions of one serial console. */
  login: ConsoleLogin;
  counters: Counters;
  historySize?: number;
}

export class ConsoleSession {
  readonly #editor: LineEditor;
  readonly #output: Writable;
  readonly #context: ConsoleContext;
  readonly #counters: Counters;
  readonly #access: ConsoleAccess;
  /** Lines run one after another, in the order they were typed. */
  #queue: Promise<void> = Promise.resolve();
  /** Stops the commands running or queued now (Ctrl-C, a new line). */
  #running = new AbortController();
  #busy = 0;
  /** Where the next line goes while `login` asks for the password. */
  #secretReader: ((password: string | undefined) => void) | undefined;
  #closed = false;
  #resolveClosed!: () => void;
  /** Resolves once the session ended (input closed, or close() called) and the last command finished. */
  readonly closed = new Promise<void>((resolve) => {
    this.#resolveClosed = resolve;
  });

  constructor(options: ConsoleSessionOptions) {
    this.#output = options.output;
    this.#context = options.context;
    this.#counters = options.counters;
    this.#access = options.login.sessionAccess((signal) => this.#readSecret(signal));
    this.#editor = new LineEditor({
      write: (text) => this.#write(text),
      onLine: (line) => this.#entered(line),
      onInterrupt: () => (this.#busy > 0 ? this.#cancel() : this.#editor.discardLine()),
      complete: (before) => completeConsoleLine(before, this.#context),
      ...(options.historySize !== undefined && { historySize: options.historySize }),
    });
    options.input.on('data', (chunk: Buffer | string) => {
      if (!this.#closed) this.#editor.feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    });
    options.input.once('end', () => this.close());
    options.input.once('close', () => this.close());
    // A device that went away must not take the agent down; the owner notices the close.
    options.input.on('error', () => {});
    options.output.on('error', () => {});
    let banner: string;
    try {
      const { id, name } = this.#context.id();
      banner = `nearmesh console: ${name} (${id}); type help\n`;
    } catch {
      banner = 'nearmesh console; type help\n';
    }
    this.#write(banner);
    this.#editor.prompt(CONSOLE_PROMPT);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#running.abort();
    void this.#queue.then(() => this.#resolveClosed());
  }

  #entered({ text, secret, tooLong }: EnteredLine): void {
    if (tooLong) this.#counters.increment('console.lines_too_long');
    const reader = this.#secretReader;
    if (reader !== undefined) {
      this.#secretReader = undefined;
      reader(tooLong ? undefined : text);
      return;
    }
    if (secret) return;
    if (tooLong) {
      this.#write(`nearmesh: line longer than ${MAX_LINE_CHARS} characters; ignored\n`);
      if (this.#busy === 0) this.#editor.prompt(CONSOLE_PROMPT);
      return;
    }
    if (this.#busy >= MAX_WAITING_LINES) {
      this.#counters.increment('console.lines_dropped');
      this.#write(`nearmesh: ${MAX_WAITING_LINES} lines are waiting to run; dropped this one\n`);
      return;
    }
    if (this.#busy > 0) this.#cancel();
    const signal = this.#running.signal;
    this.#busy++;
    this.#queue = this.#queue.then(() => this.#run(text, signal)).finally(() => this.#busy--);
  }

  #cancel(): void {
    this.#running.abort();
    this.#running = new AbortController();
  }

  /** The next line, typed without echo; undefined when Ctrl-C (or the session's end) comes first. */
  #readSecret(signal: AbortSignal): Promise<string | undefined> {
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const aborted = (): void => {
        this.#secretReader = undefined;
        resolve(undefined);
      };
      signal.addEventListener('abort', aborted, { once: true });
      this.#secretReader = (password) => {
        signal.removeEventListener('abort', aborted);
        resolve(password);
      };
      this.#editor.prompt(PASSWORD_PROMPT, true);
    });
  }

  async #run(line: string, signal: AbortSignal): Promise<void> {
    const text = await runConsoleLine(line, this.#context, {
      write: (output) => this.#write(output),
      signal,
      access: this.#access,
    });
    if (this.#closed) return;
    this.#write(text);
    this.#editor.prompt(CONSOLE_PROMPT);
  }

  /** Lines end in CRLF: a raw serial line (no output post-processing) would otherwise staircase. */
  #write(text: string): void {
    if (text === '' || !this.#output.writable) return;
    if (this.#output.writableLength > MAX_PENDING_OUTPUT) {
      this.#counters.increment('console.output_dropped');
      return;
    }
    this.#output.write(text.replace(/\r?\n/g, '\r\n'));
  }
}
