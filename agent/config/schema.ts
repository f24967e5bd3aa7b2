// The config schema: every TOML key, its validation and its default, in one place next to the resolved
// `Config` type the rest of the agent uses. Strict tables, because a misspelt key silently ignored is a bug.
import { homedir as osHomedir } from 'node:os';
import { join, resolve } from 'node:path';
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { type BleAdapter, checkBleAdapter } from './adapter.js';
import { checkHostPort, type HostPort } from './address.js';
import { type BoardDefaults, CONTROL_SOCKET_FILE } from './defaults.js';
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
    /** Simultaneous BLE links (both roles together); controllers hold only a few. */
    readonly maxLinks: number;
  };
  readonly peers: { readonly address: HostPort }[];
  /** Groups this agent belongs to (announced to the mesh; messages to a group reach every member). */
  readonly groups: readonly string[];
  readonly mesh: {
    /** Hop budget of the messages this agent originates. */
    readonly ttl: number;
    /** Forward other agents' messages; false for battery devices. */
    readonly relay: boolean;
  };
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
  /** The detected board's defaults for the BLE adapters, the BLE link limit and relaying. */
  readonly board?: BoardDefaults;
}

/** Without a board profile (tests, other callers): one controller for both roles, as on most Linux boxes. */
const FALLBACK_BOARD: BoardDefaults = {
  ble: { peripheral: 'hci0', central: 'hci0', maxLinks: 4 },
  mesh: { relay: true },
};

const TABLE = { message: 'expected a table' };

/** zod/v3 puts a schema's `message` on its type errors only; a union's own failure (invalid_union) needs a map. */
function unionError(message: string): { errorMap: z.ZodErrorMap } {
  return { errorMap: () => ({ message }) };
}

function hostPortString(allowPortZero: boolean) {
  return z.string({ message: 'expected "host:port"' }).transform((text, ctx): HostPort => {
    const result = checkHostPort(text, { allowPortZero });
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected });
    return z.NEVER;
  });
}

const bleAdapter = z
  .string({ message: 'expected "hciN" or "uart:/path[@baud]"' })
  .transform((text, ctx): BleAdapter => {
    const result = checkBleAdapter(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected });
    return z.NEVER;
  });

const pathString = z
  .string({ message: 'expected a path' })
  .min(1, { message: 'expected a non-empty path' })
  .refine((text) => !text.includes('\0'), { message: 'expected a path without NUL characters' });

const meshKey = z
  .string({ message: 'expected a base64url string of 32 bytes' })
  .transform((text, ctx): Uint8Array => {
    const result = checkMeshKey(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected });
    return z.NEVER;
  });

const POSITIVE_INTEGER = 'expected a positive integer';

/**
 * zod 4's verdicts, kept: v3's z.number() lets ±Infinity through and its int() takes integers beyond 2^53
 * (a baud of 1e20 would load). A fraction is one problem; a huge negative integer is two, as before.
 */
const positiveInteger = z.number({ message: POSITIVE_INTEGER }).superRefine((value, ctx) => {
  if (!Number.isInteger(value)) {
    ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
    return;
  }
  if (!Number.isSafeInteger(value)) ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
  if (value <= 0) ctx.addIssue({ code: 'custom', message: POSITIVE_INTEGER });
});

// zod/v3's .default() parses the default through the schema (zod 4 called that .prefault), so "0.0.0.0:7450"
// still comes out as a HostPort and `{}` as a table with its own defaults filled in.
export const controlTable = z.object({ socket: pathString.optional() }, TABLE).strict();

export const wifiTable = z
  .object(
    {
      enabled: z.boolean({ message: 'expected true or false' }).default(true),
      listen: hostPortString(true).default('0.0.0.0:7450'),
      discovery: z
        .array(z.enum(DISCOVERY_METHODS, { message: 'expected "mdns"' }), {
          message: 'expected an array like ["mdns"] ([] for none)',
        })
        .default((): DiscoveryMethod[] => ['mdns']),
    },
    TABLE,
  )
  .strict();

/** 20 is beyond any controller we know; the default comes from the board profile. */
const MAX_BLE_LINKS = 20;

export const bleTable = z
  .object(
    {
      enabled: z
        .union([z.literal('auto'), z.boolean()], unionError('expected "auto", true or false'))
        .default('auto'),
      // Defaults from the board profile, filled in by configSchema's transform.
      peripheral: bleAdapter.optional(),
      central: bleAdapter.optional(),
      max_links: positiveInteger
        .refine((value) => value <= MAX_BLE_LINKS, `expected at most ${MAX_BLE_LINKS}`)
        .optional(),
    },
    TABLE,
  )
  .strict();

