// BLE emulator harness: BlueZ's `btvirt -s` (Debian bluez-test-tools) in a private mount namespace,
// patched at run time by a small LD_PRELOAD library, with N emulated LE controllers exposed as ptys
// (H4 HCI over a "UART") by socat. @stoprocent/noble and @stoprocent/bleno drive a pty with their
// UART driver exactly as they would drive an HCI-UART controller on a Pi. See README.md here.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** How long an emulated controller lives. */
export type ControllerLifetime = 'persistent' | 'per-open';

export interface StartEmulatorOptions {
  /** Number of emulated LE controllers (ptys). Each BLE role of an agent needs one. */
  controllers: number;
  /**
   * 'persistent' (default): each controller exists from start to stop, like a UART controller
   * wired to a Pi; a host that closes and reopens its pty finds the same controller (same address,
   * and whatever state the previous host left in it: noble and bleno send HCI Reset on open).
   * 'per-open': a controller is created when a host opens the pty and destroyed when it closes it
   * (socat `wait-slave`); the harness then puts a fresh pty on the same path.
   */
  lifetime?: ControllerLifetime;
  /** Directory for the sockets and pty links (default: a fresh one under os.tmpdir()). */
  dir?: string;
  /** Run btvirt with -d (it prints every HCI packet it handles: slow, for debugging). */
  debug?: boolean;
  /** Receives every line btvirt, the preload library and socat print. */
  log?: (line: string) => void;
  /** Milliseconds to wait for btvirt and each pty (default 5000). */
  timeoutMs?: number;
}

export interface BleEmulator {
  /** pty path of controller i (a symlink to /dev/pts/N), for `uart:<path>` / bindParams.uart.port. */
  readonly ptys: string[];
  /** The run's directory: btvirt's sockets (bt-server-le, ...) and the pty links. */
  readonly dir: string;
  /** btvirt's LE server socket: every connection to it is one more emulated LE controller. */
  readonly socketPath: string;
  /** PID of btvirt. */
  readonly pid: number;
  /** Everything printed so far (last 256 KiB). */
  output(): string;
  /** Simulates unplugging controller i: its socat is stopped, the pty vanishes, the controller is destroyed. */
  unplug(index: number): Promise<void>;
  /** Plugs controller i back in: a new controller (new state) on the same pty path. */
  replug(index: number): Promise<void>;
  /** Stops every process this emulator started and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

const ASSET_NAMES = ['btvirt-preload.c', 'build.sh'];

/** Where btvirt-preload.c and build.sh live, from the TypeScript source or from dist/. */
export function assetDirectory(): string {
  const here = import.meta.dirname;
  const candidates = [here, resolve(here, '../../../scripts/ble-emulator')];
  for (const candidate of candidates) {
    if (ASSET_NAMES.every((name) => existsSync(join(candidate, name)))) return candidate;
  }
  throw new Error(`cannot find ${ASSET_NAMES.join(' and ')} near ${here}`);
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Why the emulator cannot run on this machine, or undefined when it can. */
export function whyEmulatorUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (btvirt, mount namespaces)';
  if (process.getuid?.() !== 0) return 'needs root (unshare -m and mount for a private /tmp)';
  const tools: [command: string, debianPackage: string][] = [
    ['btvirt', 'bluez-test-tools'],
    ['socat', 'socat'],
    ['unshare', 'util-linux'],
    ['cc', 'gcc'],
  ];
  const missing = tools
    .filter(([command]) => !onPath(command))
    .map(([command, pkg]) => `${command} (apt-get install ${pkg})`);
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  return undefined;
}

/** Builds the LD_PRELOAD library (if its source changed) and returns its path. */
export function buildPreload(outDir?: string): string {
  const script = join(assetDirectory(), 'build.sh');
  const args = outDir === undefined ? [script] : [script, outDir];
  return execFileSync('sh', args, { encoding: 'utf8' }).trim();
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

async function terminate(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

// Every process started by any emulator in this Node process, killed if Node exits without stop().
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

// The namespace side: bind-mount the run directory on /tmp (btvirt's socket paths are fixed to
// /tmp/bt-server-*), leave /tmp, and become btvirt with the preload library (copied into the run
// directory first: anything else under the real /tmp is hidden from here on). `unshare` execs the
// shell and the shell execs btvirt, so the PID we spawned is btvirt's.
const NAMESPACE_SCRIPT =
  'set -e; mount --bind "$1" /tmp; cd /; export LD_PRELOAD=/tmp/btvirt-preload.so; shift; exec btvirt -s "$@"';

/** Starts btvirt and N controllers; resolves once every pty exists. */
export async function startEmulator(options: StartEmulatorOptions): Promise<BleEmulator> {
  const count = options.controllers;
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    // btdev keeps at most 16 controllers per btvirt process (MAX_BTDEV_ENTRIES).
    throw new Error(`controllers must be an integer from 1 to 16, got ${count}`);
  }
  const reason = whyEmulatorUnavailable();
  if (reason !== undefined) throw new Error(`BLE emulator unavailable: ${reason}`);
  const lifetime = options.lifetime ?? 'persistent';
  const timeoutMs = options.timeoutMs ?? 5000;
  const preload = buildPreload();
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'nearmesh-ble-'));
  mkdirSync(dir, { recursive: true });
  const socketPath = join(dir, 'bt-server-le');
  const ptyPath = (index: number) => join(dir, `hci${index}`);
  const ptys = Array.from({ length: count }, (_, i) => ptyPath(i));

