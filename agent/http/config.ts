// The [http] section of the config file: where the agent serves /metrics (Prometheus), and who may read it.
import { z } from 'zod/v3';
import { listenOrOff, pathString, TABLE } from '../core/config-fields.js';
import { formatHostPort, type HostPort, isLoopbackHost } from '../core/host-port.js';

/** Default HTTP endpoint: loopback only. */
export const DEFAULT_HTTP_LISTEN: HostPort = { host: '127.0.0.1', port: 7480 };

export interface HttpConfig {
  readonly listen: HostPort | false;
  /** True when `listen` is the built-in default: a taken port then costs a warning, not the agent. */
  readonly listenIsDefault: boolean;
  /** Absolute path of a mosquitto_passwd file: its users may read; required off loopback. */
  readonly passwordFile?: string;
}

export const httpTable = z
  .object(
    {
      listen: listenOrOff.optional(),
      password_file: pathString.optional(),
    },
    TABLE,
  )
  .strict()
  .superRefine((table, ctx) => {
    const listen = table.listen;
    if (typeof listen !== 'object' || typeof listen.host !== 'string' || isLoopbackHost(listen.host)) return;
    if (table.password_file === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['password_file'],
        message: `required: listen = "${formatHostPort(listen)}" is not loopback, so readers must log in (mosquitto_passwd -c <file> <user>)`,
      });
  });

/** `resolvePath` makes a path written in the config absolute. */
export function resolveHttp(
  raw: z.output<typeof httpTable>,
  resolvePath: (path: string) => string,
): HttpConfig {
  return {
    listen: raw.listen ?? DEFAULT_HTTP_LISTEN,
    listenIsDefault: raw.listen === undefined,
    ...(raw.password_file !== undefined && { passwordFile: resolvePath(raw.password_file) }),
  };
}
