// The checks behind `nearmesh doctor`: this device, before (or while) the agent runs, without needing it:
// the config, Node, the board, the clock, data_dir and its disk, the Wi-Fi listen port, the BLE adapters,
// bluetoothd, the capabilities raw HCI needs, and (from telemetry) temperature and power. Each check says
// ok / warn / fail and what to do about it. It never sends traffic: the port check only binds (on
// loopback for a wildcard host).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { createServer, isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { type BoardDetection, detectBoard } from '../../boards/index.js';
import { type Config, ConfigError, configFilePath, loadConfig, loadMeshKey } from '../config/index.js';
import { ControlClient } from '../control/client.js';
import { type BleAdapter, formatBleAdapter } from '../core/ble-adapter.js';
import type { HostPort } from '../core/host-port.js';
import { findPortHolder } from '../ops/port-holder.js';
import { readTelemetry, type Telemetry } from '../ops/telemetry.js';
import { loadMembership } from '../trust/membership.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** Stable identifier ("wifi.port"), for programs. */
  readonly id: string;
  readonly status: CheckStatus;
  readonly message: string;
  /** What to do about a warn or fail. */
  readonly fix?: string;
}

export interface DoctorReport {
  /** No check failed (warnings allowed). */
  readonly ok: boolean;
  readonly board: { readonly id: string; readonly name: string; readonly model: string | null };
  readonly checks: readonly DoctorCheck[];
  readonly telemetry: Telemetry;
}

export interface DoctorOptions {
  /** --config; else $NEARMESH_CONFIG, else the embedded defaults (as `nearmesh agent` does). */
  readonly configPath?: string;
  /** File root for /proc and /sys (tests); default "/". Config paths (data_dir, UART devices) are not re-rooted. */
  readonly root?: string;
  readonly now?: Date;
  readonly nodeVersion?: string;
  /** Where bare program names are looked up (tests); default $PATH. */
  readonly path?: string;
}

const MIN_NODE_MAJOR = 20;
const MIN_PLAUSIBLE_YEAR = 2024;
const DISK_FAIL_BYTES = 10 * 1024 * 1024;
const DISK_WARN_BYTES = 100 * 1024 * 1024;
const HOT_CELSIUS = 80;
const CONTROL_TIMEOUT_MS = 1000;
// Linux capability numbers (linux/capability.h).
const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const root = options.root ?? '/';
  const checks: DoctorCheck[] = [];

  let config: Config | undefined;
  try {
    config = await loadConfig(options.configPath === undefined ? {} : { path: options.configPath });
    const file = configFilePath(options.configPath === undefined ? {} : { path: options.configPath });
    checks.push({
      id: 'config',
      status: 'ok',
      message:
        file === undefined
          ? 'embedded defaults (no --config, NEARMESH_CONFIG not set)'
          : `${file}${options.configPath === undefined ? ' (from NEARMESH_CONFIG)' : ''}`,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    checks.push({
      id: 'config',
      status: 'fail',
      message: error.message,
      fix: 'correct what the message names (docs/OPERATIONS.md, "Config file"); the checks that need the config were skipped',
    });
  }

  checks.push(checkNode(options.nodeVersion ?? process.versions.node));
  const board = await detectBoard(root);
  checks.push(checkBoard(board));
  checks.push(checkClock(options.now ?? new Date()));

  const telemetry = await readTelemetry({
    root,
    ...(config === undefined ? {} : { diskPath: config.dataDir }),
  });
  if (config !== undefined) {
    checks.push(await checkDataDir(config.dataDir));
    checks.push(checkDisk(telemetry, config.dataDir));
    checks.push(await checkMesh(config));
    if (config.resolvers.length > 0)
      checks.push(await checkResolverPrograms(config, options.path ?? process.env.PATH));
    checks.push(await checkWifiPort(config));
    checks.push(await checkMqttPort(config));
    checks.push(...(await checkBle(config, board, root)));
  }
  checks.push(...checkHealth(telemetry));

  return {
    ok: checks.every((check) => check.status !== 'fail'),
    board: { id: board.profile.id, name: board.profile.name, model: board.model },
    checks,
    telemetry,
  };
}

// --- environment -------------------------------------------------------------------------------------

export function checkNode(version: string): DoctorCheck {
  const major = Number(version.replace(/^v/, '').split('.')[0]);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR)
    return { id: 'node', status: 'ok', message: `Node.js ${version}` };
  return {
    id: 'node',
    status: 'fail',
    message: `Node.js ${version}: nearmesh needs ${MIN_NODE_MAJOR} or newer`,
    fix: `install Node.js ${MIN_NODE_MAJOR} or newer (Raspberry Pi OS Bookworm: apt-get install nodejs, or NodeSource)`,
  };
}