/** Enough for a building; 15 is what the wire's ttl field holds (PROTOCOL.md §2). */
const DEFAULT_MESH_TTL = 4;
const MAX_MESH_TTL = 15;

export const meshTable = z
  .object(
    {
      ttl: positiveInteger
        .refine((value) => value <= MAX_MESH_TTL, `expected at most ${MAX_MESH_TTL}`)
        .default(DEFAULT_MESH_TTL),
      relay: z.boolean({ message: 'expected true or false' }).optional(),
    },
    TABLE,
  )
  .strict();

const GROUP = { message: 'expected a group name of 1..63 characters' };
const MAX_GROUPS = 32;
const groupsList = z
  .array(z.string(GROUP).min(1, GROUP).max(63, GROUP), { message: 'expected an array of group names' })
  .max(MAX_GROUPS, `expected at most ${MAX_GROUPS} groups`)
  .default((): string[] => []);

export const peerTable = z
  .object({ address: hostPortString(false) }, { message: 'expected a table with address = "host:port"' })
  .strict();

export const mqttTable = z
  .object(
    {
      listen: z
        .union([z.literal(false), z.string()], unionError('expected "host:port" or false'))
        .transform((value, ctx): HostPort | false => {
          if (value === false) return false;
          const result = checkHostPort(value, { allowPortZero: true });
          if (result.ok) return result.value;
          ctx.addIssue({ code: 'custom', message: result.expected });
          return z.NEVER;
        })
        .default('127.0.0.1:1883'),
    },
    TABLE,
  )
  .strict();

export const consoleTable = z
  .object(
    {
      serial: z
        .union([z.literal(false), pathString], unionError('expected a serial device path or false'))
        .default(false),
      baud: positiveInteger.default(115200),
    },
    TABLE,
  )
  .strict();

const NAME = { message: 'expected a string of 1..63 characters' };

const rootShape = {
  name: z.string(NAME).min(1, NAME).max(63, NAME).optional(),
  data_dir: pathString.optional(),
  mesh_key: meshKey.optional(),
  log_level: z
    .enum(LOG_LEVELS, {
      message: `expected one of ${LOG_LEVELS.map((level) => JSON.stringify(level)).join(', ')}`,
    })
    .default('info'),
  control: controlTable.default({}),
  wifi: wifiTable.default({}),
  ble: bleTable.default({}),
  peers: z.array(peerTable, { message: 'expected [[peers]] tables' }).default(() => []),
  groups: groupsList,
  mesh: meshTable.default({}),
  mqtt: mqttTable.default({}),
  console: consoleTable.default({}),
};

/** Keys each table accepts, by table path with array indices dropped ("" is the top level). For "did you mean". */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  control: Object.keys(controlTable.shape),
  wifi: Object.keys(wifiTable.shape),
  ble: Object.keys(bleTable.shape),
  peers: Object.keys(peerTable.shape),
  mesh: Object.keys(meshTable.shape),
  mqtt: Object.keys(mqttTable.shape),
  console: Object.keys(consoleTable.shape),
};

/** A board profile's adapter spelling; profiles are checked by their tests, so a bad one is a bug. */
function boardAdapter(text: string): BleAdapter {
  const result = checkBleAdapter(text);
  if (!result.ok) throw new Error(`board profile adapter ${JSON.stringify(text)}: ${result.expected}`);
  return result.value;
}

/** Resolves a path written in the config: "~/x" against the home directory, relative ones against baseDir. */
function resolveConfigPath(path: string, context: SchemaContext): string {
  if (path === '~' || path.startsWith('~/')) return join(context.homedir ?? osHomedir(), path.slice(1));
  return resolve(context.baseDir, path);
}

/** The schema from the parsed TOML document (snake_case keys) to the resolved Config. */
export function configSchema(context: SchemaContext) {
  return z
    .object(rootShape, TABLE)
    .strict()
    .transform((raw): Config => {
      const board = context.board ?? FALLBACK_BOARD;
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
        ble: {
          enabled: raw.ble.enabled,
          peripheral: raw.ble.peripheral ?? boardAdapter(board.ble.peripheral),
          central: raw.ble.central ?? boardAdapter(board.ble.central),
          maxLinks: raw.ble.max_links ?? board.ble.maxLinks,
        },
        peers: raw.peers,
        groups: [...new Set(raw.groups)],
        mesh: { ttl: raw.mesh.ttl, relay: raw.mesh.relay ?? board.mesh.relay },
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
