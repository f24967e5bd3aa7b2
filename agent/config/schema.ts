// The config schema: the top-level keys and the agent-wide tables (each key, its validation and its default),
// assembled with the sections coordination and the gateway own (coordination/config.ts, gateway/config.ts)
// into the resolved `Config` the rest of the agent uses. Strict tables, because a misspelt key silently
// ignored is a bug.
import { homedir as osHomedir } from 'node:os';
import { join, resolve } from 'node:path';
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { MAX_CONSOLE_ITERATIONS } from '../console/login.js';
import {
  type ActionConfig,
  actionList,
  actionTable,
  type CoordinationLimits,
  coordinationTable,
  gpioLine,
  type RuleConfig,
  resolveAction,
  resolveCoordination,
  resolveRule,
  resolveSensor,
  ruleList,
  ruleTable,
  type SensorConfig,
  sensorList,
  sensorTable,
} from '../coordination/config.js';
import { type BleAdapter, checkBleAdapter } from '../core/ble-adapter.js';
import { duration, NAME, pathString, positiveInteger, TABLE, unionError } from '../core/config-fields.js';
import { checkHostPort, type HostPort } from '../core/host-port.js';
import { PASSWORD_HASH_FORMAT, parsePasswordHash } from '../core/password-hash.js';
import { type MqttConfig, mqttTable, mqttUpstreamTable, resolveMqtt } from '../gateway/config.js';
import {
  type HomeAssistantConfig,
  homeAssistantTable,
  resolveHomeAssistant,
} from '../gateway/homeassistant-config.js';
import { type HttpConfig, httpTable, resolveHttp } from '../http/config.js';
import { DEFAULT_INBOX_LIMITS, type InboxLimits } from '../messaging/reliable/inbox-store.js';
import { type BoardDefaults, CONTROL_SOCKET_FILE } from './defaults.js';
import { checkMeshKey } from './mesh-key.js';
import { type RendezvousConfig, rendezvousTable, resolveRendezvous } from './rendezvous.js';
import { type ExecResolverConfig, resolverList, resolverTable } from './resolvers.js';

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
  /** 32 bytes from mesh_key; absent means data_dir/mesh.key, or no mesh yet (loadMeshKey). */
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
  /** Programs that report candidates (`[[resolvers]] exec = [...]`). */
  readonly resolvers: readonly ExecResolverConfig[];
  /** Meeting agents of other subnets through the site's MQTT broker. */
  readonly rendezvous: RendezvousConfig;
  /** Groups this agent belongs to (announced to the mesh; messages to a group reach every member). */
  readonly groups: readonly string[];
  readonly mesh: {
    /** Hop budget of the messages this agent originates. */
    readonly ttl: number;
    /** Forward other agents' messages; false for battery devices. */
    readonly relay: boolean;
  };
  readonly mqtt: MqttConfig;
  readonly http: HttpConfig;
  readonly homeAssistant: HomeAssistantConfig;
  /** What calls from the mesh may cost this agent: runs at once, waiting and scheduled calls. */
  readonly coordination: CoordinationLimits;
  /** Actions this agent runs for the mesh (coordination). */
  readonly actions: readonly ActionConfig[];
  /** Sensors this agent reads for the mesh (coordination), besides the built-in device sensors. */
  readonly sensors: readonly SensorConfig[];
  /** Conditions on sensor values, evaluated here as values arrive, and the call each makes when it becomes true. */
  readonly rules: readonly RuleConfig[];
  readonly console: {
    readonly serial: string | false;
    readonly baud: number;
    /** A `$7$` hash: a serial session that logs in with its password may run commands that act. */
    readonly password: string | undefined;
    /** Commands that act run on the serial console without login. */
    readonly allowUnauthenticated: boolean;
  };
  /** The app inbox: reliable messages received, until every consumer has taken them. */
  readonly inbox: InboxLimits;
  /** Bulk transfer (`nearmesh push`): where received files land and how big one may be. */
  readonly transfer: {
    readonly inbox: string;
    readonly maxBytes: number;
    /** Bytes one peer may have in the inbox: its files still there, its parts, the offered file. */
    readonly maxBytesPerPeer: number;
    /** false refuses every incoming file (REJECT refused). */
    readonly accept: boolean;
  };
  /** Who may revoke members and rotate the mesh key, and what happens to neighbours that forge. */
  readonly security: {
    /** Peer ids that may revoke and rekey; empty: every member may (PROTOCOL.md §13.5). */
    readonly admins: readonly string[];
    /** Forgeries within a minute that shun the neighbour that made them; 0: never shun. */
    readonly shunAfter: number;
    readonly shunForMs: number;
    /** How long `nearmesh rekey` keeps the old mesh key accepted unless told otherwise. */
    readonly rekeyOverlapMs: number;
  };
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