export function checkBoard(board: BoardDetection): DoctorCheck {
  const { profile, model } = board;
  if (profile.id !== 'generic-linux') {
    const { ble } = profile.defaults;
    return {
      id: 'board',
      status: 'ok',
      message: `${profile.name} ("${model}"); suggests ble ${ble.peripheral}, max_links ${ble.maxLinks}`,
    };
  }
  if (model === null) return { id: 'board', status: 'ok', message: 'generic Linux (no device-tree model)' };
  if (model.startsWith('Raspberry Pi'))
    return {
      id: 'board',
      status: 'warn',
      message: `"${model}" has no nearmesh profile; generic Linux defaults apply`,
      fix: 'check [ble] max_links suits its controller (onboard Pi chips hold about 4)',
    };
  return { id: 'board', status: 'ok', message: `generic Linux ("${model}")` };
}

export function checkClock(now: Date): DoctorCheck {
  if (now.getUTCFullYear() >= MIN_PLAUSIBLE_YEAR)
    return { id: 'clock', status: 'ok', message: now.toISOString() };
  return {
    id: 'clock',
    status: 'warn',
    message: `the clock says ${now.toISOString()}: not set yet`,
    fix: 'most Pis have no real-time clock: wait for NTP (timedatectl status) or set it (sudo date -s ...)',
  };
}

// --- data_dir and disk -------------------------------------------------------------------------------