  let text = '';
  const socats: (ChildProcess | undefined)[] = new Array(count).fill(undefined);
  const record = (source: string) => (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const tagged = `[${source}] ${line}`;
      text = `${text}${tagged}\n`.slice(-256 * 1024);
      options.log?.(tagged);
      // The preload library gave up on a client that took no data (its host stopped reading the
      // pty): that socat is stuck writing to the pty; stop it so a fresh controller takes its place.
      const shut = /shut-client-pid=(\d+)/.exec(line);
      if (shut !== null) socats.find((child) => child?.pid === Number(shut[1]))?.kill('SIGTERM');
    }
  };

  copyFileSync(preload, join(dir, 'btvirt-preload.so'));
  const btvirt = spawn(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', NAMESPACE_SCRIPT, 'nearmesh-btvirt', dir].concat(
      options.debug ? ['-d'] : [],
    ),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(btvirt);
  btvirt.stdout?.on('data', record('btvirt'));
  btvirt.stderr?.on('data', record('btvirt'));

  let stopping = false;
  const unplugged = new Set<number>();

  const cleanup = async () => {
    stopping = true;
    await Promise.all(socats.map((s) => (s === undefined ? undefined : terminate(s))));
    await terminate(btvirt);
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };

  const fail = async (message: string): Promise<never> => {
    await cleanup();
    throw new Error(`${message}\n--- emulator output ---\n${text}`);
  };

  const btvirtExited = () => btvirt.exitCode !== null || btvirt.signalCode !== null;
  let started = false;
  // While starting, any failure stops everything; later (respawn, replug) it only throws.
  const waitUntil = async (what: string, test: () => boolean) => {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      let problem: string | undefined;
      if (btvirtExited()) problem = `btvirt exited (${btvirt.exitCode ?? btvirt.signalCode})`;
      else if (Date.now() > deadline) problem = `timed out after ${timeoutMs} ms`;
      if (problem !== undefined) {
        if (!started) await fail(`${problem} while waiting for ${what}`);
        throw new Error(`${problem} while waiting for ${what}\n--- emulator output ---\n${text}`);
      }
      await sleep(10);
    }
  };

  const restarts = new Map<number, number>();
  const startSocat = async (index: number) => {
    const path = ptyPath(index);
    const pty = `PTY,link=${path},raw,echo=0${lifetime === 'per-open' ? ',wait-slave' : ''}`;
    const unix = `UNIX-CONNECT:${socketPath}`;
    // persistent: connect first, then make the pty, so the link exists only once the controller
    // does, and controllers are created (and numbered, hence addressed) in index order.
    // per-open: make the pty, wait for a host to open it, then connect.
    const args = lifetime === 'per-open' ? [pty, unix] : [unix, pty];
    rmSync(path, { force: true }); // a link left by a socat that was killed hard
    const child = spawn('socat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const startedAt = Date.now();
    track(child);
    socats[index] = child;
    child.stdout?.on('data', record(`socat hci${index}`));
    child.stderr?.on('data', record(`socat hci${index}`));
    child.once('exit', (code, signal) => {
      if (socats[index] === child) socats[index] = undefined;
      if (stopping || unplugged.has(index) || btvirtExited()) return;
      // per-open: the host closed the pty. persistent: btvirt dropped the client. Either way the
      // controller is gone; put a fresh one on the same path.
      // A controller that dies at once again and again (btvirt refusing clients) backs off to 2 s.
      const quickDeaths = Date.now() - startedAt < 1000 ? (restarts.get(index) ?? 0) + 1 : 0;
      restarts.set(index, quickDeaths);
      const delay = Math.min(2000, 20 * 2 ** quickDeaths);
      record(`socat hci${index}`)(
        Buffer.from(`exited (${code ?? signal}); new controller on ${path} in ${delay} ms`),
      );
      setTimeout(() => {
        if (!stopping && !unplugged.has(index) && socats[index] === undefined) {
          startSocat(index).catch((error: unknown) =>
            record(`socat hci${index}`)(Buffer.from(`restart failed: ${String(error).split('\n')[0]}`)),
          );
        }
      }, delay);
    });
    await waitUntil(`pty ${path}`, () => isLink(path));
  };

  await waitUntil(`btvirt's socket ${socketPath}`, () => isSocket(socketPath));
  // Without the library btvirt runs but refuses every LE controller: make sure it is in.
  await waitUntil('the preload library to load into btvirt', () => text.includes('btvirt-preload: loaded'));
  for (let i = 0; i < count; i++) await startSocat(i);
  started = true;

  const checkIndex = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new Error(`no controller ${index}`);
  };

  return {
    ptys,
    dir,
    socketPath,
    pid: btvirt.pid ?? -1,
    output: () => text,
    async unplug(index) {
      checkIndex(index);
      unplugged.add(index);
      const child = socats[index];
      if (child !== undefined) await terminate(child);
    },
    async replug(index) {
      checkIndex(index);
      if (!unplugged.delete(index)) return;
      if (!stopping) await startSocat(index);
    },
    async stop() {
      if (stopping) return;
      await cleanup();
    },
  };
}
