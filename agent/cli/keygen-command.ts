// `nearmesh keygen`: prints a fresh mesh key for the `mesh_key` config key.
import type { Command } from 'commander';
import { generateMeshKey } from '../config/mesh-key.js';
import { printJson } from './client-options.js';

export function registerKeygenCommand(program: Command): void {
  program
    .command('keygen')
    .description('print a new random mesh key (base64url of 32 bytes) for mesh_key in the config')
    .option('--json', 'print {"mesh_key": ...}')
    .action((options: { json?: boolean }) => {
      const key = generateMeshKey();
      if (options.json === true) printJson({ mesh_key: key });
      else process.stdout.write(`${key}\n`);
    });
}