const meshKey = z
  .string({ message: 'expected a base64url string of 32 bytes' })
  .transform((text, ctx): Uint8Array => {
    const result = checkMeshKey(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.expected });
    return z.NEVER;
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

export const consoleTable = z
  .object(
    {
      serial: z
        .union([z.literal(false), pathString], unionError('expected a serial device path or false'))
        .default(false),
      baud: positiveInteger.default(115200),
      password: z
        .string({ message: `expected a password hash: ${PASSWORD_HASH_FORMAT}` })
        .refine((text) => typeof parsePasswordHash(text, MAX_CONSOLE_ITERATIONS) !== 'string', {
          message: `expected a password hash: ${PASSWORD_HASH_FORMAT}`,
        })
        .optional(),
      allow_unauthenticated: z.boolean({ message: 'expected true or false' }).default(false),
    },
    TABLE,
  )
  .strict();

export const DEFAULT_TRANSFER_MAX_BYTES = 1024 * 1024 * 1024;

export const transferTable = z
  .object(
    {
      inbox: pathString.optional(),
      max_bytes: positiveInteger.default(DEFAULT_TRANSFER_MAX_BYTES),
      /** Default: max_bytes (any file the limit takes can come, but a peer holds one such file's worth). */
      max_bytes_per_peer: positiveInteger.optional(),
      accept: z.boolean({ message: 'expected true or false' }).default(true),
    },
    TABLE,
  )
  .strict();

export const inboxTable = z
  .object(
    {
      max_messages: positiveInteger
        .refine((value) => value <= 1_000_000, { message: 'expected at most 1000000' })
        .default(DEFAULT_INBOX_LIMITS.maxMessages),
      max_bytes: positiveInteger.default(DEFAULT_INBOX_LIMITS.maxBytes),
      max_age: duration.default('7d'),
      when_full: z
        .enum(['refuse', 'drop-oldest'], { message: 'expected "refuse" or "drop-oldest"' })
        .default(DEFAULT_INBOX_LIMITS.whenFull),
      consumer_expiry: duration.default('7d'),
    },
    TABLE,
  )
  .strict();

const PEER_ID = { message: 'expected a peer id: 16 lowercase hex characters, as `nearmesh id` prints' };
/** A week: an agent switched off for a weekend still catches up with a rotation when it comes back. */
const DEFAULT_REKEY_OVERLAP = '7d';

export const securityTable = z
  .object(
    {
      admins: z
        .array(z.string(PEER_ID).regex(/^[0-9a-f]{16}$/, PEER_ID), {
          message: 'expected an array of peer ids',
        })
        .max(64, 'expected at most 64 admins')
        .default(() => []),
      shun_after: z
        .number({ message: 'expected a whole number (0: never)' })
        .int('expected a whole number (0: never)')
        .min(0, 'expected 0 or more')
        .max(1_000_000)
        .default(20),
      shun_for: duration.default('10m'),
      rekey_overlap: duration.default(DEFAULT_REKEY_OVERLAP),
    },
    TABLE,
  )
  .strict();

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
  resolvers: resolverList,
  rendezvous: rendezvousTable.default({}),
  groups: groupsList,
  mesh: meshTable.default({}),
  mqtt: mqttTable.default({}),
  http: httpTable.default({}),
  homeassistant: homeAssistantTable.default({}),
  console: consoleTable.default({}),
  inbox: inboxTable.default({}),
  transfer: transferTable.default({}),
  security: securityTable.default({}),
  coordination: coordinationTable.default({}),
  actions: actionList,
  rules: ruleList,
  sensors: sensorList,
};