async function nearestExisting(path: string): Promise<string> {
  let current = resolve(path);
  for (;;) {
    try {
      await stat(current);
      return current;
    } catch {
      const parent = dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** Whether this device is in a mesh yet, and the next step when it is not. */
export async function checkMesh(config: Config): Promise<DoctorCheck> {
  const id = 'mesh';
  if (config.meshKey !== undefined)
    return { id, status: 'ok', message: 'mesh key from the config (mesh_key)' };
  let key: Uint8Array | undefined;
  try {
    key = await loadMeshKey(config.dataDir);
  } catch (error) {
    return {
      id,
      status: 'fail',
      message: (error as Error).message,
      fix: `fix or remove ${join(config.dataDir, 'mesh.key')} (removing it takes the device out of its mesh)`,
    };
  }
  if (key !== undefined) {
    const membership = await loadMembership(config.dataDir).catch(() => undefined);
    const name = membership?.name ? `"${membership.name}"` : 'unnamed';
    return { id, status: 'ok', message: `in mesh ${name} (key in ${join(config.dataDir, 'mesh.key')})` };
  }
  return {
    id,
    status: 'warn',
    message: 'no mesh yet: the agent serves this device only and waits to be invited',
    fix: 'run `nearmesh invite` on an agent of your mesh, then `nearmesh join CODE` here; or `nearmesh invite` here to start a new mesh',
  };
}

/**
 * Each `[[resolvers]] exec` program can be run by this user: a path that exists and is executable, or a bare
 * name found on PATH. The agent would otherwise restart it with back-off forever, saying ENOENT.
 */
export async function checkResolverPrograms(config: Config, path = ''): Promise<DoctorCheck> {
  const problems: string[] = [];
  for (const resolver of config.resolvers) {
    const program = resolver.exec[0] as string;
    const places = program.includes('/')
      ? [program]
      : path
          .split(':')
          .filter(Boolean)
          .map((dir) => join(dir, program));
    let runnable = false;
    for (const place of places) {
      try {
        await access(place, constants.X_OK);
        runnable = true;
        break;
      } catch {
        // Not here: the next place, if any.
      }
    }
    if (!runnable)
      problems.push(
        `${resolver.name}: ${program} ${program.includes('/') ? 'is missing or not executable' : 'is not on PATH'}`,
      );
  }
  const names = config.resolvers.map((resolver) => resolver.name).join(', ');
  return problems.length === 0
    ? { id: 'resolvers', status: 'ok', message: `programs of ${names} can run` }
    : {
        id: 'resolvers',
        status: 'fail',
        message: problems.join('; '),
        fix: 'install the program or correct [[resolvers]] exec (an absolute path, chmod +x); `nearmesh resolvers` on the running agent says how it fails',
      };
}

export async function checkDataDir(dataDir: string): Promise<DoctorCheck> {
  const id = 'data_dir';
  const fix = `run as the user the agent runs as, or give it the directory (sudo mkdir -p ${dataDir} && sudo chown "$USER" ${dataDir}), or set data_dir`;
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dataDir)).isDirectory();
  } catch {
    const parent = await nearestExisting(dataDir);
    try {
      await access(parent, constants.W_OK);
      return { id, status: 'ok', message: `${dataDir} does not exist yet; the agent creates it` };
    } catch (error) {
      return {
        id,
        status: 'fail',
        message: `${dataDir} does not exist and ${parent} is not writable (${errorCode(error)})`,
        fix,
      };
    }
  }
  if (!isDirectory)
    return {
      id,
      status: 'fail',
      message: `${dataDir} is not a directory`,
      fix: 'set data_dir to a directory',
    };
  // Writing a file is the only test that also catches a read-only file system and ACLs.
  const probe = join(dataDir, `.doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await unlink(probe);
    return { id, status: 'ok', message: `${dataDir} is writable` };
  } catch (error) {
    return { id, status: 'fail', message: `${dataDir} is not writable (${errorCode(error)})`, fix };
  }
}

function mib(bytes: number): string {
  return `${Math.floor(bytes / (1024 * 1024))} MiB`;
}

export function checkDisk(telemetry: Telemetry, dataDir: string): DoctorCheck {
  const disk = telemetry.disk;
  if (disk === null)
    return { id: 'disk', status: 'warn', message: `cannot read the free space of ${dataDir}` };
  const message = `${mib(disk.available_bytes)} free of ${mib(disk.total_bytes)} on ${disk.path}`;
  const fix =
    'free space on that file system (journalctl --vacuum-size=50M, apt-get clean), or move data_dir';
  if (disk.available_bytes < DISK_FAIL_BYTES) return { id: 'disk', status: 'fail', message, fix };
  if (disk.available_bytes < DISK_WARN_BYTES) return { id: 'disk', status: 'warn', message, fix };
  return { id: 'disk', status: 'ok', message };
}

// --- Wi-Fi listen port -------------------------------------------------------------------------------

/**
 * Where to try the port: loopback for a wildcard (binding every interface, even for a moment, is not a
 * doctor's business; on Linux a loopback bind still collides with a wildcard listener), the address
 * itself for an IP literal, loopback for a name (resolving it could send a query).
 */
function probeHost(host: string): { host: string; note: string } {
  if (host === '0.0.0.0') return { host: '127.0.0.1', note: '' };
  if (host === '::') return { host: '::1', note: '' };
  if (isIP(host) !== 0) return { host, note: '' };
  return {
    host: '127.0.0.1',
    note: host === 'localhost' ? '' : ` (tried on 127.0.0.1; ${host} not resolved)`,
  };
}

function tryListen(host: string, port: number): Promise<string | null> {
  return new Promise((resolveListen) => {
    const server = createServer();
    server.once('error', (error) => resolveListen(errorCode(error)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolveListen(null)));
  });
}

/** The port the running agent of this config listens on, when one answers on its control socket. */
/** The running agent's PID and the ports it listens on (Wi-Fi links, MQTT), asked over its control socket. */
async function runningAgentPorts(
  socketPath: string,
): Promise<{ pid: number; wifi: number | undefined; mqtt: number | undefined } | null> {
  let client: ControlClient | undefined;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const answer = (async () => {
    const connected = await ControlClient.connect(socketPath);
    if (done) {
      connected.close();
      return null;
    }
    client = connected;
    return await connected.request({ cmd: 'status' });
  })();
  answer.catch(() => {}); // Settles after the timeout at worst; nobody waits for it then.
  const timeout = new Promise<null>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout(null), CONTROL_TIMEOUT_MS);
  });
  try {
    const status = await Promise.race([answer, timeout]);
    if (status === null) return null;
    const portOf = (address: string | null | undefined): number | undefined => {
      const port = Number(/:(\d+)$/.exec(address ?? '')?.[1]);
      return Number.isInteger(port) ? port : undefined;
    };
    const mqtt = status.mqtt.state === 'on' ? status.mqtt.listen : undefined;
    return { pid: status.pid, wifi: portOf(status.wifi.listen), mqtt: portOf(mqtt) };
  } catch {
    return null;
  } finally {
    done = true;
    clearTimeout(timer);
    client?.close();
  }
}

export async function checkWifiPort(config: Config): Promise<DoctorCheck> {
  const id = 'wifi.port';
  if (!config.wifi.enabled) return { id, status: 'ok', message: 'Wi-Fi off ([wifi] enabled = false)' };
  return checkListenPort(config, {
    id,
    key: '[wifi] listen',
    address: config.wifi.listen,
    defaultPort: 7450,
  });
}

export async function checkMqttPort(config: Config): Promise<DoctorCheck> {
  const id = 'mqtt.port';
  if (config.mqtt.listen === false) return { id, status: 'ok', message: 'MQTT off ([mqtt] listen = false)' };
  return checkListenPort(config, {
    id,
    key: '[mqtt] listen',
    address: config.mqtt.listen,
    defaultPort: 1883,
  });
}

/** Whether the agent could bind `address` now: free, held by the running agent itself, or by whom. */
async function checkListenPort(
  config: Config,
  what: { id: string; key: string; address: HostPort; defaultPort: number },
): Promise<DoctorCheck> {
  const { id, key, address } = what;
  const { port } = address;
  if (port === 0) return { id, status: 'ok', message: 'port 0: the agent takes an ephemeral port' };
  let { host, note } = probeHost(address.host);
  let error = await tryListen(host, port);
  if (host === '::1' && (error === 'EADDRNOTAVAIL' || error === 'EAFNOSUPPORT')) {
    // No IPv6 loopback (IPv6 off): the IPv4 one still shows a port held by a dual-stack listener.
    host = '127.0.0.1';
    note = ' (tried on 127.0.0.1: no IPv6 loopback)';
    error = await tryListen(host, port);
  }
  const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  if (error === null) return { id, status: 'ok', message: `${where} is free${note}` };
  if (error === 'EADDRINUSE') {
    const agent = await runningAgentPorts(config.control.socketPath);
    const agentPort = what.id === 'mqtt.port' ? agent?.mqtt : agent?.wifi;
    if (agent !== null && agentPort === port)
      return { id, status: 'ok', message: `${where} is in use by the running agent (pid ${agent.pid})` };
    const holder = await findPortHolder(port);
    const by = holder === undefined ? 'another program' : `${holder.name} (pid ${holder.pid})`;
    return {
      id,
      status: 'fail',
      message: `${where} is in use by ${by}${note}`,
      fix: `${holder === undefined ? `find it with: ss -ltnp 'sport = :${port}'; ` : ''}stop it, or set ${key} to a free port`,
    };
  }
  if (error === 'EACCES')
    return {
      id,
      status: 'fail',
      message: `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
      fix: `use a port of 1024 or above in ${key} (default ${what.defaultPort})`,
    };
  if (error === 'EADDRNOTAVAIL')
    return {
      id,
      status: 'fail',
      message: `${address.host} is not an address of this device`,
      fix: `set ${key} to "0.0.0.0:${port}" or to an address of this device (ip -brief address)`,
    };
  return { id, status: 'warn', message: `cannot try ${where}: ${error}` };
}

