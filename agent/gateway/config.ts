// The [mqtt] section of the config file (the local broker and [mqtt.upstream], the bridge): its TOML keys
// and validation, and the resolved types the gateway runs from. agent/config assembles it with the rest.
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { duration, listenOrOff, pathString, positiveInteger, TABLE } from '../core/config-fields.js';
import { formatHostPort, type HostPort, isLoopbackHost } from '../core/host-port.js';
import { isValidTopicFilter, isValidTopicName } from '../core/topic-match.js';
import { parseAcl } from './acl-file.js';
import { MqttSecurityFileError } from './security-file.js';

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
  /** Absolute path of a mosquitto_passwd file: its users may log in. */
  readonly passwordFile?: string;
  /** Absolute path of a mosquitto ACL file: what each user may do. */
  readonly aclFile?: string;
  /** ACL lines for anonymous clients (loopback only); absent: the acl_file's, or the built-in rules. */
  readonly anonymous?: readonly string[];
  readonly maxPacketSize: number;
  readonly limits: MqttLimits;
  readonly upstream?: MqttUpstreamConfig;
}

/** The local broker's bounds: what one client, or all of them, may make it hold. */
export interface MqttLimits {
  /** Client sockets open at once; more are closed on accept. */
  readonly maxConnections: number;
  /** From TCP connect to a whole CONNECT. */
  readonly connectTimeoutMs: number;
  /** From the first byte of a packet to its last. */
  readonly packetTimeoutMs: number;
  /**
   * Longest keep alive an MQTT 5 client gets (whole seconds): a longer one is cut to it by a Server Keep
   * Alive in CONNACK, so that a hung client's will goes and its resources are let go in time.
   */
  readonly maxKeepAliveMs: number;
  /** Bytes of unfinished packets held over all connections. */
  readonly maxUnfinishedBytesTotal: number;
  /** Levels a topic name or filter may have (`a/b/c` has 3): deeper ones are refused as invalid. */
  readonly maxTopicLevels: number;
  /**
   * Topic filters one session, and all of them, may hold: a filter counts once per SUBSCRIPTION_LEVELS_PER_UNIT
   * levels begun, since the trie costs ~1 KB per level of a filter unlike any other.
   */
  readonly maxSubscriptionsPerClient: number;
  readonly maxSubscriptionsTotal: number;
  /** Sessions held, connected or persistent; past it the oldest offline one goes. */
  readonly maxSessions: number;
  /** Unacknowledged QoS 1 messages (queued or in flight) held for one session: count and bytes. */
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  /** Bytes of them over all sessions. */
  readonly maxQueuedBytesTotal: number;
  readonly maxRetainedMessages: number;
  readonly maxRetainedBytes: number;
  /** Bytes written to one client and not yet taken by it, and over all clients: past them QoS 0 is dropped. */
  readonly maxUnsentBytes: number;
  readonly maxUnsentBytesTotal: number;
  /** Sensors watched at once because a client subscribed to one's topic exactly. */
  readonly maxSensorWatches: number;
}

/** Levels of a topic filter that count as one subscription against the quotas. */
export const SUBSCRIPTION_LEVELS_PER_UNIT = 4;

const MIB = 1024 * 1024;

/** The broker's bounds when the config names none: here once, for the config's defaults and the broker's. */
export const DEFAULT_MQTT_LIMITS: MqttLimits = {
  maxConnections: 256,
  connectTimeoutMs: 10_000,
  packetTimeoutMs: 30_000,
  maxKeepAliveMs: 60_000,
  maxUnfinishedBytesTotal: 16 * MIB,
  // EMQX allows 128 levels, VerneMQ 10; Home Assistant's discovery topics have 5.
  maxTopicLevels: 32,
  maxSubscriptionsPerClient: 1000,
  maxSubscriptionsTotal: 10_000,
  maxSessions: 10_000,
  maxQueuedMessages: 1000,
  maxQueuedBytes: MIB,
  maxQueuedBytesTotal: 16 * MIB,
  maxRetainedMessages: 10_000,
  maxRetainedBytes: 16 * MIB,
  maxUnsentBytes: 4 * MIB,
  maxUnsentBytesTotal: 16 * MIB,
  maxSensorWatches: 64,
};
/**
 * Fits the largest message the mesh carries (a 1 MiB frame over a direct Wi-Fi link), so that a publish
 * too large for where it goes is refused in its PUBACK, not by disconnecting the client; and a camera
 * still for a local app.
 */
