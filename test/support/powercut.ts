// The power-cut file system (scripts/powercut) for tests: a mount whose unsynced writes a cut drops, as an SD
// card after the power came back.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { until } from './until.js';

export const POWERCUT = resolve(import.meta.dirname, '../../scripts/powercut/powercut');

/** Why a power-cut mount cannot be made here, or undefined when it can. */
export function whyPowercutUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux FUSE';
  if (process.getuid?.() !== 0) return 'needs root to mount FUSE with allow_other';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  if (spawnSync('fusermount3', ['-V']).status !== 0) return 'needs fusermount3 (apt-get install fuse3)';
  if (spawnSync('pkg-config', ['--exists', 'fuse3']).status !== 0)
    return 'needs libfuse3 headers (apt-get install libfuse3-dev pkg-config)';
  if (spawnSync('cc', ['--version']).status !== 0) return 'needs a C compiler (apt-get install gcc)';
  return undefined;
}

function isMounted(path: string): boolean {
  return spawnSync('mountpoint', ['-q', path]).status === 0;
}

/** A power-cut mount over a fresh backing directory; `path` is where to use it. */
export class PowercutMount {
  readonly root = mkdtempSync(join(tmpdir(), 'nearmesh-powercut-'));
  readonly backing = join(this.root, 'backing');
  readonly path = join(this.root, 'mount');
  #process: ChildProcess | undefined;
  #stderr = '';

  async mount(): Promise<void> {
    mkdirSync(this.backing, { recursive: true });
    mkdirSync(this.path, { recursive: true });
    const child = spawn(POWERCUT, ['mount', this.backing, this.path], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.#process = child;
    await until(
      () => `the power-cut mount at ${this.path}: ${this.#stderr}`,
      () => {
        if (child.exitCode !== null)
          throw new Error(`powercut mount exited ${child.exitCode}: ${this.#stderr}`);
        return isMounted(this.path);
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
  }

  /** Drops every unsynced write (with `tornSeed`, keeps a random prefix of the data writes); the answer line. */
  cut(tornSeed?: number): string {
    const args = tornSeed === undefined ? ['cut', this.path] : ['cut', '--torn', String(tornSeed), this.path];
    const result = spawnSync(POWERCUT, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`powercut cut failed: ${result.stderr}${result.stdout}`);
    return result.stdout.trim();
  }

  /** Unmounts (a clean unmount writes what is held) and, unless `keepFiles`, removes the directories. */
  async unmount(options: { keepFiles?: boolean } = {}): Promise<void> {
    const child = this.#process;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      spawnSync('fusermount3', ['-u', this.path]);
      await exited;
    }
    if (options.keepFiles !== true) rmSync(this.root, { recursive: true, force: true });
  }
}
