// The [mqtt] section of the config file (the local broker and [mqtt.upstream], the bridge): its TOML keys
// and validation, and the resolved types the gateway runs from. agent/config assembles it with the rest.
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import { pathString, positiveInteger, TABLE, unionError } from '../core/config-fields.js';
import { checkHostPort, type HostPort } from '../core/host-port.js';
import { isValidTopicFilter, isValidTopicName } from '../core/topic-match.js';

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