export const DEFAULT_MQTT_MAX_PACKET_SIZE = 1024 * 1024;

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

const TOPIC_FILTERS = { message: 'expected an array of MQTT topic filters like ["nearmesh/send/#"]' };
const topicFilterList = z.array(
  z.string(TOPIC_FILTERS).refine(isValidTopicFilter, {
    message: 'expected an MQTT topic filter ("+" and "#" only as whole levels, "#" last)',
  }),
  TOPIC_FILTERS,
);

/** Largest MQTT packet size the protocol can express (the remaining-length field). */
const MQTT_MAX_PACKET_SIZE = 268_435_455;

/** A byte count key: a positive integer up to `max`. */
function byteCount(max: number, fallback: number) {
  return positiveInteger
    .refine((value) => value <= max, { message: `expected at most ${max} bytes` })
    .default(fallback);
}

/** A count from 1 to `max`; `fallback` when absent. */
function boundedCount(max: number, fallback: number) {
  return positiveInteger
    .refine((value) => value <= max, { message: `expected at most ${max}` })
    .default(fallback);
}

/** A timeout key: a duration of at least 1 s; `fallbackMs` when absent. */
function timeout(fallbackMs: number) {
  return duration
    .refine((ms) => ms >= 1000, { message: 'expected at least "1s"' })
    .default(`${fallbackMs}ms`);
}

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

/** Only plain and TLS MQTT over TCP: what mosquitto, EMQX and HiveMQ all serve. */
export function checkBrokerUrl(text: string): string | undefined {
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

const ACL_LINES = { message: 'expected an array of ACL lines like ["topic readwrite app/#"]' };

/** One `topic` or `pattern` line of mosquitto's ACL format (acl-file.ts). */
const aclLine = z.string(ACL_LINES).superRefine((line, ctx) => {
  try {
    parseAcl(line, 'mqtt.anonymous', { users: false });
  } catch (error) {
    if (!(error instanceof MqttSecurityFileError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.problem });
  }
});

/**
 * Off loopback, every client must log in (other hosts, or anyone on the network, reach the endpoint):
 * without logins configured the agent does not start, and anonymous rules would never apply.
 */
function checkLoginsOffLoopback(
  table: {
    listen?: HostPort | false | undefined;
    username?: string | undefined;
    password_file?: string | undefined;
    anonymous?: string[] | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const listen = table.listen;
  // zod still refines a table whose listen failed: then there is no host to judge.
  if (typeof listen !== 'object' || typeof listen.host !== 'string' || isLoopbackHost(listen.host)) return;
  const where = `listen = "${formatHostPort(listen)}" is not loopback`;
  if (table.password_file === undefined && table.username === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['password_file'],
      message: `required: ${where}, so clients must log in (mosquitto_passwd -c <file> <user>)`,
    });
  if (table.anonymous !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['anonymous'],
      message: `anonymous clients are served on a loopback listen only, and ${where}`,
    });
}