/** Keys each table accepts, by table path with array indices dropped ("" is the top level). For "did you mean". */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  control: Object.keys(controlTable.shape),
  wifi: Object.keys(wifiTable.shape),
  ble: Object.keys(bleTable.shape),
  peers: Object.keys(peerTable.shape),
  resolvers: Object.keys(resolverTable.shape),
  rendezvous: Object.keys(rendezvousTable.shape),
  mesh: Object.keys(meshTable.shape),
  mqtt: Object.keys(mqttTable.innerType().shape),
  'mqtt.upstream': Object.keys(mqttUpstreamTable.innerType().shape),
  http: Object.keys(httpTable.innerType().shape),
  homeassistant: Object.keys(homeAssistantTable.shape),
  console: Object.keys(consoleTable.shape),
  inbox: Object.keys(inboxTable.shape),
  transfer: Object.keys(transferTable.shape),
  security: Object.keys(securityTable.shape),
  coordination: Object.keys(coordinationTable.shape),
  actions: Object.keys(actionTable.innerType().shape),
  sensors: Object.keys(sensorTable.innerType().shape),
  rules: Object.keys(ruleTable.shape),
  'actions.gpio': Object.keys(gpioLine.shape),
  'sensors.gpio': Object.keys(gpioLine.shape),
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
    .superRefine((raw, ctx) => {
      if (raw.rendezvous.enabled && raw.rendezvous.url === undefined && raw.mqtt.upstream === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['rendezvous', 'enabled'],
          message: 'expected a broker: [rendezvous] url = "mqtt://..." or an [mqtt.upstream] table',
        });
      if (raw.homeassistant.enabled && raw.mqtt.listen === false)
        ctx.addIssue({
          code: 'custom',
          path: ['homeassistant', 'enabled'],
          message:
            'needs the MQTT endpoint: Home Assistant connects to it, or to the broker of [mqtt.upstream]; remove [mqtt] listen = false',
        });
    })
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
        resolvers: raw.resolvers,
        rendezvous: resolveRendezvous(raw.rendezvous),
        groups: [...new Set(raw.groups)],
        mesh: { ttl: raw.mesh.ttl, relay: raw.mesh.relay ?? board.mesh.relay },
        mqtt: resolveMqtt(raw.mqtt, (path) => resolveConfigPath(path, context)),
        http: resolveHttp(raw.http, (path) => resolveConfigPath(path, context)),
        homeAssistant: resolveHomeAssistant(raw.homeassistant),
        coordination: resolveCoordination(raw.coordination),
        actions: raw.actions.map(resolveAction),
        rules: raw.rules.map(resolveRule),
        sensors: raw.sensors.map(resolveSensor),
        console: {
          serial: raw.console.serial === false ? false : resolveConfigPath(raw.console.serial, context),
          baud: raw.console.baud,
          password: raw.console.password,
          allowUnauthenticated: raw.console.allow_unauthenticated,
        },
        inbox: {
          maxMessages: raw.inbox.max_messages,
          maxBytes: raw.inbox.max_bytes,
          maxAgeMs: raw.inbox.max_age,
          whenFull: raw.inbox.when_full,
          consumerExpiryMs: raw.inbox.consumer_expiry,
        },
        transfer: {
          inbox:
            raw.transfer.inbox === undefined
              ? join(dataDir, 'inbox')
              : resolveConfigPath(raw.transfer.inbox, context),
          maxBytes: raw.transfer.max_bytes,
          maxBytesPerPeer: raw.transfer.max_bytes_per_peer ?? raw.transfer.max_bytes,
          accept: raw.transfer.accept,
        },
        security: {
          admins: [...new Set(raw.security.admins)],
          shunAfter: raw.security.shun_after,
          shunForMs: raw.security.shun_for,
          rekeyOverlapMs: raw.security.rekey_overlap,
        },
      };
    });
}

/** The TOML document's shape (snake_case, everything optional), for code that writes config files. */
export type ConfigFile = z.input<ReturnType<typeof configSchema>>;
