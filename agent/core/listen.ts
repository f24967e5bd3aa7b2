// Starting a server as a promise: resolved once it listens, rejected with the error that stopped it.
import type { Server } from 'node:net';

/** `server.listen(...args)`, awaited; a listen error (EADDRINUSE, EACCES) rejects instead of being emitted. */
export function listening(
  server: Server,
  ...args: [port: number, host: string] | [path: string]
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (args.length === 1) server.listen(args[0], done);
    else server.listen(args[0], args[1], done);
  });
}
