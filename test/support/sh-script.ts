// Executable /bin/sh scripts that tests hand to agents and handlers as actions, sensors or tools.
import { chmodSync, writeFileSync } from 'node:fs';

/** Writes `#!/bin/sh` and `body` to `path`, executable (0755); returns `path`. */
export function writeShScript(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}