// --- BLE ---------------------------------------------------------------------------------------------

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function listAdapters(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, 'sys/class/bluetooth'))).filter((name) => /^hci\d+$/.test(name)).sort();
  } catch {
    return [];
  }
}

/** One entry per distinct adapter, with the roles that use it. */
function adapterRoles(config: Config): { adapter: BleAdapter; spec: string; roles: string[] }[] {
  const byName = new Map<string, { adapter: BleAdapter; spec: string; roles: string[] }>();
  for (const [role, adapter] of [
    ['peripheral', config.ble.peripheral],
    ['central', config.ble.central],
  ] as const) {
    const spec = formatBleAdapter(adapter);
    const entry = byName.get(spec) ?? { adapter, spec, roles: [] };
    entry.roles.push(role);
    byName.set(spec, entry);
  }
  return [...byName.values()];
}

async function checkBle(config: Config, board: BoardDetection, root: string): Promise<DoctorCheck[]> {
  if (config.ble.enabled === false)
    return [{ id: 'ble.adapters', status: 'ok', message: 'BLE off ([ble] enabled = false)' }];
  // With "auto" the agent runs on without BLE (a warning); with true it refuses to start (a failure).
  const missingStatus: CheckStatus = config.ble.enabled === true ? 'fail' : 'warn';
  const adapters = adapterRoles(config);
  const present = await listAdapters(root);
  const problems: string[] = [];
  const fixes: string[] = [];
  const fine: string[] = [];
  for (const { adapter, spec, roles } of adapters) {
    const label = `${spec} (${roles.join(', ')})`;
    if (adapter.kind === 'hci') {
      const path = join(root, `sys/class/bluetooth/hci${adapter.index}`);
      if (await exists(path)) {
        fine.push(label);
        continue;
      }
      problems.push(`${label}: no such adapter (/sys/class/bluetooth/hci${adapter.index} missing)`);
      fixes.push(
        `${present.length === 0 ? 'this device has no kernel Bluetooth adapter' : `adapters here: ${present.join(', ')}`}; set [ble] ${roles.join('/')} to one that exists, or [ble] enabled = false`,
      );
      if (adapter.index === 0 && board.profile.bluetoothChip !== null)
        fixes.push(
          'on a Pi, check /boot/firmware/config.txt for dtoverlay=disable-bt and that hciuart/bluetooth firmware loaded (dmesg | grep -i bluetooth)',
        );
    } else {
      try {
        await access(adapter.path, constants.R_OK | constants.W_OK);
        fine.push(label);
      } catch (error) {
        const code = errorCode(error);
        if (code === 'EACCES') {
          problems.push(`${label}: no permission to open ${adapter.path}`);
          fixes.push(
            'add the agent\'s user to the dialout group (sudo usermod -aG dialout "$USER"), or run it as root',
          );
        } else {
          problems.push(`${label}: ${adapter.path} does not exist (${code})`);
          fixes.push(
            `plug the controller in and check its device (ls -l /dev/ttyACM* /dev/ttyUSB*), or fix [ble] ${roles.join('/')}`,
          );
        }
      }
    }
  }
  const checks: DoctorCheck[] = [
    problems.length === 0
      ? { id: 'ble.adapters', status: 'ok', message: `present: ${fine.join('; ')}` }
      : {
          id: 'ble.adapters',
          status: missingStatus,
          message: [...problems, ...fine.map((label) => `${label} present`)].join('; '),
          fix: fixes.join('; '),
        },
  ];
  const kernelAdapters = adapters.filter(({ adapter }) => adapter.kind === 'hci').map(({ spec }) => spec);
  checks.push(await checkBluetoothd(root, kernelAdapters));
  checks.push(await checkCapabilities(root, kernelAdapters, missingStatus));
  return checks;
}

