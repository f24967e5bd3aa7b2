// The protocol v1 baseline of rows 8c and 18-20: the last v1 commit, exported from this repository's git
// history (`git archive`, no network), compiled with this repository's TypeScript against its node_modules
// (symlinked), and kept under the OS temp dir keyed by the commit, so only the first run pays the ~10 s build.
// A v1 agent cannot talk to a v2 one (the handshakes differ): v1 rows run v1 agents against v1 agents, from
// this build, on the same machine in the same run as the v2 side. If the build fails, the rows that need it
// fail with the reason: a v2 figure without its baseline is not a result.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DecodeResult, Message } from '../../agent/protocol/index.js';
import { withTimeout } from './timing.js';

/** The last commit that speaks protocol v1 (the one before the v2 series began). */
export const V1_COMMIT = 'fac99ef';
/** Checked after the build: every v1 row needs these. */
const CLI = 'dist/agent/cli/main.js';
const PROTOCOL = 'dist/agent/protocol/index.js';
/** Written last: a directory without it is a build that did not finish. */
const MARKER = '.nearmesh-v1-baseline.json';
const BUILD_TIMEOUT_MS = 300_000;

/** The repository this bench was built from: dist/scripts/bench/ is three levels below it. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface V1Baseline {
  /** The full commit hash. */
  readonly commit: string;
  readonly dir: string;
  /** `nearmesh` of the v1 build (node <cli> agent ...). */
  readonly cliPath: string;
  /** v1's encodeMessage: the v1 Message is the v2 one without `auth` (and ids were random below 2^31). */
  readonly encodeMessage: (message: Message) => Uint8Array;
  readonly decodeMessage: (bytes: Uint8Array) => DecodeResult;
}

export class BaselineBuildError extends Error {
  constructor(detail: string) {
    super(`the v1 baseline (${V1_COMMIT}) cannot be built: ${detail}`);
  }
}

interface Marker {
  readonly commit: string;
  readonly typescript: string;
}

let building: Promise<V1Baseline> | undefined;

/** The v1 build, made on first use and cached (per process, and on disk per commit and TypeScript version). */
export function v1Baseline(): Promise<V1Baseline> {
  building ??= loadOrBuild();
  return building;
}

function run(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    const reason = result.error?.message ?? (result.stderr.trim() || `exit status ${result.status}`);
    throw new BaselineBuildError(`${command} ${args.join(' ')}: ${reason.slice(-500)}`);
  }
  return result.stdout.trim();
}

function typescriptVersion(): string {
  const manifest = join(REPO_ROOT, 'node_modules', 'typescript', 'package.json');
  if (!existsSync(manifest)) throw new BaselineBuildError(`no TypeScript at ${manifest} (npm ci first)`);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

function isBuilt(dir: string, expected: Marker): boolean {
  try {
    const marker = JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as Marker;
    return (
      marker.commit === expected.commit &&
      marker.typescript === expected.typescript &&
      existsSync(join(dir, CLI)) &&
      existsSync(join(dir, PROTOCOL))
    );
  } catch {
    return false;
  }
}

async function loadOrBuild(): Promise<V1Baseline> {
  const commit = run('git', ['rev-parse', '--verify', `${V1_COMMIT}^{commit}`]);
  const marker: Marker = { commit, typescript: typescriptVersion() };
  const dir = join(tmpdir(), `nearmesh-bench-v1-${commit}-ts${marker.typescript}`);
  if (!isBuilt(dir, marker)) {
    process.stderr.write(`[building the v1 baseline ${V1_COMMIT} in ${dir}] `);
    await build(dir, marker);
  }
  linkNodeModules(dir);
  const protocol = (await import(pathToFileURL(join(dir, PROTOCOL)).href)) as {
    encodeMessage?: unknown;
    decodeMessage?: unknown;
  };
  if (typeof protocol.encodeMessage !== 'function' || typeof protocol.decodeMessage !== 'function')
    throw new BaselineBuildError(`${join(dir, PROTOCOL)} has no encodeMessage or decodeMessage`);
  return {
    commit,
    dir,
    cliPath: join(dir, CLI),
    encodeMessage: protocol.encodeMessage as V1Baseline['encodeMessage'],
    decodeMessage: protocol.decodeMessage as V1Baseline['decodeMessage'],
  };
}

/**
 * The build runs against this checkout's node_modules: a cached build made from another checkout (whose
 * node_modules may be gone) is pointed here again.
 */
function linkNodeModules(dir: string): void {
  const link = join(dir, 'node_modules');
  const target = join(REPO_ROOT, 'node_modules');
  let current: string | undefined;
  try {
    current = readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current === target) return;
  rmSync(link, { force: true });
  symlinkSync(target, link, 'dir');
}

/** Exports, links node_modules, compiles in a scratch directory, then moves it in place in one rename. */
async function build(dir: string, marker: Marker): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'nearmesh-bench-v1-build-'));
  try {
    const source = join(scratch, 'tree');
    mkdirSync(source);
    const archive = join(scratch, 'tree.tar');
    run('git', ['archive', '--format=tar', `--output=${archive}`, marker.commit]);
    run('tar', ['-xf', archive, '-C', source]);
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
    await compile(source);
    for (const file of [CLI, PROTOCOL])
      if (!existsSync(join(source, file))) throw new BaselineBuildError(`the build made no ${file}`);
    writeFileSync(join(source, MARKER), `${JSON.stringify(marker)}\n`);
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(source, dir);
    } catch (error) {
      // Another bench built it at the same moment: theirs is as good as ours.
      if (!isBuilt(dir, marker)) throw error;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** tsc -p tsconfig.build.json in `source`, with this repository's TypeScript; rejects with its output. */
async function compile(source: string): Promise<void> {
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const child = spawn(process.execPath, [tsc, '-p', join(source, 'tsconfig.build.json')], {
    cwd: source,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-2_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exit = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
  let code: number | null;
  try {
    code = await withTimeout(exit, BUILD_TIMEOUT_MS, 'compiling the v1 baseline');
  } catch (error) {
    child.kill('SIGKILL');
    throw new BaselineBuildError(error instanceof Error ? error.message : String(error));
  }
  if (code !== 0) throw new BaselineBuildError(`tsc exited with ${code}: ${output.trim().slice(-500)}`);
}
