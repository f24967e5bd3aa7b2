// Processes a benchmark starts (agents, bare node): spawned with a clean agent environment, the tail of
// their output kept for error messages, stopped by their own pid only.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** How long a child has between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_CHARS = 2_000;

/** A child we started, with the tail of its output. */
export interface BenchChild {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  output: string;
}

/** Starts `command args`; an agent in it reads only the config it is given (no NEARMESH_* from us). */
export function startChild(command: string, args: readonly string[]): BenchChild {
  const env = { ...process.env };
  delete env.NEARMESH_CONFIG;
  delete env.NEARMESH_SOCKET;
  delete env.NEARMESH_LOG_LEVEL;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
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