/** Pids of processes named `name` (from /proc/<pid>/comm). */
export async function findProcesses(root: string, name: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir(join(root, 'proc'));
  } catch {
    return [];
  }
  const pids = entries.filter((entry) => /^\d+$/.test(entry));
  const found = await Promise.all(
    pids.map(async (pid) => {
      try {
        return (await readFile(join(root, 'proc', pid, 'comm'), 'utf8')).trim() === name ? Number(pid) : null;
      } catch {
        return null; // The process ended meanwhile.
      }
    }),
  );
  return found.filter((pid): pid is number => pid !== null).sort((a, b) => a - b);
}

async function checkBluetoothd(root: string, kernelAdapters: string[]): Promise<DoctorCheck> {
  const id = 'bluetoothd';
  const pids = await findProcesses(root, 'bluetoothd');
  if (pids.length === 0) return { id, status: 'ok', message: 'bluetoothd is not running' };
  const running = `bluetoothd is running (pid ${pids.join(', ')})`;
  if (kernelAdapters.length === 0)
    return {
      id,
      status: 'ok',
      message: `${running}; nearmesh uses UART controllers, which it does not manage`,
    };
  return {
    id,
    status: 'warn',
    message: `${running} and also programs ${kernelAdapters.join(', ')}: it and nearmesh's raw HCI fight over the controller (advertising, scanning)`,
    fix: 'if nothing else needs it: sudo systemctl disable --now bluetooth; else give nearmesh a controller bluetoothd does not use ([ble] central/peripheral = "uart:...")',
  };
}

/** CapEff from /proc/<pid>/status as a bit set; null when unreadable. */
export function parseCapEff(statusText: string): bigint | null {
  const match = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(statusText);
  return match?.[1] === undefined ? null : BigInt(`0x${match[1]}`);
}

