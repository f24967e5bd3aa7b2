// Who may act from the serial console: with `[console] password` set, commands that change something
// need `login` first; without one the console is read-only unless `allow_unauthenticated = true`.
// Failed logins are slowed down: after the third wrong password in a row each next try waits 1 s,
// then 2 s, 4 s ... up to a minute. One gate per serial console, so reconnecting the cable (a new
// session) neither logs in nor resets the delay.
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { type PasswordHash, parsePasswordHash, verifyPasswordOffLoop } from '../core/password-hash.js';
import type { ConsoleAccess } from './commands.js';

/** Console logins verify off the event loop, so many iterations are fine; this bound stops a typo costing minutes. */
export const MAX_CONSOLE_ITERATIONS = 10_000_000;
const FREE_FAILURES = 3;
const MAX_DELAY_MS = 60_000;

export interface ConsoleLoginOptions {
  /**
   * `[console] password`, a `$7$` hash (the config schema checked it). None makes the console read-only
   * unless allow_unauthenticated, and so would one that did not parse.
   */
  password: string | undefined;
  allowUnauthenticated: boolean;
  counters: Counters;
}

export type LoginResult = 'ok' | 'wrong' | 'wait';

export class ConsoleLogin {
  readonly #hash: PasswordHash | undefined;
  readonly #allowUnauthenticated: boolean;
  readonly #counters: Counters;
  #failures = 0;
  #nextTryAt = 0;

  constructor(options: ConsoleLoginOptions) {
    this.#hash = options.password === undefined ? undefined : consolePasswordHash(options.password);
    this.#allowUnauthenticated = options.allowUnauthenticated;
    this.#counters = options.counters;
  }

  /** Why a session that has not logged in may not act, or undefined when it may. */
  refusal(): string | undefined {
    if (this.#allowUnauthenticated) return undefined;
    if (this.#hash === undefined)
      return 'this console is read-only: set [console] password to log in (or allow_unauthenticated = true)';
    return 'log in first: type login';
  }

  get hasPassword(): boolean {
    return this.#hash !== undefined;
  }

  /** How long until the next attempt is taken (0: now). */
  retryInMs(): number {
    return Math.max(0, this.#nextTryAt - Date.now());
  }

  async attempt(password: string): Promise<LoginResult> {
    if (this.#hash === undefined || this.retryInMs() > 0) return 'wait';
    // Taken before the (slow) check, so attempts racing it are refused too.
    this.#nextTryAt = Number.POSITIVE_INFINITY;
    let matches = false;
    try {
      matches = await verifyPasswordOffLoop(this.#hash, password);
    } finally {
      this.#nextTryAt = 0;
    }
    if (matches) {
      this.#failures = 0;
      return 'ok';
    }
    this.#failures++;
    this.#counters.increment('console.login_failures');
    if (this.#failures >= FREE_FAILURES)
      this.#nextTryAt = Date.now() + Math.min(MAX_DELAY_MS, 1000 * 2 ** (this.#failures - FREE_FAILURES));
    return 'wrong';
  }

  /**
   * One session's access: logged out at first; `login` reads the password with `readSecret` (no echo,
   * undefined when cancelled) and logs this session in, until `logout` or the session's end.
   */
  sessionAccess(readSecret: (signal: AbortSignal) => Promise<string | undefined>): ConsoleAccess {
    let loggedIn = false;
    const waitMessage = (): string =>
      `nearmesh: too many failed logins; try again in ${Math.ceil(this.retryInMs() / 1000)} s\n`;
    return {
      refusal: () => (loggedIn ? undefined : this.refusal()),
      login: async (signal) => {
        if (!this.hasPassword) return `no password is set ([console] password)\n`;
        if (loggedIn) return 'already logged in\n';
        if (this.retryInMs() > 0) return waitMessage();
        const password = await readSecret(signal);
        if (password === undefined) return 'login cancelled\n';
        const result = await this.attempt(password);
        if (result === 'wait') return waitMessage();
        if (result === 'wrong') return 'nearmesh: wrong password\n';
        loggedIn = true;
        return 'logged in\n';
      },
      logout: () => {
        const was = loggedIn;
        loggedIn = false;
        return was ? 'logged out\n' : 'not logged in\n';
      },
    };
  }
}

/** The config's `[console] password`, which the config already checked is a hash. */
function consolePasswordHash(text: string): PasswordHash {
  const parsed = parsePasswordHash(text, MAX_CONSOLE_ITERATIONS);
  if (typeof parsed === 'string') throw new NearmeshError('config', `console.password: ${parsed}`);
  return parsed;
}
