// One agent per data_dir: a second one would run with the same identity, queue and keys, and the two would
// take each other's links in turn. <data_dir>/agent.pid holds the PID of the agent that runs there; a start
// finding a live agent's PID refuses, naming it. A PID file left by a crash (no such process, or a process
// that is not a nearmesh agent) is taken over.
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NearmeshError } from '../core/errors.js';

export const LOCK_FILE = 'agent.pid';

/** Another agent runs on this data_dir. */
export class DataDirLockedError extends NearmeshError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      'data-dir-locked',
      `another agent (PID ${pid}) is already running with data_dir ${dataDir}: stop it first, or give this one its own data_dir`,
    );
  }
}

export interface DataDirLock {
  /** Removes the PID file, if it is still ours. */
  release(): Promise<void>;
}

/** Takes data_dir for this process; throws DataDirLockedError when a live agent holds it. */
export async function lockDataDir(dataDir: string, pid = process.pid): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, 'wx', 0o644);
      await file.writeFile(`${pid}\n`);
      await file.close();
      return {
        release: async () => {
          const holder = await readPid(path);
          if (holder === pid) await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readPid(path);
    if (holder !== undefined && holder !== pid && (await isAgent(holder)))
      throw new DataDirLockedError(dataDir, holder);
    // Left by a crash (or half written): take it over.
    await rm(path, { force: true });
  }
  throw new NearmeshError('data-dir-lock', `cannot take ${path}: it keeps coming back`);
}

async function readPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether `pid` is a live node process running an agent (a PID reused by something else is not). */
async function isAgent(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return false;
  const args = cmdline.split('\0');
  return args.includes('agent') || args.some((arg) => arg.includes('nearmesh'));
}