async function checkCapabilities(
  root: string,
  kernelAdapters: string[],
  missingStatus: CheckStatus,
): Promise<DoctorCheck> {
  const id = 'capabilities';
  if (kernelAdapters.length === 0)
    return { id, status: 'ok', message: 'not needed: UART controllers only (no raw HCI socket)' };
  const who = process.getuid?.() === 0 ? 'root' : `uid ${process.getuid?.() ?? '?'}`;
  let capEff: bigint | null = null;
  try {
    capEff = parseCapEff(await readFile(join(root, 'proc/self/status'), 'utf8'));
  } catch {
    // Unreadable: judged by uid below.
  }
  if (capEff === null)
    return who === 'root'
      ? { id, status: 'ok', message: 'running as root (capabilities unreadable)' }
      : { id, status: 'warn', message: "cannot read this process's capabilities (/proc/self/status)" };
  const missing = [
    ...(((capEff >> CAP_NET_RAW) & 1n) === 1n ? [] : ['CAP_NET_RAW']),
    ...(((capEff >> CAP_NET_ADMIN) & 1n) === 1n ? [] : ['CAP_NET_ADMIN']),
  ];
  if (missing.length === 0)
    return { id, status: 'ok', message: `CAP_NET_RAW and CAP_NET_ADMIN effective (${who})` };
  return {
    id,
    status: missingStatus,
    message: `this process (${who}) lacks ${missing.join(' and ')}, which raw HCI on ${kernelAdapters.join(', ')} needs (the service may differ: this checks doctor itself)`,
    fix: 'run the agent as root, or AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN in its systemd unit, or sudo setcap cap_net_raw,cap_net_admin+eip "$(readlink -f "$(which node)")"',
  };
}

// --- health from telemetry ---------------------------------------------------------------------------

export function checkHealth(telemetry: Telemetry): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const temp = telemetry.cpu_temp;
  if (temp !== null) {
    const where = `${temp.zone}${temp.type === null ? '' : ` ${temp.type}`}`;
    checks.push(
      temp.celsius >= HOT_CELSIUS
        ? {
            id: 'temperature',
            status: 'warn',
            message: `CPU at ${temp.celsius} °C (${where}): Pis slow down from 80 °C`,
            fix: 'add a heatsink or fan, or give the case more airflow',
          }
        : { id: 'temperature', status: 'ok', message: `CPU at ${temp.celsius} °C (${where})` },
    );
  }
  const state = telemetry.throttling;
  if (state === null) return checks;
  const raw = `get_throttled ${state.raw}`;
  const powerFix =
    'use an adequate power supply (the official one for this board) and a short, thick cable; under-voltage also resets the radio';
  if (state.under_voltage)
    checks.push({ id: 'power', status: 'fail', message: `under-voltage now (${raw})`, fix: powerFix });
  else if (state.under_voltage_occurred)
    checks.push({ id: 'power', status: 'warn', message: `under-voltage since boot (${raw})`, fix: powerFix });
  else checks.push({ id: 'power', status: 'ok', message: `no under-voltage since boot (${raw})` });
  const now = state.throttled || state.frequency_capped || state.soft_temp_limit;
  const since = state.throttled_occurred || state.frequency_capped_occurred || state.soft_temp_limit_occurred;
  if (now || since)
    checks.push({
      id: 'throttling',
      status: 'warn',
      message: `CPU slowed (throttled, frequency capped or soft temperature limit) ${now ? 'now' : 'since boot'} (${raw})`,
      fix: 'cool the board (heatsink, fan, airflow); if power warns too, fix the supply first',
    });
  else checks.push({ id: 'throttling', status: 'ok', message: `no throttling since boot (${raw})` });
  return checks;
}

/** The report as text: one line per check, then a summary line. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((check) => check.id.length));
  const lines = report.checks.map((check) => {
    const fix = check.fix === undefined ? '' : ` — fix: ${check.fix}`;
    return `${check.status.padEnd(4)}  ${check.id.padEnd(width)}  ${check.message}${fix}`;
  });
  const failed = report.checks.filter((check) => check.status === 'fail').length;
  const warned = report.checks.filter((check) => check.status === 'warn').length;
  lines.push(
    failed + warned === 0
      ? 'all checks passed'
      : `${plural(failed, 'failure')}, ${plural(warned, 'warning')}`,
  );
  return `${lines.join('\n')}\n`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
