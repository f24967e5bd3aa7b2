// Talks to systemd for a Type=notify service (sd_notify(3)): READY=1 once the agent serves, STATUS= lines,
// WATCHDOG=1 pings from the event loop (a stalled loop stops pinging and systemd restarts the agent),
// STOPPING=1 on the way out. Node cannot send on a UNIX datagram socket, so the messages go through
// systemd-notify(1), which waits until systemd has processed each one (no race with a short-lived sender).
import { execFile } from 'node:child_process';
import type { Logger } from '../core/logger.js';

const NOTIFY_TIMEOUT_MS = 5_000;
/** Ping at a third of the watchdog period: two pings may be lost before systemd acts. */
const WATCHDOG_PINGS_PER_PERIOD = 3;

export interface SystemdNotifierOptions {
  log: Logger;
  env?: NodeJS.ProcessEnv;
  pid?: number;
  /** The systemd-notify binary (tests point it elsewhere). */
  command?: string;
}

export class SystemdNotifier {
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #pid: number;
  readonly #command: string;
  #watchdog: NodeJS.Timeout | undefined;
  #hasWarned = false;

  constructor(options: SystemdNotifierOptions) {
    this.#log = options.log;
    this.#env = options.env ?? process.env;
    this.#pid = options.pid ?? process.pid;
    this.#command = options.command ?? 'systemd-notify';
  }

  /** True when started by systemd as a notify service. */
  get isEnabled(): boolean {
    return this.#env.NOTIFY_SOCKET !== undefined && this.#env.NOTIFY_SOCKET !== '';
  }

  /** The watchdog period systemd asked for, when it is meant for this process. */
  get watchdogMs(): number | undefined {
    const usec = Number(this.#env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.#env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && Number(pid) !== this.#pid) return undefined;
    return usec / 1000;
  }

  /** READY=1 with a status line, then the watchdog pings if systemd wants them. */
  ready(status: string): void {
    if (!this.isEnabled) return;
    this.#send([`MAINPID=${this.#pid}`, 'READY=1', `STATUS=${status}`]);
    const periodMs = this.watchdogMs;
    if (periodMs === undefined) return;
    this.#send(['WATCHDOG=1']);
    this.#watchdog = setInterval(
      () => this.#send(['WATCHDOG=1']),
      Math.max(1, periodMs / WATCHDOG_PINGS_PER_PERIOD),
    );
    this.#watchdog.unref();
  }

  status(status: string): void {
    if (this.isEnabled) this.#send([`STATUS=${status}`]);
  }

  stopping(): void {
    clearInterval(this.#watchdog);
    if (this.isEnabled) this.#send(['STOPPING=1']);
  }

  #send(assignments: string[]): void {
    execFile(this.#command, assignments, { env: this.#env, timeout: NOTIFY_TIMEOUT_MS }, (error) => {
      if (error === null || this.#hasWarned) return;
      this.#hasWarned = true; // once: a missing binary would otherwise log every ping
      this.#log.warn(
        { err: error },
        'cannot notify systemd (systemd-notify failed); is the systemd package installed?',
      );
    });
  }
}
