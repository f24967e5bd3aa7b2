// Runs one handler program to completion, whatever it does: a program that hangs, crashes, floods its
// output, never reads its input or does not exist ends as a typed outcome, never as a rejection or an
// uncaught error in the agent. Each run gets its own process group (detached), so stopping it (timeout,
// abort, too much output) takes down the program's own children too.
import { type ChildProcess, spawn } from 'node:child_process';

export const DEFAULT_MAX_STDOUT_BYTES = 64 * 1024;
export const DEFAULT_MAX_STDERR_BYTES = 4 * 1024;
export const DEFAULT_KILL_GRACE_MS = 1000;
/** After the program exits, how long its stdout/stderr may stay open (a backgrounded child holding them). */
const DRAIN_AFTER_EXIT_MS = 250;
/** After SIGKILL, how long to wait for the pipes to close before giving up on them. */
const SETTLE_AFTER_KILL_MS = 500;

export interface RunOptions {
  /** The program and its arguments; run directly, no shell. */
  readonly argv: readonly string[];
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  readonly stdin?: string;
  /** The whole environment (not merged); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** More stdout than this stops the run ('output-too-large'). Default 64 KiB. */
  readonly maxStdoutBytes?: number;
  /** Only the last this-many bytes of stderr are kept. Default 4 KiB. */
  readonly maxStderrBytes?: number;
  /** SIGTERM first, then SIGKILL this much later. Default 1000 ms. */
  readonly killGraceMs?: number;
}

/** Why a run was stopped by us rather than ending by itself. */
export type StopReason = 'timeout' | 'aborted' | 'output-too-large';

export type RunOutcome =
  | { readonly kind: 'exited'; readonly exitCode: number; readonly stdout: string; readonly stderr: string }
  | { readonly kind: 'crashed'; readonly signal: string; readonly stderr: string }
  | { readonly kind: 'spawn-failed'; readonly errno: string | undefined; readonly message: string }
  /** It exited 0 but printed bytes that are not UTF-8 text: garbage, not a result. */
  | { readonly kind: 'bad-output'; readonly stderr: string }
  | { readonly kind: StopReason; readonly stderr: string };

export function runProcess(options: RunOptions): Promise<RunOutcome> {
  return new Promise((resolve) => new ProcessRun(options, resolve).start());
}

/** One run's state; every path ends in exactly one call of `#finish`. */
class ProcessRun {
  readonly #options: RunOptions;
  readonly #resolve: (outcome: RunOutcome) => void;
  #child: ChildProcess | undefined;
  readonly #stdout: Buffer[] = [];
  #stdoutBytes = 0;
  #stderr: Buffer = Buffer.alloc(0);
  #openPipes = 0;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #stopped: StopReason | undefined;
  #settled = false;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #onAbort = (): void => this.#stop('aborted');

  constructor(options: RunOptions, resolve: (outcome: RunOutcome) => void) {
    this.#options = options;
    this.#resolve = resolve;
  }

