// `[rendezvous]`: meeting agents of other subnets through the site's MQTT broker (agent/gateway/
// rendezvous-resolver.ts). The broker is [mqtt.upstream]'s unless `url` names another.
import { z } from 'zod/v3';
import { count, duration, TABLE } from '../core/config-fields.js';
import { checkHostPort } from '../core/host-port.js';
import { isValidTopicName } from '../core/topic-match.js';
import { checkBrokerUrl } from '../gateway/config.js';
import {
  MAX_RENDEZVOUS_ENDPOINTS,
  MAX_RENDEZVOUS_TTL_S,
  MIN_RENDEZVOUS_TTL_S,
} from '../protocol/rendezvous.js';

const DEFAULT_RENDEZVOUS_PREFIX = 'nearmesh/rendezvous/';
const MAX_RECORDS_LIMIT = 4096;
const TTL = `expected a duration within ${MIN_RENDEZVOUS_TTL_S} s..${MAX_RENDEZVOUS_TTL_S / 3600} h`;

export interface RendezvousConfig {
  readonly enabled: boolean;
  /** Its own broker; absent: [mqtt.upstream]'s connection settings. */
  readonly url?: string;
  readonly prefix: string;
  readonly ttlS: number;
  /** Where peers on other subnets should dial this agent; absent: its listener's addresses. */
  readonly announce?: readonly string[];
  readonly maxRecords: number;
}

export const rendezvousTable = z
  .object(
    {
      enabled: z.boolean({ message: 'expected true or false' }).default(false),
      url: z
        .string({ message: 'expected "mqtt://host:port" or "mqtts://host:port"' })
        .superRefine((text, ctx) => {
          const problem = checkBrokerUrl(text);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
      prefix: z
        .string({ message: 'expected a topic prefix like "nearmesh/rendezvous/"' })
        .refine((text) => isValidTopicName(text) && text.endsWith('/'), {
          message: 'expected a topic prefix ending in "/", without "+" or "#"',
        })
        .default(DEFAULT_RENDEZVOUS_PREFIX),
      ttl: duration
        .refine((ms) => ms >= MIN_RENDEZVOUS_TTL_S * 1000 && ms <= MAX_RENDEZVOUS_TTL_S * 1000, TTL)
        .default('5m'),
      announce: z
        .array(
          z.string({ message: 'expected "host:port"' }).refine((text) => checkHostPort(text).ok, {
            message: 'expected "host:port" (port 1..65535)',
          }),
          { message: 'expected an array of "host:port"' },
        )
        .max(MAX_RENDEZVOUS_ENDPOINTS, `expected at most ${MAX_RENDEZVOUS_ENDPOINTS} addresses`)
        .optional(),
      max_records: count(1, MAX_RECORDS_LIMIT).default(256),
    },
    TABLE,
  )
  .strict();

export function resolveRendezvous(raw: z.output<typeof rendezvousTable>): RendezvousConfig {
  return {
    enabled: raw.enabled,
    ...(raw.url !== undefined && { url: raw.url }),
    prefix: raw.prefix,
    ttlS: Math.round(raw.ttl / 1000),
    ...(raw.announce !== undefined && { announce: [...new Set(raw.announce)] }),
    maxRecords: raw.max_records,
  };
}
