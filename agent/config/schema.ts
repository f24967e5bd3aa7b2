// The config schema: every TOML key, its validation and its default, in one place next to the resolved
// `Config` type the rest of the agent uses. Strict tables, because a misspelt key silently ignored is a bug.
import { homedir as osHomedir } from 'node:os';
import { join, resolve } from 'node:path';
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { parseRuleAction, type RuleAction } from '../coordination/rule-action.js';
import { parseRuleExpression, type RuleExpression } from '../coordination/rule-expression.js';
import { SYSTEM_SENSOR_NAMES } from '../coordination/system-sensors.js';
import { type BleAdapter, checkBleAdapter } from '../core/ble-adapter.js';
import { parseDuration } from '../core/duration.js';
import { checkHostPort, type HostPort } from '../core/host-port.js';
import { isValidTopicFilter, isValidTopicName } from '../core/topic-match.js';
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
  readonly mqtt: MqttConfig;
  /** Actions this agent runs for the mesh (coordination). */
  readonly actions: readonly ActionConfig[];
  /** Sensors this agent reads for the mesh (coordination), besides the built-in device sensors. */
  readonly sensors: readonly SensorConfig[];
  /** Conditions on sensor values, evaluated here as values arrive, and the call each makes when it becomes true. */
  readonly rules: readonly RuleConfig[];
  readonly console: { readonly serial: string | false; readonly baud: number };
  /** Bulk transfer (`nearmesh push`): where received files land and how big one may be. */
  readonly transfer: {
    readonly inbox: string;
    readonly maxBytes: number;
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

/** Default MQTT endpoint: loopback only, so apps on the device reach it and nothing else does. */
export const DEFAULT_MQTT_LISTEN: HostPort = { host: '127.0.0.1', port: 1883 };
/** What an upstream bridge carries unless configured: messages between agents that share no link. */
export const DEFAULT_BRIDGED_TOPICS = ['nearmesh/send/#'] as const;

export interface MqttConfig {
  readonly listen: HostPort | false;
  /** True when `listen` is the built-in default: a taken port then costs a warning, not the agent. */
  readonly listenIsDefault: boolean;
  /** Required of every client when set. */
  readonly credentials?: { readonly username: string; readonly password: string };
  readonly maxPacketSize: number;
  readonly upstream?: MqttUpstreamConfig;
}

export interface MqttUpstreamConfig {
  readonly url: string;
  /** Absent means "nearmesh-<peer id>", known only once the identity is loaded. */
  readonly clientId?: string;
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Absolute paths of PEM files, for mqtts:// brokers. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Local topic filters sent upstream, and upstream filters brought in. */
  readonly out: readonly string[];
  readonly in: readonly string[];
  /** Prepended to topics upstream ("site-a/"), so several meshes can share one broker. */
  readonly prefix: string;
  /** Messages held while the broker is unreachable; the oldest go first. */
  readonly maxQueued: number;
}

/** Who may call an action: peer ids or names, and "group:NAME"; absent means every agent of the mesh. */
export type CallerFilter = readonly string[];

export type ActionConfig = {
  readonly name: string;
  readonly timeoutMs: number;
  readonly allow?: CallerFilter;
} & (
  | { readonly kind: 'exec'; readonly exec: readonly string[] }
  | { readonly kind: 'gpio'; readonly chip: string; readonly line: number; readonly activeLow: boolean }
);

export type SensorConfig = {
  readonly name: string;
  /** Read this often and cached (and pushed to watchers); absent: read on demand only. */
  readonly everyMs?: number;
  readonly unit?: string;
} & (
  | { readonly kind: 'exec'; readonly exec: readonly string[] }
  | { readonly kind: 'gpio'; readonly chip: string; readonly line: number; readonly activeLow: boolean }
);

export interface RuleConfig {
  readonly name: string;
  readonly when: RuleExpression;
  /** What it does when it fires (the `then` key). */
  readonly action: RuleAction;
  /** The condition must hold this long before the rule fires. */
  readonly debounceMs: number;
  /** How far back past its threshold a value must go before the rule can fire again. */
  readonly hysteresis: number;
  /** How often the sensors it reads are read (or pushed by their agents). */
  readonly everyMs: number;
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

const TOPIC_FILTERS = { message: 'expected an array of MQTT topic filters like ["nearmesh/send/#"]' };
const topicFilterList = z.array(
  z.string(TOPIC_FILTERS).refine(isValidTopicFilter, {
    message: 'expected an MQTT topic filter ("+" and "#" only as whole levels, "#" last)',
  }),
  TOPIC_FILTERS,
);

/** Largest MQTT packet size the protocol can express (the remaining-length field). */
const MQTT_MAX_PACKET_SIZE = 268_435_455;

const mqttCredentials = {
  username: z.string({ message: 'expected a string' }).optional(),
  password: z.string({ message: 'expected a string' }).optional(),
};

/** Username and password come together: one without the other is a half-written config. */
function bothOrNeither(
  table: { username?: string | undefined; password?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((table.username === undefined) !== (table.password === undefined)) {
    const missing = table.username === undefined ? 'username' : 'password';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'expected username and password together' });
  }
}

export const mqttUpstreamTable = z
  .object(
    {
      url: z
        .string({ message: 'expected "mqtt://host:port" or "mqtts://host:port"' })
        .transform((text, ctx) => {
          const problem = checkBrokerUrl(text);
          if (problem === undefined) return text;
          ctx.addIssue({ code: 'custom', message: problem });
          return z.NEVER;
        }),
      client_id: z
        .string({ message: 'expected a string of 1..64 characters' })
        .min(1, { message: 'expected a string of 1..64 characters' })
        .max(64, { message: 'expected a string of 1..64 characters' })
        .optional(),
      ...mqttCredentials,
      ca_file: pathString.optional(),
      cert_file: pathString.optional(),
      key_file: pathString.optional(),
      out: topicFilterList.default(() => [...DEFAULT_BRIDGED_TOPICS]),
      in: topicFilterList.default(() => [...DEFAULT_BRIDGED_TOPICS]),
      prefix: z
        .string({ message: 'expected a topic prefix like "site-a/" ("" for none)' })
        .refine((text) => text === '' || (isValidTopicName(text) && text.endsWith('/')), {
          message: 'expected a topic prefix ending in "/", without "+" or "#" ("" for none)',
        })
        .default(''),
      max_queued: positiveInteger
        .refine((value) => value <= 1_000_000, { message: 'expected at most 1000000' })
        .default(1000),
    },
    TABLE,
  )
  .strict()
  .superRefine((table, ctx) => {
    bothOrNeither(table, ctx);
    if ((table.cert_file === undefined) !== (table.key_file === undefined)) {
      const missing = table.cert_file === undefined ? 'cert_file' : 'key_file';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'expected cert_file and key_file together' });
    }
  });

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
        .optional(),
      ...mqttCredentials,
      max_packet_size: positiveInteger
        .refine((value) => value >= 1024 && value <= MQTT_MAX_PACKET_SIZE, {
          message: `expected 1024..${MQTT_MAX_PACKET_SIZE} bytes`,
        })
        .default(256 * 1024),
      upstream: mqttUpstreamTable.optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine(bothOrNeither);

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