  start(): void {
    const [file, ...args] = this.#options.argv;
    if (file === undefined || file === '') {
      this.#finish({ kind: 'spawn-failed', errno: undefined, message: 'no program to run (empty argv)' });
      return;
    }
    if (this.#options.signal?.aborted === true) {
      this.#finish({ kind: 'aborted', stderr: '' });
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        detached: true, // own process group: process.kill(-pid) reaches the program's children too
        stdio: [this.#options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: this.#options.env ?? process.env,
        cwd: this.#options.cwd,
      });
    } catch (error) {
      this.#finish(spawnFailed(file, error)); // e.g. an argument with a NUL byte
      return;
    }
    this.#child = child;
    child.on('error', (error) => {
      // With no pid the program never started; later 'error's (failed kills) change nothing.
      if (child.pid === undefined) this.#finish(spawnFailed(file, error));
    });
    child.on('exit', (code, signal) => this.#onExit(code, signal));
    this.#watchPipes(child);
    if (this.#options.stdin !== undefined && child.stdin !== null) {
      // EPIPE when the program exits (or closes stdin) without reading it all: not our concern.
      child.stdin.on('error', () => {});
      child.stdin.end(this.#options.stdin);
    }
    this.#after(Math.max(0, this.#options.timeoutMs), () => this.#stop('timeout'));
    this.#options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #watchPipes(child: ChildProcess): void {
    const maxStdout = this.#options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES;
    const maxStderr = this.#options.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES;
    for (const pipe of [child.stdout, child.stderr]) {
      if (pipe === null) continue;
      this.#openPipes += 1;
      pipe.on('error', () => {});
      pipe.on('close', () => {
        this.#openPipes -= 1;
        this.#maybeFinish();
      });
    }
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.#stopped !== undefined) return;
      this.#stdoutBytes += chunk.length;
      if (this.#stdoutBytes > maxStdout) {
        this.#stop('output-too-large');
        return;
      }
      this.#stdout.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      const joined = Buffer.concat([this.#stderr, chunk]);
      this.#stderr = joined.length > maxStderr ? joined.subarray(joined.length - maxStderr) : joined;
    });
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { code, signal };
    if (this.#stopped === undefined) {
      // The program is done; its timeout and abort no longer apply. A child it left in the background may
      // hold the pipes open: read what comes for a moment, then stop listening.
      this.#options.signal?.removeEventListener('abort', this.#onAbort);
      this.#clearTimers();
      this.#after(DRAIN_AFTER_EXIT_MS, () => this.#finishNow());
    }
    this.#maybeFinish();
  }

  /** Stops the run: SIGTERM to the process group now, SIGKILL after the grace period. */
  #stop(reason: StopReason): void {
    if (this.#stopped !== undefined || this.#settled) return;
    this.#stopped = reason;
    this.#clearTimers();
    this.#signalGroup('SIGTERM');
    // Left running even after we settle: a group member that ignores SIGTERM still gets killed.
    setTimeout(() => {
      this.#signalGroup('SIGKILL');
      if (!this.#settled) this.#after(SETTLE_AFTER_KILL_MS, () => this.#finishNow());
    }, this.#options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the whole group is already gone.
    }
  }

  #maybeFinish(): void {
    if (this.#exit !== undefined && this.#openPipes === 0) this.#finishNow();
  }

  /** Settles with what we have, abandoning pipes still open. */
  #finishNow(): void {
    if (this.#settled) return;
    this.#child?.stdout?.destroy();
    this.#child?.stderr?.destroy();
    const stderr = this.#stderr.toString('utf8');
    if (this.#stopped !== undefined) {
      this.#finish({ kind: this.#stopped, stderr });
    } else if (this.#exit?.signal) {
      this.#finish({ kind: 'crashed', signal: this.#exit.signal, stderr });
    } else {
      const exitCode = this.#exit?.code ?? -1;
      const stdout = decodeText(Buffer.concat(this.#stdout));
      if (stdout === undefined && exitCode === 0) this.#finish({ kind: 'bad-output', stderr });
      else this.#finish({ kind: 'exited', exitCode, stdout: stdout ?? '', stderr });
    }
  }

  #finish(outcome: RunOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearTimers();
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#resolve(outcome);
  }

  #after(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      action();
    }, ms);
    this.#timers.add(timer);
  }

  #clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

function spawnFailed(file: string, error: unknown): RunOutcome {
  const errno = (error as NodeJS.ErrnoException).code;
  const detail =
    errno === 'ENOENT'
      ? 'not found (no such file, or not on PATH)'
      : errno === 'EACCES'
        ? 'permission denied (is it executable?)'
        : error instanceof Error
          ? error.message
          : String(error);
  return { kind: 'spawn-failed', errno, message: `cannot run ${file}: ${detail}` };
}

/** The last ~`bytes` of a stderr text, trimmed, for an error message. */
export function stderrTail(stderr: string, bytes = 1024): string {
  const trimmed = stderr.trim();
  const buffer = Buffer.from(trimmed, 'utf8');
  if (buffer.length <= bytes) return trimmed;
  return `…${buffer.subarray(buffer.length - bytes).toString('utf8')}`;
}

/**
 * The error code and message for any outcome other than a clean exit (exit code 0); null for that one.
 * `what` names the program in the message ("action 'open-door'").
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text, or undefined when they are not valid UTF-8. */
function decodeText(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export function outcomeError(
  outcome: RunOutcome,
  what: string,
  timeoutMs: number,
): { code: string; message: string } | null {
  const withStderr = (message: string, stderr: string): string => {
    const tail = stderrTail(stderr);
    return tail === '' ? message : `${message}: ${tail}`;
  };
  switch (outcome.kind) {
    case 'exited':
      return outcome.exitCode === 0
        ? null
        : {
            code: 'exit',
            message: withStderr(`${what} exited with code ${outcome.exitCode}`, outcome.stderr),
          };
    case 'crashed':
      return {
        code: 'crashed',
        message: withStderr(`${what} was killed by ${outcome.signal}`, outcome.stderr),
      };
    case 'spawn-failed':
      return { code: 'spawn-failed', message: `${what}: ${outcome.message}` };
    case 'timeout':
      return { code: 'timeout', message: `${what} timed out after ${timeoutMs} ms and was killed` };
    case 'aborted':
      return { code: 'aborted', message: `${what} was cancelled and killed` };
    case 'output-too-large':
      return { code: 'output-too-large', message: `${what} wrote too much output and was killed` };
    case 'bad-output':
      return {
        code: 'bad-output',
        message: withStderr(`${what} printed bytes that are not UTF-8 text`, outcome.stderr),
      };
  }
}
