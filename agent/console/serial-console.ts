// The console on a serial line (`[console] serial`): 8N1 at `baud`. When the device goes away (a USB
// gadget unplugged, a pty closed) the session ends, and the port is reopened every 2 s until the
// device is back, when a new session starts. A missing device never stops the agent.
import { existsSync } from 'node:fs';
import type { SerialPort } from 'serialport';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { ConsoleContext } from './commands.js';
import { ConsoleLogin } from './login.js';
import { ConsoleSession } from './session.js';

export const SERIAL_RETRY_MS = 2000;

export interface SerialConsoleOptions {
  path: string;
  baud: number;
  context: ConsoleContext;
  /** `[console] password` and `allow_unauthenticated`: who may run commands that act. */
  password: string | undefined;
  allowUnauthenticated: boolean;
  counters: Counters;
  log: Logger;
  retryMs?: number;
}

export class SerialConsole {
  #port: SerialPort | undefined;
  #session: ConsoleSession | undefined;
  #retry: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  /** Outlives the sessions, so a reconnect neither logs in nor resets the login delay. */
  readonly #login: ConsoleLogin;
  #stopped = false;
  /** Whether the device is known missing (logged once until it is back). */
  #missing = false;

  constructor(private readonly options: SerialConsoleOptions) {
    const { password, allowUnauthenticated, counters } = options;
    this.#login = new ConsoleLogin({ password, allowUnauthenticated, counters });
  }

  /** Tries to open the device now; on failure it keeps retrying in the background. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#open();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#watch);
    this.#session?.close();
    this.#session = undefined;
    const port = this.#port;
    this.#port = undefined;
    if (port?.isOpen === true) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  async #open(): Promise<void> {
    if (this.#stopped) return;
    const { path, baud, log } = this.options;
    let port: SerialPort;
    try {
      // Loaded only when configured: an agent without a serial console never pays for serialport.
      const { SerialPort } = await import('serialport');
      port = new SerialPort({
        path,
        baudRate: baud,
        dataBits: 8,
        parity: 'none',
        stopBits: 1,
        autoOpen: false,
      });
      await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    } catch (error) {
      if (!this.#missing) {
        this.#missing = true;
        log.warn(
          { path, err: error },
          `serial console: cannot open ${path}; retrying every ${this.#retryMs / 1000} s`,
        );
      }
      this.#scheduleRetry();
      return;
    }
    if (this.#stopped) {
      port.close(() => {});
      return;
    }
    this.#missing = false;
    this.#port = port;
    log.info({ path, baud }, `serial console on ${path} (${baud} 8N1)`);
    port.on('error', (error) => log.debug({ err: error, path }, 'serial console error'));
    port.once('close', () => this.#lost(port));
    const { context, counters } = this.options;
    this.#session = new ConsoleSession({ input: port, output: port, context, login: this.#login, counters });
    // A device can vanish without the port noticing at once: check that its path still exists.
    this.#watch = setInterval(() => {
      if (!existsSync(path)) port.close(() => {});
    }, this.#retryMs);
    this.#watch.unref();
  }

  #lost(port: SerialPort): void {
    if (this.#port !== port) return;
    clearInterval(this.#watch);
    this.#session?.close();
    this.#session = undefined;
    this.#port = undefined;
    if (this.#stopped) return;
    this.#missing = true;
    this.options.log.warn(
      { path: this.options.path },
      `serial console: ${this.options.path} went away; reopening when it is back`,
    );
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#stopped) return;
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#open(), this.#retryMs);
    this.#retry.unref();
  }

  get #retryMs(): number {
    return this.options.retryMs ?? SERIAL_RETRY_MS;
  }
}
