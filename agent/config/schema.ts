// The config schema: every TOML key, its validation and its default, in one place next to the resolved
// `Config` type the rest of the agent uses. Strict tables, because a misspelt key silently ignored is a bug.
import { homedir as osHomedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { type BleAdapter, checkBleAdapter } from './adapter.js';
import { checkHostPort, type HostPort } from './address.js';
import { CONTROL_SOCKET_FILE } from './defaults.js';
import { checkMeshKey } from './mesh-key.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DISCOVERY_METHODS = ['mdns'] as const;
export type DiscoveryMethod = (typeof DISCOVERY_METHODS)[number];

export type BleEnabled = 'auto' | boolean;

/** The resolved config: defaults filled in, addresses parsed, paths absolute. */
export interface Config {
  /** The file it was read from; absent when running on embedded defaults. */
  readonly configFile?: string;
  readonly name: string;
  readonly dataDir: string;
  /** 32 bytes from mesh_key; absent means "use loadOrCreateMeshKey(dataDir)". */
  readonly meshKey?: Uint8Array;
  readonly logLevel: LogLevel;
  readonly control: { readonly socketPath: string };
  readonly wifi: {
    readonly enabled: boolean;
    /** Port 0 means an ephemeral port (tests). */
    readonly listen: HostPort;
    /** Empty turns LAN discovery off. */
    readonly discovery: DiscoveryMethod[];
  };
  readonly ble: {
    readonly enabled: BleEnabled;
    readonly peripheral: BleAdapter;
    readonly central: BleAdapter;
  };
  readonly peers: { readonly address: HostPort }[];
  readonly mqtt: { readonly listen: HostPort | false };
  readonly console: { readonly serial: string | false; readonly baud: number };
}

/** What the environment-dependent parts of the schema need. */
export interface SchemaContext {
  /** Default for `name` (already cut to a valid length). */
  readonly name: string;
  /** Default for `data_dir` (absolute). */
  readonly dataDir: string;
  /** Relative paths in the file resolve against this: the config file's directory. */
  readonly baseDir: string;
  /** For "~/..." paths. */
  readonly homedir?: string;
}

const TABLE = { error: 'expected a table' };

function hostPortString(allowPortZero: boolean) {
  return z.string({ error: 'expected "host:port"' }).transform((text, ctx): HostPort => {
    const result = checkHostPort(text, { allowPortZero });
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected, input: text });
    return z.NEVER;
  });
}

const bleAdapter = z
  .string({ error: 'expected "hciN" or "uart:/path[@baud]"' })
  .transform((text, ctx): BleAdapter => {
    const result = checkBleAdapter(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected, input: text });
    return z.NEVER;
  });

const pathString = z
  .string({ error: 'expected a path' })
  .min(1, { error: 'expected a non-empty path' })
  .refine((text) => !text.includes('\0'), { error: 'expected a path without NUL characters' });

const meshKey = z
  .string({ error: 'expected a base64url string of 32 bytes' })
  .transform((text, ctx): Uint8Array => {
    const result = checkMeshKey(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected, input: text });
    return z.NEVER;
  });

const positiveInteger = { error: 'expected a positive integer' };

export const controlTable = z.strictObject({ socket: pathString.optional() }, TABLE);

export const wifiTable = z.strictObject(
  {
    enabled: z.boolean({ error: 'expected true or false' }).default(true),
    listen: hostPortString(true).prefault('0.0.0.0:7450'),
    discovery: z
      .array(z.enum(DISCOVERY_METHODS, { error: 'expected "mdns"' }), {
        error: 'expected an array like ["mdns"] ([] for none)',
      })
      .default((): DiscoveryMethod[] => ['mdns']),
  },
  TABLE,
);

export const bleTable = z.strictObject(
  {
    enabled: z
      .union([z.literal('auto'), z.boolean()], { error: 'expected "auto", true or false' })
      .default('auto'),
    peripheral: bleAdapter.prefault('hci0'),
    central: bleAdapter.prefault('hci0'),
  },
  TABLE,
);