export const DEFAULT_TRANSFER_MAX_BYTES = 1024 * 1024 * 1024;

export const transferTable = z
  .object(
    {
      inbox: pathString.optional(),
      max_bytes: positiveInteger.default(DEFAULT_TRANSFER_MAX_BYTES),
      accept: z.boolean({ message: 'expected true or false' }).default(true),
    },
    TABLE,
  )
  .strict();

const NAME = { message: 'expected a string of 1..63 characters' };

const CAPABILITY_NAME = { message: 'expected a dotted name like "light.set" (letters, digits, "_", "-")' };
const capabilityName = z
  .string(CAPABILITY_NAME)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, CAPABILITY_NAME)
  .max(63, CAPABILITY_NAME);

const argv = z
  .array(z.string({ message: 'expected strings' }), { message: 'expected ["/path/to/program", "arg", ...]' })
  .min(1, { message: 'expected ["/path/to/program", "arg", ...]' });

const duration = z.string({ message: 'expected a duration like "5s" or "500ms"' }).transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

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

const gpioLine = z
  .object(
    {
      chip: z.string({ message: 'expected a chip like "gpiochip0"' }).min(1).default('gpiochip0'),
      line: z.number({ message: 'expected a line number' }).int().min(0).max(1023),
      active_low: z.boolean({ message: 'expected true or false' }).default(false),
    },
    { message: 'expected a table like { chip = "gpiochip0", line = 17 }' },
  )
  .strict();