export const mqttTable = z
  .object(
    {
      listen: listenOrOff.optional(),
      ...mqttCredentials,
      password_file: pathString.optional(),
      acl_file: pathString.optional(),
      anonymous: z.array(aclLine, ACL_LINES).optional(),
      max_packet_size: positiveInteger
        .refine((value) => value >= 1024 && value <= MQTT_MAX_PACKET_SIZE, {
          message: `expected 1024..${MQTT_MAX_PACKET_SIZE} bytes`,
        })
        .default(DEFAULT_MQTT_MAX_PACKET_SIZE),
      max_connections: boundedCount(100_000, DEFAULT_MQTT_LIMITS.maxConnections),
      connect_timeout: timeout(DEFAULT_MQTT_LIMITS.connectTimeoutMs),
      packet_timeout: timeout(DEFAULT_MQTT_LIMITS.packetTimeoutMs),
      max_keepalive: timeout(DEFAULT_MQTT_LIMITS.maxKeepAliveMs).refine((ms) => ms <= 65_535_000, {
        message: 'expected at most 65535s (the largest MQTT keep alive)',
      }),
      max_unfinished_bytes_total: byteCount(
        MQTT_MAX_PACKET_SIZE,
        DEFAULT_MQTT_LIMITS.maxUnfinishedBytesTotal,
      ),
      max_topic_levels: boundedCount(1000, DEFAULT_MQTT_LIMITS.maxTopicLevels),
      max_subscriptions_per_client: boundedCount(1_000_000, DEFAULT_MQTT_LIMITS.maxSubscriptionsPerClient),
      max_subscriptions_total: boundedCount(10_000_000, DEFAULT_MQTT_LIMITS.maxSubscriptionsTotal),
      max_sessions: boundedCount(1_000_000, DEFAULT_MQTT_LIMITS.maxSessions),
      max_queued_messages: boundedCount(1_000_000, DEFAULT_MQTT_LIMITS.maxQueuedMessages),
      max_queued_bytes: byteCount(Number.MAX_SAFE_INTEGER, DEFAULT_MQTT_LIMITS.maxQueuedBytes),
      max_queued_bytes_total: byteCount(Number.MAX_SAFE_INTEGER, DEFAULT_MQTT_LIMITS.maxQueuedBytesTotal),
      max_retained_messages: boundedCount(1_000_000, DEFAULT_MQTT_LIMITS.maxRetainedMessages),
      max_retained_bytes: byteCount(Number.MAX_SAFE_INTEGER, DEFAULT_MQTT_LIMITS.maxRetainedBytes),
      max_unsent_bytes: byteCount(Number.MAX_SAFE_INTEGER, DEFAULT_MQTT_LIMITS.maxUnsentBytes),
      max_unsent_bytes_total: byteCount(Number.MAX_SAFE_INTEGER, DEFAULT_MQTT_LIMITS.maxUnsentBytesTotal),
      max_sensor_watches: boundedCount(10_000, DEFAULT_MQTT_LIMITS.maxSensorWatches),
      upstream: mqttUpstreamTable.optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine((table, ctx) => {
    bothOrNeither(table, ctx);
    checkLoginsOffLoopback(table, ctx);
    // A QoS 1 message as large as a packet must fit in a session's queue, and a session's queue in the total.
    if (table.max_queued_bytes < table.max_packet_size)
      ctx.addIssue({
        code: 'custom',
        path: ['max_queued_bytes'],
        message: `expected at least max_packet_size (${table.max_packet_size})`,
      });
    if (table.max_queued_bytes_total < table.max_queued_bytes)
      ctx.addIssue({
        code: 'custom',
        path: ['max_queued_bytes_total'],
        message: `expected at least max_queued_bytes (${table.max_queued_bytes})`,
      });
  });

function credentialsOf(table: {
  username?: string | undefined;
  password?: string | undefined;
}): { credentials: { username: string; password: string } } | Record<string, never> {
  return table.username !== undefined && table.password !== undefined
    ? { credentials: { username: table.username, password: table.password } }
    : {};
}

/** `resolvePath` makes a path written in the config absolute ("~/x", or relative to the config file). */
export function resolveMqtt(
  raw: z.output<typeof mqttTable>,
  resolvePath: (path: string) => string,
): MqttConfig {
  const upstream = raw.upstream;
  const pathOf = (path: string | undefined) => (path === undefined ? undefined : resolvePath(path));
  const caFile = pathOf(upstream?.ca_file);
  const certFile = pathOf(upstream?.cert_file);
  const keyFile = pathOf(upstream?.key_file);
  return {
    listen: raw.listen ?? DEFAULT_MQTT_LISTEN,
    listenIsDefault: raw.listen === undefined,
    ...credentialsOf(raw),
    ...(raw.password_file !== undefined && { passwordFile: resolvePath(raw.password_file) }),
    ...(raw.acl_file !== undefined && { aclFile: resolvePath(raw.acl_file) }),
    ...(raw.anonymous !== undefined && { anonymous: raw.anonymous }),
    maxPacketSize: raw.max_packet_size,
    limits: {
      maxConnections: raw.max_connections,
      connectTimeoutMs: raw.connect_timeout,
      packetTimeoutMs: raw.packet_timeout,
      maxKeepAliveMs: raw.max_keepalive,
      maxUnfinishedBytesTotal: raw.max_unfinished_bytes_total,
      maxTopicLevels: raw.max_topic_levels,
      maxSubscriptionsPerClient: raw.max_subscriptions_per_client,
      maxSubscriptionsTotal: raw.max_subscriptions_total,
      maxSessions: raw.max_sessions,
      maxQueuedMessages: raw.max_queued_messages,
      maxQueuedBytes: raw.max_queued_bytes,
      maxQueuedBytesTotal: raw.max_queued_bytes_total,
      maxRetainedMessages: raw.max_retained_messages,
      maxRetainedBytes: raw.max_retained_bytes,
      maxUnsentBytes: raw.max_unsent_bytes,
      maxUnsentBytesTotal: raw.max_unsent_bytes_total,
      maxSensorWatches: raw.max_sensor_watches,
    },
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
