// A listener that cannot bind is a config problem the operator must solve: name the config key, and who holds
// the port when /proc tells.
import { NearmeshError } from '../core/errors.js';
import { formatHostPort, type HostPort } from '../core/host-port.js';
import { findPortHolder } from '../ops/port-holder.js';

/** Runs `start`; a failure to bind `address` becomes an error naming `key` and the port's holder. */
export async function withListenKey<T>(key: string, address: HostPort, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (!isAddressInUse(error)) throw error;
    const holder = await findPortHolder(address.port);
    const by = holder === undefined ? 'another program' : `${holder.name} (PID ${holder.pid})`;
    throw new NearmeshError(
      'config',
      `${key} = "${formatHostPort(address)}": the port is already in use by ${by}; choose another port for ${key}, or stop that program`,
      { cause: error },
    );
  }
}

function isAddressInUse(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}