export const peerTable = z.strictObject(
  { address: hostPortString(false) },
  { error: 'expected a table with address = "host:port"' },
);

export const mqttTable = z.strictObject(
  {
    listen: z
      .union([z.literal(false), z.string()], { error: 'expected "host:port" or false' })
      .transform((value, ctx): HostPort | false => {
        if (value === false) return false;
        const result = checkHostPort(value, { allowPortZero: true });
        if (result.ok) return result.value;
        ctx.addIssue({ code: 'custom', message: result.expected, input: value });
        return z.NEVER;
      })
      .prefault('127.0.0.1:1883'),
  },
  TABLE,
);

export const consoleTable = z.strictObject(
  {
    serial: z
      .union([z.literal(false), pathString], { error: 'expected a serial device path or false' })
      .default(false),
    baud: z.number(positiveInteger).int(positiveInteger).positive(positiveInteger).default(115200),
  },
  TABLE,
);

const rootShape = {
  name: z
    .string({ error: 'expected a string of 1..63 characters' })
    .min(1, { error: 'expected a string of 1..63 characters' })
    .max(63, { error: 'expected a string of 1..63 characters' })
    .optional(),
  data_dir: pathString.optional(),
  mesh_key: meshKey.optional(),
  log_level: z
    .enum(LOG_LEVELS, {
      error: `expected one of ${LOG_LEVELS.map((level) => JSON.stringify(level)).join(', ')}`,
    })
    .default('info'),
  control: controlTable.prefault({}),
  wifi: wifiTable.prefault({}),
  ble: bleTable.prefault({}),
  peers: z.array(peerTable, { error: 'expected [[peers]] tables' }).default(() => []),
  mqtt: mqttTable.prefault({}),
  console: consoleTable.prefault({}),
};

/** Keys each table accepts, by table path with array indices dropped ("" is the top level). For "did you mean". */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  control: Object.keys(controlTable.shape),
  wifi: Object.keys(wifiTable.shape),
  ble: Object.keys(bleTable.shape),
  peers: Object.keys(peerTable.shape),
  mqtt: Object.keys(mqttTable.shape),
  console: Object.keys(consoleTable.shape),
};

/** Resolves a path written in the config: "~/x" against the home directory, relative ones against baseDir. */
function resolveConfigPath(path: string, context: SchemaContext): string {
  if (path === '~' || path.startsWith('~/')) return join(context.homedir ?? osHomedir(), path.slice(1));
  return resolve(context.baseDir, path);
}

/** The schema from the parsed TOML document (snake_case keys) to the resolved Config. */
export function configSchema(context: SchemaContext) {
  return z.strictObject(rootShape, TABLE).transform((raw): Config => {
    const dataDir = raw.data_dir === undefined ? context.dataDir : resolveConfigPath(raw.data_dir, context);
    return {
      name: raw.name ?? context.name,
      dataDir,
      ...(raw.mesh_key === undefined ? {} : { meshKey: raw.mesh_key }),
      logLevel: raw.log_level,
      control: {
        socketPath:
          raw.control.socket === undefined
            ? join(dataDir, CONTROL_SOCKET_FILE)
            : resolveConfigPath(raw.control.socket, context),
      },
      wifi: {
        enabled: raw.wifi.enabled,
        listen: raw.wifi.listen,
        discovery: [...new Set(raw.wifi.discovery)],
      },
      ble: raw.ble,
      peers: raw.peers,
      mqtt: raw.mqtt,
      console: {
        serial: raw.console.serial === false ? false : resolveConfigPath(raw.console.serial, context),
        baud: raw.console.baud,
      },
    };
  });
}

/** The TOML document's shape (snake_case, everything optional), for code that writes config files. */
export type ConfigFile = z.input<ReturnType<typeof configSchema>>;
