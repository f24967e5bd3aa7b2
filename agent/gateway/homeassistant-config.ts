// The [homeassistant] section of the config file: whether this agent publishes Home Assistant MQTT discovery
// for the mesh it knows, and under which prefix (Home Assistant's own `discovery_prefix` setting).
import { z } from 'zod/v3';
import { TABLE } from '../core/config-fields.js';

export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';

export interface HomeAssistantConfig {
  readonly enabled: boolean;
  readonly discoveryPrefix: string;
}

const PREFIX_MESSAGE = 'expected topic levels like "homeassistant" (no "+", "#", NUL, or "/" at either end)';

export const homeAssistantTable = z
  .object(
    {
      enabled: z.boolean({ message: 'expected true or false' }).default(false),
      discovery_prefix: z
        .string({ message: PREFIX_MESSAGE })
        .refine(
          (prefix) =>
            prefix.length > 0 &&
            prefix.length <= 256 &&
            !/[+#\0]/.test(prefix) &&
            !prefix.startsWith('/') &&
            !prefix.endsWith('/') &&
            !prefix.includes('//'),
          { message: PREFIX_MESSAGE },
        )
        .default(DEFAULT_DISCOVERY_PREFIX),
    },
    TABLE,
  )
  .strict();

export function resolveHomeAssistant(raw: z.output<typeof homeAssistantTable>): HomeAssistantConfig {
  return { enabled: raw.enabled, discoveryPrefix: raw.discovery_prefix };
}