const MAX_CAPABILITIES = 64;
/** Room left for the four built-in device sensors within what an announcement carries. */
const MAX_CONFIGURED_SENSORS = MAX_CAPABILITIES - SYSTEM_SENSOR_NAMES.length;

export const actionTable = z
  .object(
    {
      name: capabilityName,
      exec: argv.optional(),
      gpio: gpioLine.optional(),
      timeout: duration.default('10s'),
      allow: z.array(z.string({ message: 'expected peer names, ids or "group:NAME"' }).min(1)).optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine(exactlyOneSource);

export const sensorTable = z
  .object(
    {
      name: capabilityName,
      exec: argv.optional(),
      gpio: gpioLine.optional(),
      every: duration.optional(),
      unit: z.string({ message: 'expected a unit like "Cel" or "%"' }).min(1).max(63).optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine(exactlyOneSource);

export const ruleTable = z
  .object(
    {
      name: z.string(NAME).min(1, NAME).max(63, NAME).optional(),
      when: z.string({ message: 'expected a condition like "hall-pi/temp > 30"' }).transform((text, ctx) => {
        try {
          return parseRuleExpression(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
      // biome-ignore lint/suspicious/noThenProperty: the TOML key users write; the parsed table is never awaited
      then: z.string({ message: 'expected "call <target> <action> [json]"' }).transform((text, ctx) => {
        try {
          return parseRuleAction(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
      debounce: duration.default('0ms'),
      hysteresis: z
        .number({ message: 'expected a number (0 or more)' })
        .refine((value) => Number.isFinite(value) && value >= 0, { message: 'expected a number (0 or more)' })
        .default(0),
      every: duration.refine((ms) => ms >= 100, { message: 'expected at least 100ms' }).default('10s'),
    },
    TABLE,
  )
  .strict();

/** An action or sensor is backed by a program or by a GPIO line: one of the two. */
function exactlyOneSource(table: { exec?: unknown; gpio?: unknown }, ctx: z.RefinementCtx): void {
  if ((table.exec === undefined) === (table.gpio === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['exec'],
      message: 'expected exactly one of exec = [...] or gpio = {...}',
    });
  }
}

function uniqueNames(kind: string) {
  return (tables: { name: string }[], ctx: z.RefinementCtx): void => {
    const seen = new Set<string>();
    tables.forEach((table, index) => {
      if (seen.has(table.name))
        ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `expected each ${kind} name once` });
      seen.add(table.name);
    });
  };
}

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
  transfer: transferTable.default({}),
  security: securityTable.default({}),
  actions: z
    .array(actionTable, { message: 'expected [[actions]] tables' })
    .max(MAX_CAPABILITIES, `expected at most ${MAX_CAPABILITIES} actions`)
    .superRefine(uniqueNames('action'))
    .default(() => []),
  rules: z
    .array(ruleTable, { message: 'expected [[rules]] tables' })
    .max(MAX_CAPABILITIES, `expected at most ${MAX_CAPABILITIES} rules`)
    .default(() => []),
  sensors: z
    .array(sensorTable, { message: 'expected [[sensors]] tables' })
    // The built-in device sensors are announced too, within the same limit.
    .max(MAX_CONFIGURED_SENSORS, `expected at most ${MAX_CONFIGURED_SENSORS} sensors`)
    .superRefine(uniqueNames('sensor'))
    .default(() => []),
};

/** Keys each table accepts, by table path with array indices dropped ("" is the top level). For "did you mean". */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  control: Object.keys(controlTable.shape),
  wifi: Object.keys(wifiTable.shape),
  ble: Object.keys(bleTable.shape),
  peers: Object.keys(peerTable.shape),
  mesh: Object.keys(meshTable.shape),
  mqtt: Object.keys(mqttTable.innerType().shape),
  'mqtt.upstream': Object.keys(mqttUpstreamTable.innerType().shape),
  console: Object.keys(consoleTable.shape),
  transfer: Object.keys(transferTable.shape),
  security: Object.keys(securityTable.shape),
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

/** Only plain and TLS MQTT over TCP: what mosquitto, EMQX and HiveMQ all serve. */
function checkBrokerUrl(text: string): string | undefined {
  const expected = 'expected "mqtt://host:port" or "mqtts://host:port"';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return expected;
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') return expected;
  if (url.hostname === '') return expected;
  if (url.username !== '' || url.password !== '')
    return 'expected the credentials in username and password, not in the URL';
  return undefined;
}

type RawMqtt = z.output<typeof mqttTable>;

function credentialsOf(table: {
  username?: string | undefined;
  password?: string | undefined;
}): { credentials: { username: string; password: string } } | Record<string, never> {
  return table.username !== undefined && table.password !== undefined
    ? { credentials: { username: table.username, password: table.password } }
    : {};
}

function resolveMqtt(raw: RawMqtt, context: SchemaContext): MqttConfig {
  const upstream = raw.upstream;
  const pathOf = (path: string | undefined) =>
    path === undefined ? undefined : resolveConfigPath(path, context);
  const caFile = pathOf(upstream?.ca_file);
  const certFile = pathOf(upstream?.cert_file);
  const keyFile = pathOf(upstream?.key_file);
  return {
    listen: raw.listen ?? DEFAULT_MQTT_LISTEN,
    listenIsDefault: raw.listen === undefined,
    ...credentialsOf(raw),
    maxPacketSize: raw.max_packet_size,
    ...(upstream !== undefined && {
      upstream: {
        url: upstream.url,
        ...(upstream.client_id !== undefined && { clientId: upstream.client_id }),
        ...credentialsOf(upstream),
        ...(caFile !== undefined && { caFile }),
        ...(certFile !== undefined && { certFile }),
        ...(keyFile !== undefined && { keyFile }),
        out: [...new Set(upstream.out)],
        in: [...new Set(upstream.in)],
        prefix: upstream.prefix,
        maxQueued: upstream.max_queued,
      },
    }),
  };
}

type GpioLine = z.output<typeof gpioLine>;

function source(table: { exec?: string[] | undefined; gpio?: GpioLine | undefined }) {
  if (table.gpio !== undefined) {
    const { chip, line, active_low } = table.gpio;
    return { kind: 'gpio' as const, chip, line, activeLow: active_low };
  }
  return { kind: 'exec' as const, exec: table.exec ?? [] };
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
        mqtt: resolveMqtt(raw.mqtt, context),
        actions: raw.actions.map(
          (action): ActionConfig => ({
            name: action.name,
            timeoutMs: action.timeout,
            ...(action.allow !== undefined && { allow: [...new Set(action.allow)] }),
            ...source(action),
          }),
        ),
        rules: raw.rules.map(
          (rule, index): RuleConfig => ({
            name: rule.name ?? `rule ${index + 1}`,
            when: rule.when,
            action: rule.then,
            debounceMs: rule.debounce,
            hysteresis: rule.hysteresis,
            everyMs: rule.every,
          }),
        ),
        sensors: raw.sensors.map(
          (sensor): SensorConfig => ({
            name: sensor.name,
            ...(sensor.every !== undefined && { everyMs: sensor.every }),
            ...(sensor.unit !== undefined && { unit: sensor.unit }),
            ...source(sensor),
          }),
        ),
        console: {
          serial: raw.console.serial === false ? false : resolveConfigPath(raw.console.serial, context),
          baud: raw.console.baud,
        },
        transfer: {
          inbox:
            raw.transfer.inbox === undefined
              ? join(dataDir, 'inbox')
              : resolveConfigPath(raw.transfer.inbox, context),
          maxBytes: raw.transfer.max_bytes,
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
