// Processes a benchmark starts (agents, bare node): spawned with a clean agent environment, the tail of
// their output kept for error messages, stopped by their own pid only. Should the bench itself be
// stopped (SIGINT, SIGTERM) or exit mid-run, the children still running are killed by their pids too.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { constants } from 'node:os';

/** How long a child has between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_CHARS = 2_000;

/** Children started and not yet exited. */
const running = new Set<ChildProcess>();
/** Directories to remove should the bench exit before the benchmark that made them does. */
const directories = new Set<string>();
let exitHooksInstalled = false;

/** A benchmark's finally stops its children; these hooks cover the bench process going away first. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // An 'exit' listener can only act synchronously: SIGKILL, each child by its pid.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => process.exit(128 + constants.signals[signal]));
  }
}

/** `dir` goes with the bench process if the benchmark has not removed it (and called forget) by then. */
export function removeOnExit(dir: string): void {
  installExitHooks();
  directories.add(dir);
}

export function forgetOnExit(dir: string): void {
  directories.delete(dir);
}

/** A child we started, with the tail of its output. */
export interface BenchChild {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  output: string;
}

/**
 * Starts `command args`; an agent in it reads only the config it is given (no NEARMESH_* from us).
 * stdin is /dev/null unless `stdin` is 'pipe' (a child driven line by line).
 */
export function startChild(
  command: string,
  args: readonly string[],
  stdin: 'ignore' | 'pipe' = 'ignore',
): BenchChild {
  const env = { ...process.env };
  delete env.NEARMESH_CONFIG;
  delete env.NEARMESH_SOCKET;
  delete env.NEARMESH_LOG_LEVEL;
  installExitHooks();
  const child = spawn(command, args, { stdio: [stdin, 'pipe', 'pipe'], env });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const started: BenchChild = {
    child,
    exited: once(child, 'exit').then(
      () => undefined,
      () => undefined,
    ),
    output: '',
  };
  const keepTail = (chunk: Buffer): void => {
    started.output = (started.output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  return started;
}

export function isRunning(started: BenchChild): boolean {
  return started.child.exitCode === null && started.child.signalCode === null;
}

/** SIGTERM to this child's pid only, SIGKILL if it has not exited after the grace period. */
export async function stopChild(started: BenchChild): Promise<void> {
  if (!isRunning(started)) return;
  started.child.kill('SIGTERM');
  const timer = setTimeout(() => started.child.kill('SIGKILL'), STOP_GRACE_MS);
  await started.exited;
  clearTimeout(timer);
}
