// The package version, read once from package.json (found relative to this file, which sits one
// level deeper when compiled into dist/).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readPackageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'nearmesh' && typeof pkg.version === 'string') return pkg.version;
    } catch {}
    dir = dirname(dir);
  }
  return '0.0.0';
}

export const VERSION = readPackageVersion();
