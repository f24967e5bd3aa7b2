// Device health for `status` and `doctor`: CPU temperature, Raspberry Pi throttling (under-voltage,
// frequency capping), load, memory, free disk and uptime. Read on demand (no timers, nothing cached),
// each reader cheap: a few small /proc and /sys files, statfs, and at most one short vcgencmd run.
// Nothing here throws: whatever cannot be read comes back as null. The file root is a parameter so
// tests read fixture trees; the `os` module stands in for /proc only when the root is the real "/".
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile, statfs } from 'node:fs/promises';
import { freemem, loadavg, totalmem, uptime } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

export interface TelemetryOptions {
  /** File root for /proc and /sys: "/" (the default) on a real system, a fixture tree in tests. */
  readonly root?: string;
  /** A directory whose file system's free space to report (the data_dir); without it `disk` is null. */
  readonly diskPath?: string;
  /**
   * The vcgencmd binary: a path, or false not to run it. Default: looked for (under the root) on $PATH,
   * then /usr/bin and /opt/vc/bin; absent on non-Pi systems, and then `throttling` is null.
   */
  readonly vcgencmd?: string | false;
  /** How long vcgencmd may take; default 2000 ms. */
  readonly timeoutMs?: number;
  /** $PATH for finding vcgencmd; default process.env.PATH. */
  readonly path?: string;
}

/** `vcgencmd get_throttled`, decoded. The "_occurred" flags are sticky since boot. */
export interface ThrottleState {
  /** The raw bit field as vcgencmd prints it ("0x50005"). */
  readonly raw: string;
  readonly under_voltage: boolean;
  readonly frequency_capped: boolean;
  readonly throttled: boolean;
  readonly soft_temp_limit: boolean;
  readonly under_voltage_occurred: boolean;
  readonly frequency_capped_occurred: boolean;
  readonly throttled_occurred: boolean;
  readonly soft_temp_limit_occurred: boolean;
}

export interface CpuTemperature {
  readonly celsius: number;
  /** The thermal zone read ("thermal_zone0") and its type ("cpu-thermal"), when it has one. */
  readonly zone: string;
  readonly type: string | null;
}

export interface LoadAverages {
  readonly avg_1m: number;
  readonly avg_5m: number;
  readonly avg_15m: number;
}

export interface MemoryInfo {
  readonly total_bytes: number | null;
  readonly free_bytes: number | null;
  /** /proc/meminfo MemAvailable: what can be allocated without swapping (free + reclaimable cache). */
  readonly available_bytes: number | null;
}

export interface DiskInfo {
  /** The directory measured: the one asked for, or its nearest existing parent. */
  readonly path: string;
  readonly total_bytes: number;
  readonly free_bytes: number;
  /** Free to unprivileged users (root keeps a reserve). */
  readonly available_bytes: number;
}

/** Plain JSON: every field null when it cannot be read on this system. */
export interface Telemetry {
  readonly cpu_temp: CpuTemperature | null;
  readonly throttling: ThrottleState | null;
  readonly load: LoadAverages | null;
  readonly memory: MemoryInfo | null;
  readonly disk: DiskInfo | null;
  readonly uptime_s: number | null;
}

const DEFAULT_ROOT = '/';
const DEFAULT_VCGENCMD_TIMEOUT_MS = 2000;

function isRealRoot(root: string): boolean {
  return resolve(root) === '/';
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export async function readTelemetry(options: TelemetryOptions = {}): Promise<Telemetry> {
  const root = options.root ?? DEFAULT_ROOT;
  const [cpuTemp, throttling, load, memory, disk, uptimeS] = await Promise.all([
    readCpuTemperature(root),
    readThrottling(options),
    readLoad(root),
    readMemory(root),
    options.diskPath === undefined ? Promise.resolve(null) : readDisk(options.diskPath),
    readUptime(root),
  ]);
  return { cpu_temp: cpuTemp, throttling, load, memory, disk, uptime_s: uptimeS };
}

// --- temperature -------------------------------------------------------------------------------------

/**
 * The CPU temperature from /sys/class/thermal: the zone of type "cpu-thermal" (Raspberry Pi kernels) when
 * there is one, else the first zone that reads. Values there are millidegrees Celsius.
 */
export async function readCpuTemperature(root = DEFAULT_ROOT): Promise<CpuTemperature | null> {
  const base = join(root, 'sys/class/thermal');
  let zones: string[];
  try {
    zones = (await readdir(base)).filter((name) => /^thermal_zone\d+$/.test(name));
  } catch {
    return null;
  }
  zones.sort((a, b) => Number(a.slice('thermal_zone'.length)) - Number(b.slice('thermal_zone'.length)));
  const readings = await Promise.all(
    zones.map(async (zone): Promise<CpuTemperature | null> => {
      const temp = parseMillidegrees(await readText(join(base, zone, 'temp')));
      if (temp === null) return null;
      const type = (await readText(join(base, zone, 'type')))?.trim() || null;
      return { celsius: temp, zone, type };
    }),
  );
  const valid = readings.filter((reading): reading is CpuTemperature => reading !== null);
  return valid.find((reading) => reading.type === 'cpu-thermal') ?? valid[0] ?? null;
}

/** "48312\n" → 48.3 (one decimal); null for anything else. */
export function parseMillidegrees(text: string | null): number | null {
  if (text === null) return null;
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) return null;
  return Math.round(Number(trimmed) / 100) / 10;
}

// --- throttling --------------------------------------------------------------------------------------

const THROTTLE_BITS = {
  under_voltage: 0,
  frequency_capped: 1,
  throttled: 2,
  soft_temp_limit: 3,
  under_voltage_occurred: 16,
  frequency_capped_occurred: 17,
  throttled_occurred: 18,
  soft_temp_limit_occurred: 19,
} as const;

/** Decodes the get_throttled bit field (Raspberry Pi documentation, "vcgencmd get_throttled"). */
export function decodeThrottled(bits: number): ThrottleState {
  const flag = (bit: number): boolean => ((bits >>> bit) & 1) === 1;
  return {
    raw: `0x${(bits >>> 0).toString(16)}`,
    under_voltage: flag(THROTTLE_BITS.under_voltage),
    frequency_capped: flag(THROTTLE_BITS.frequency_capped),
    throttled: flag(THROTTLE_BITS.throttled),
    soft_temp_limit: flag(THROTTLE_BITS.soft_temp_limit),
    under_voltage_occurred: flag(THROTTLE_BITS.under_voltage_occurred),
    frequency_capped_occurred: flag(THROTTLE_BITS.frequency_capped_occurred),
    throttled_occurred: flag(THROTTLE_BITS.throttled_occurred),
    soft_temp_limit_occurred: flag(THROTTLE_BITS.soft_temp_limit_occurred),
  };
}

/** "throttled=0x50005\n" → 0x50005; null when the output is not that. */
export function parseThrottled(output: string): number | null {
  const match = /throttled=0x([0-9a-f]{1,8})\b/i.exec(output);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 16);
}

/** `vcgencmd get_throttled`, when the binary is there and answers (it needs the video group). */
export async function readThrottling(options: TelemetryOptions = {}): Promise<ThrottleState | null> {
  if (options.vcgencmd === false) return null;
  const binary = options.vcgencmd ?? (await findVcgencmd(options.root ?? DEFAULT_ROOT, options.path));
  if (binary === null) return null;
  const output = await new Promise<string | null>((resolveOutput) => {
    try {
      execFile(
        binary,
        ['get_throttled'],
        {
          timeout: options.timeoutMs ?? DEFAULT_VCGENCMD_TIMEOUT_MS,
          maxBuffer: 4096,
          env: { ...process.env, LC_ALL: 'C' },
        },
        (error, stdout) => resolveOutput(error === null ? stdout : null),
      );
    } catch {
      resolveOutput(null);
    }
  });
  const bits = output === null ? null : parseThrottled(output);
  return bits === null ? null : decodeThrottled(bits);
}

/** Where vcgencmd lives: $PATH, then the Raspberry Pi OS locations, all under the root. */
export async function findVcgencmd(
  root = DEFAULT_ROOT,
  path = process.env.PATH ?? '',
): Promise<string | null> {
  const dirs = [...path.split(delimiter).filter((dir) => dir.startsWith('/')), '/usr/bin', '/opt/vc/bin'];
  for (const dir of new Set(dirs)) {
    const candidate = join(root, dir, 'vcgencmd');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

// --- load, memory, uptime ----------------------------------------------------------------------------

export async function readLoad(root = DEFAULT_ROOT): Promise<LoadAverages | null> {
  const text = await readText(join(root, 'proc/loadavg'));
  const fields = text?.trim().split(/\s+/).slice(0, 3).map(Number);
  if (fields !== undefined && fields.length === 3 && fields.every(Number.isFinite)) {
    const [avg1, avg5, avg15] = fields as [number, number, number];
    return { avg_1m: avg1, avg_5m: avg5, avg_15m: avg15 };
  }
  if (!isRealRoot(root) || process.platform === 'win32') return null;
  const [avg1, avg5, avg15] = loadavg() as [number, number, number];
  return { avg_1m: avg1, avg_5m: avg5, avg_15m: avg15 };
}

/** /proc/meminfo as bytes by field name ("MemAvailable:  123 kB" → 125952). */
export function parseMeminfo(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    fields.set(match[1], Number(match[2]) * (line.trimEnd().endsWith('kB') ? 1024 : 1));
  }
  return fields;
}

export async function readMemory(root = DEFAULT_ROOT): Promise<MemoryInfo | null> {
  const text = await readText(join(root, 'proc/meminfo'));
  const fields = text === null ? new Map<string, number>() : parseMeminfo(text);
  const real = isRealRoot(root);
  const total = fields.get('MemTotal') ?? (real ? totalmem() : null);
  const free = fields.get('MemFree') ?? (real ? freemem() : null);
  const available = fields.get('MemAvailable') ?? null;
  if (total === null && free === null && available === null) return null;
  return { total_bytes: total, free_bytes: free, available_bytes: available };
}

/** Seconds since boot (/proc/uptime, whole seconds). */
export async function readUptime(root = DEFAULT_ROOT): Promise<number | null> {
  const text = await readText(join(root, 'proc/uptime'));
  const seconds = Number(text?.trim().split(/\s+/)[0]);
  if (text !== null && Number.isFinite(seconds) && seconds >= 0) return Math.floor(seconds);
  if (!isRealRoot(root)) return null;
  try {
    return Math.floor(uptime());
  } catch {
    return null;
  }
}

// --- disk --------------------------------------------------------------------------------------------

/** Free space of the file system holding `path` (or its nearest existing parent, for a dir not made yet). */
export async function readDisk(path: string): Promise<DiskInfo | null> {
  let current = resolve(path);
  for (;;) {
    try {
      const stats = await statfs(current);
      return {
        path: current,
        total_bytes: stats.blocks * stats.bsize,
        free_bytes: stats.bfree * stats.bsize,
        available_bytes: stats.bavail * stats.bsize,
      };
    } catch (error) {
      const parent = dirname(current);
      const code = (error as NodeJS.ErrnoException).code;
      if (parent === current || (code !== 'ENOENT' && code !== 'ENOTDIR')) return null;
      current = parent;
    }
  }
}
